//! A fresh directory per call, removed when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TempDirectory(pub PathBuf);

impl TempDirectory {
    /// Under the system temp dir: `prefix` names the test file.
    pub fn new(prefix: &str) -> TempDirectory {
        TempDirectory::under(&std::env::temp_dir(), prefix)
    }

    /// Under /dev/shm where there is one: for tests that open thousands of
    /// directories or fsync thousands of times, which a RAM file system
    /// makes cheap.
    pub fn in_memory(prefix: &str) -> TempDirectory {
        let shared_memory = Path::new("/dev/shm");
        let base = if shared_memory.is_dir() { shared_memory.to_path_buf() } else { std::env::temp_dir() };
        TempDirectory::under(&base, prefix)
    }

    fn under(base: &Path, prefix: &str) -> TempDirectory {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("raftmq-{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let path = base.join(name);
        let _ = fs::remove_dir_all(&path);
        TempDirectory(path)
    }
}

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
