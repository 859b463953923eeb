//! A thread that drops what it is sent, so that freeing large values, or
//! closing removed files, never holds up the thread that let go of them.
//! The node's releaser (`node/releaser.rs`: snapshot images, entry
//! buffers, state copies) and the log's `storage-release` thread
//! (`storage/wal.rs`: removed files and replaced images) are two of them.
//!
//! Why a removed file is closed here: when the last descriptor of a removed
//! file is closed, the kernel frees its blocks in that call, and on a file
//! system mounted with `discard` ext4 also waits there for the device to
//! discard them. Measured in a 60 s client flood (`perf` on the
//! LogManager's switch-outs, `docs/benchmarks.md`): one removed 8 MiB
//! segment held the log's thread 257 ms in `blkdev_issue_discard`, and
//! every write behind it waited. Likewise, freeing an image of hundreds of
//! MB gives its pages back to the kernel and changes the memory map
//! (`node::address_space`). So the log removes the name itself, in order
//! and synced as before, and hands the still-open file, or the old image,
//! to its thread. A crash before the close leaves a nameless file, which
//! the file system frees when it is mounted again; a path removed and
//! created again names a new file, so the old one held open never meets it.

use crossbeam_channel::{unbounded, Sender};

/// Drops values on its own thread (inline if there is none).
#[derive(Clone)]
pub struct DeferredDrop {
    values: Option<Sender<Box<dyn Send>>>,
}

impl DeferredDrop {
    /// Start the thread, named `name`.
    pub fn start(name: &str) -> std::io::Result<DeferredDrop> {
        let (values, received) = unbounded::<Box<dyn Send>>();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            for value in received {
                drop(value);
            }
        })?;
        Ok(DeferredDrop { values: Some(values) })
    }

    /// Without a thread: values are dropped where they are let go.
    pub fn inline() -> DeferredDrop {
        DeferredDrop { values: None }
    }

    /// Drop `value` on the thread.
    pub fn drop_later(&self, value: impl Send + 'static) {
        if let Some(values) = &self.values {
            // The thread is gone only if it panicked: then drop it here.
            if let Err(returned) = values.send(Box::new(value)) {
                drop(returned.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn a_removed_file_stays_readable_until_dropped_later() {
        let directory = std::env::temp_dir().join(format!("raftmq-deferred-drop-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("segment");
        std::fs::write(&path, b"entries").unwrap();
        let mut file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!path.exists(), "the name goes at once");
        let mut content = String::new();
        std::io::Read::read_to_string(&mut file, &mut content).unwrap();
        assert_eq!(content, "entries", "the blocks stay until the file is closed");
        let releaser = DeferredDrop::start("test-release").unwrap();
        releaser.drop_later(file);
        drop(releaser);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_value_is_dropped_on_the_thread() {
        let (dropped, was_dropped) = crossbeam_channel::bounded::<std::thread::ThreadId>(1);
        struct Witness(crossbeam_channel::Sender<std::thread::ThreadId>);
        impl Drop for Witness {
            fn drop(&mut self) {
                let _ = self.0.send(std::thread::current().id());
            }
        }
        let releaser = DeferredDrop::start("test-release").unwrap();
        releaser.drop_later(Witness(dropped));
        let on = was_dropped.recv_timeout(std::time::Duration::from_secs(10)).expect("dropped");
        assert_ne!(on, std::thread::current().id(), "not on the caller's thread");
    }
}
