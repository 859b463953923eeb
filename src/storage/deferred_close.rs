//! Files the log removes are closed on a thread of their own.
//!
//! When the last descriptor of a removed file is closed, the kernel frees
//! its blocks in that call, and on a file system mounted with `discard`
//! ext4 also waits there for the device to discard them. Measured in a
//! 60 s client flood (`perf` on the LogManager's switch-outs,
//! `docs/benchmarks.md`): one removed 8 MiB segment held the log's thread
//! 257 ms in `blkdev_issue_discard`, and every write behind it waited.
//! So the log removes the name itself, in order and synced as before, but
//! hands the still-open file to this thread, where the blocks are freed.
//! A crash before the close leaves an unnamed file, which the file
//! system frees when it is mounted again.

use std::fs::File;

use crossbeam_channel::{unbounded, Sender};

/// Closes files off the log's thread (inline if that thread is gone).
pub struct DeferredClose {
    files: Option<Sender<File>>,
}

impl DeferredClose {
    /// Start the closing thread; if it cannot start, files are closed inline.
    pub fn start() -> DeferredClose {
        let (files, received) = unbounded::<File>();
        let spawned = std::thread::Builder::new().name("file-closer".into()).spawn(move || {
            for file in received {
                drop(file);
            }
        });
        DeferredClose { files: spawned.ok().map(|_| files) }
    }

    /// Close `file`, whose name is already removed, on the closing thread.
    pub fn close_later(&self, file: File) {
        if let Some(files) = &self.files {
            // The thread is gone only if it panicked: then close here.
            if let Err(returned) = files.send(file) {
                drop(returned.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_file_stays_readable_until_closed_later() {
        let directory = std::env::temp_dir().join(format!("raftmq-deferred-close-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("segment");
        std::fs::write(&path, b"entries").unwrap();
        let mut file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!path.exists(), "the name goes at once");
        let mut content = String::new();
        std::io::Read::read_to_string(&mut file, &mut content).unwrap();
        assert_eq!(content, "entries", "the blocks stay until the file is closed");
        let closer = DeferredClose::start();
        closer.close_later(file);
        drop(closer);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
