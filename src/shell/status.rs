//! The status report a node answers `{"op":"status"}` with.

use super::Shell;
use crate::protocol::StatusReport;
use crate::raft::Role;

impl Shell {
    /// The node as it stands. The driver publishes it before it sends the
    /// turn's replies, so a client whose write was just acknowledged never
    /// reads an older `commit_index`.
    pub fn status_report(&self) -> StatusReport {
        let failed = self.disk.failure().is_some();
        StatusReport {
            role: match self.core.role() {
                _ if failed => Role::Follower.as_str(),
                // The course protocol knows three roles. A pre-candidate has
                // changed neither term nor vote: in Raft's terms a follower.
                Role::PreCandidate => Role::Follower.as_str(),
                role => role.as_str(),
            },
            term: self.core.term(),
            leader: if failed { None } else { self.core.leader() },
            commit_index: self.core.commit_index(),
            last_applied: self.last_applied,
            log_size: self.core.log().last_index(),
            first_index: self.core.log().first_index(),
            snapshot_index: self.core.snapshot_index(),
            disk_bytes: self.disk.disk_bytes,
            disk_syncs: self.disk.disk_syncs,
            storage_error: self.disk.failure().map(str::to_string),
            state_digest: self.queue.digest(),
            repair: self.core.repair().as_str(),
        }
    }
}
