//! CPU priority per thread. Under CPU contention the threads that keep the
//! cluster alive (the event loop, the peer listener, the LogManager) must
//! win over those that serve clients or write snapshots: a leader that
//! cannot send its heartbeats because the machine is busy decoding client
//! requests is deposed. So client-facing and background threads lower
//! their own priority (raise their nice value), which needs no privilege;
//! the control plane keeps the process's priority.

use log::debug;

/// How much nicer the client listener is than the control plane.
pub const CLIENT_LISTENER_NICENESS: i32 = 5;
/// How much nicer the snapshot writer is (it is never urgent).
pub const SNAPSHOT_WRITER_NICENESS: i32 = 10;

/// Lower the calling thread's priority by `increment` nice levels.
#[cfg(target_os = "linux")]
pub fn lower_current_thread(increment: i32) {
    // SAFETY: gettid and getpriority/setpriority take plain integers and
    // only affect the calling thread (Linux applies PRIO_PROCESS to a TID).
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, thread);
        let target = (current + increment).min(19);
        if libc::setpriority(libc::PRIO_PROCESS, thread, target) != 0 {
            debug!("cannot lower this thread's priority: {}", std::io::Error::last_os_error());
        }
    }
}

/// Elsewhere priorities are left as they are.
#[cfg(not(target_os = "linux"))]
pub fn lower_current_thread(_increment: i32) {}
