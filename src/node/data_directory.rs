//! Where a node keeps its data, and cleaning up after a start that failed:
//! a node that could not come up (a busy or bad port, say) must not leave an
//! empty data directory behind that looks like a node's state.

use std::path::{Path, PathBuf};

use log::{info, warn};

use super::NodeSettings;
use crate::config::ClusterConfig;

/// The data directory: `--data-dir`, or `raftmq-data/<cluster id>-node<index>`
/// beside the config file (`ClusterConfig::default_data_directory`), so a
/// restarted node of the same config finds its state from any working
/// directory, and a config with new addresses starts empty.
pub fn data_directory(config: &ClusterConfig, index: usize, settings: &NodeSettings) -> PathBuf {
    settings.data_dir.clone().unwrap_or_else(|| config.default_data_directory(index))
}

/// Removes, when dropped before `node_is_up`, what this start created: the
/// data directory with its contents once this process held its lock, and
/// any parent directories it created, if empty. Never a directory that
/// existed before, and never one another process may be using.
pub struct FailedStartCleanup {
    /// The data directory and those of its parents that did not exist,
    /// deepest first.
    created: Vec<PathBuf>,
    /// This process opened (and so locked) the data directory.
    storage_opened: bool,
    up: bool,
}

impl FailedStartCleanup {
    /// Note which of `directory` and its parents do not exist yet.
    pub fn note(directory: &Path) -> FailedStartCleanup {
        let absolute = std::path::absolute(directory).unwrap_or_else(|_| directory.to_path_buf());
        let created = absolute.ancestors().take_while(|path| !path.exists()).map(Path::to_path_buf).collect();
        FailedStartCleanup { created, storage_opened: false, up: false }
    }

    pub fn storage_opened(&mut self) {
        self.storage_opened = true;
    }

    /// The node serves: from here on its directory is kept whatever happens.
    pub fn node_is_up(&mut self) {
        self.up = true;
    }
}

impl Drop for FailedStartCleanup {
    fn drop(&mut self) {
        if self.up {
            return;
        }
        let Some((directory, parents)) = self.created.split_first() else {
            return;
        };
        let removed = if self.storage_opened {
            std::fs::remove_dir_all(directory)
        } else {
            // Not ours for sure (another process may have made it meanwhile):
            // only if it is empty.
            std::fs::remove_dir(directory)
        };
        match removed {
            Ok(()) => info!("start failed: removed the data directory {} it had created", directory.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => warn!("start failed: could not remove the data directory {}: {error}", directory.display()),
        }
        for parent in parents {
            // Another node of the same config may have put its directory here.
            if std::fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let directory = std::env::temp_dir().join(format!("raftmq-cleanup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn a_failed_start_removes_what_it_created_and_only_that() {
        let root = scratch("created");
        let directory = root.join("raftmq-data").join("x-node0");
        let mut cleanup = FailedStartCleanup::note(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("LOCK"), b"").unwrap();
        cleanup.storage_opened();
        drop(cleanup);
        assert!(!root.join("raftmq-data").exists(), "the directory and the parent it created are gone");
        assert!(root.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_parent_holding_another_nodes_directory_is_kept() {
        let root = scratch("shared");
        let directory = root.join("raftmq-data").join("x-node0");
        let mut cleanup = FailedStartCleanup::note(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::create_dir_all(root.join("raftmq-data").join("x-node1")).unwrap();
        cleanup.storage_opened();
        drop(cleanup);
        assert!(!directory.exists());
        assert!(root.join("raftmq-data").join("x-node1").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_existing_directory_or_a_started_node_keeps_its_data() {
        let root = scratch("existing");
        std::fs::write(root.join("hard_state"), b"term").unwrap();
        let mut existing = FailedStartCleanup::note(&root);
        existing.storage_opened();
        drop(existing);
        assert!(root.join("hard_state").exists(), "a directory that existed is never removed");
        let directory = root.join("new");
        let mut started = FailedStartCleanup::note(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        started.storage_opened();
        started.node_is_up();
        drop(started);
        assert!(directory.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_directory_this_process_never_locked_is_removed_only_if_empty() {
        let root = scratch("unlocked");
        let directory = root.join("data");
        let cleanup = FailedStartCleanup::note(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("LOCK"), b"").unwrap(); // as another process would
        drop(cleanup);
        assert!(directory.join("LOCK").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
