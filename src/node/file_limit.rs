//! Open file descriptors: every client connection costs one. At start the
//! node raises its soft limit to the hard limit (allowed without
//! privilege), so a common soft limit of 1,024 does not cap it at about a
//! thousand clients while the hard limit allows far more.

use log::{info, warn};

/// Raise the soft RLIMIT_NOFILE to the hard limit; log what it is. Returns
/// the soft limit in force afterwards (None if it cannot be read).
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            warn!("cannot read the open-file limit: {}", std::io::Error::last_os_error());
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                info!("open-file limit raised from {} to {}", limit.rlim_cur, limit.rlim_max);
                return Some(limit.rlim_max);
            }
            warn!("cannot raise the open-file limit ({}): {}", limit.rlim_cur, std::io::Error::last_os_error());
        }
    }
    Some(limit.rlim_cur)
}

/// Elsewhere the limit is left as it is.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}
