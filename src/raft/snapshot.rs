//! Snapshots and log compaction: Raft §7 and Figure 13 (InstallSnapshot).
//!
//! The shell decides when to snapshot and writes the file; the core learns of
//! it through `Event::SnapshotSaved`, compacts its log and streams the
//! snapshot to any follower that needs entries no longer held.

use super::core::RaftCore;
use super::effect::Effect;
use super::message::{InstallSnapshot, InstallSnapshotResponse, Message};
use super::progress::{ReplicationState, SNAPSHOT_RESEND_HEARTBEATS};
use super::role::RoleState;
use super::types::{LogIndex, NodeId, Snapshot, Term};

/// A snapshot a follower is receiving, identified by where it ends and its size.
#[derive(Debug, Clone)]
pub(super) struct IncomingSnapshot {
    last_index: LogIndex,
    last_term: Term,
    /// The announced size, at most `CoreConfig::max_snapshot_bytes`.
    total_bytes: u64,
    /// The bytes received so far, never more than `total_bytes`.
    data: Vec<u8>,
}

impl IncomingSnapshot {
    fn is_for(&self, request: &InstallSnapshot) -> bool {
        self.last_index == request.last_index
            && self.last_term == request.last_term
            && self.total_bytes == request.total_bytes
    }
}

impl RaftCore {
    pub(super) fn on_snapshot_saved(&mut self, snapshot: Snapshot) {
        let index = snapshot.last_index;
        // A newer snapshot (or an installed one) already covers this one.
        if index <= self.snapshot_index() || self.log.term_at(index) != Some(snapshot.last_term) {
            return;
        }
        // Made before this core was rebuilt from storage (after a disk
        // failure) and ahead of what it has re-committed: its entries are
        // committed, but the core will compact on a later snapshot instead.
        if index > self.applied_index {
            return;
        }
        let compact_through = self.retained_tail_start(index);
        self.snapshot = Some(snapshot);
        if compact_through >= self.log.first_index() {
            let dropped = self.log.compact_through(compact_through);
            self.effects.push(Effect::CompactLog { through_index: compact_through });
            self.effects.push(Effect::ReleaseEntries(dropped));
        }
    }

    /// The highest index to compact through so that the entries kept up
    /// to `index` are at most `retained_entries_after_snapshot` and hold at
    /// most `retained_bytes_after_snapshot` of payload. Walks at most that
    /// many entries back from `index`.
    fn retained_tail_start(&self, index: LogIndex) -> LogIndex {
        let lowest = index.saturating_sub(self.config.retained_entries_after_snapshot).max(self.log.first_index() - 1);
        let mut compact_through = index;
        let mut kept_bytes = 0u64;
        while compact_through > lowest {
            let Some(entry) = self.log.entry(compact_through) else {
                break;
            };
            kept_bytes += entry.data.len() as u64;
            if kept_bytes > self.config.retained_bytes_after_snapshot {
                break;
            }
            compact_through -= 1;
        }
        compact_through
    }

    /// Send `peer` the next piece of the snapshot it is receiving. `force`
    /// is the heartbeat: a keepalive, or a resend after a silent spell.
    pub(super) fn send_snapshot(&mut self, peer: NodeId, force: bool) {
        let latest = self.snapshot.clone().expect("a compacted log has a snapshot");
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(progress) = leader.progress.get_mut(&peer) else {
            return;
        };
        let streaming = progress.state == ReplicationState::Snapshot && progress.streamed_snapshot.is_some();
        if !streaming {
            progress.begin_snapshot(latest);
        } else if !force {
            return; // the follower's replies drive the stream
        } else {
            progress.snapshot_idle_heartbeats += 1;
            if progress.snapshot_idle_heartbeats < SNAPSHOT_RESEND_HEARTBEATS {
                let snapshot = progress.streamed_snapshot.clone().expect("streaming");
                self.send_snapshot_chunk(peer, &snapshot, false);
                return;
            }
            progress.snapshot_idle_heartbeats = 0;
        }
        let snapshot = progress.streamed_snapshot.clone().expect("streaming");
        self.send_snapshot_chunk(peer, &snapshot, true);
    }

    /// A chunk from the follower's acknowledged offset; without data it is
    /// a keepalive that also asks how far the follower got.
    fn send_snapshot_chunk(&mut self, peer: NodeId, snapshot: &Snapshot, with_data: bool) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let Some(progress) = leader.progress.get(&peer) else {
            return;
        };
        let total_bytes = snapshot.data.len() as u64;
        let start = progress.snapshot_acked_bytes.min(total_bytes) as usize;
        let end = if with_data {
            start.saturating_add(self.config.snapshot_chunk_bytes).min(snapshot.data.len())
        } else {
            start
        };
        let request = InstallSnapshot {
            term: self.hard_state.current_term,
            leader: self.config.id,
            last_index: snapshot.last_index,
            last_term: snapshot.last_term,
            offset: start as u64,
            total_bytes,
            data: snapshot.data[start..end].to_vec(),
        };
        self.send(peer, Message::InstallSnapshot(request));
    }

    pub(super) fn on_install_snapshot(&mut self, from: NodeId, request: InstallSnapshot) {
        let term = self.hard_state.current_term;
        if request.term < term {
            self.respond_snapshot(from, request.last_index, 0, false);
            return;
        }
        // on_message raised our term to the request's first.
        if let Err(reason) = self.check_claimed_leadership(request.leader) {
            self.drop_message(from, reason);
            return;
        }
        if self.leader() != Some(request.leader) {
            self.become_follower(term, Some(request.leader));
        }
        self.effects.push(Effect::ResetElectionTimer);
        if request.last_index <= self.commit_index {
            // Everything it covers is already committed here.
            if let RoleState::Follower(follower) = &mut self.role {
                follower.incoming_snapshot = None;
            }
            self.respond_snapshot(from, request.last_index, request.total_bytes, true);
            return;
        }
        let last_index = request.last_index;
        let total_bytes = request.total_bytes;
        let received_bytes = self.receive_chunk(request);
        let complete = received_bytes == total_bytes;
        if complete && !self.received_snapshot_passes_its_check() {
            // Holding nothing now: the leader sends it again from byte 0.
            self.drop_message(from, "a snapshot that fails its check; asking for it again");
            self.respond_snapshot(from, last_index, 0, false);
            return;
        }
        if complete {
            self.install_received_snapshot();
        }
        self.respond_snapshot(from, last_index, received_bytes, complete);
    }

    /// Whether the snapshot received whole passes `snapshot_check`; one
    /// that does not is discarded.
    fn received_snapshot_passes_its_check(&mut self) -> bool {
        let check = self.config.snapshot_check;
        let RoleState::Follower(follower) = &mut self.role else {
            return true;
        };
        let passes = follower.incoming_snapshot.as_ref().is_none_or(|incoming| check(&incoming.data).is_ok());
        if !passes {
            follower.incoming_snapshot = None;
        }
        passes
    }

    /// Add a chunk to the snapshot being received; returns the bytes held.
    /// A chunk that does not continue what is held is not taken: the reply
    /// names the bytes held, and the leader resends from there (from 0 when
    /// a new snapshot starts elsewhere than at its beginning).
    fn receive_chunk(&mut self, request: InstallSnapshot) -> u64 {
        let RoleState::Follower(follower) = &mut self.role else {
            return 0; // become_follower ran just before
        };
        let is_current = follower.incoming_snapshot.as_ref().is_some_and(|incoming| incoming.is_for(&request));
        if !is_current {
            if request.offset != 0 {
                return 0; // ask the leader to start over
            }
            follower.incoming_snapshot = Some(IncomingSnapshot {
                last_index: request.last_index,
                last_term: request.last_term,
                total_bytes: request.total_bytes,
                data: Vec::new(),
            });
        }
        let Some(incoming) = follower.incoming_snapshot.as_mut() else {
            return 0;
        };
        // check_message bounded offset + data by total_bytes, and
        // total_bytes by max_snapshot_bytes: what is held stays bounded.
        if request.offset == incoming.data.len() as u64 {
            incoming.data.extend_from_slice(&request.data);
        }
        incoming.data.len() as u64
    }

    fn install_received_snapshot(&mut self) {
        let RoleState::Follower(follower) = &mut self.role else {
            return;
        };
        let Some(incoming) = follower.incoming_snapshot.take() else {
            return;
        };
        let snapshot = Snapshot {
            last_index: incoming.last_index,
            last_term: incoming.last_term,
            data: std::sync::Arc::new(incoming.data),
        };
        self.install_snapshot(snapshot);
    }

    /// Raft Figure 13: keep the log after the snapshot if it holds the
    /// snapshot's last entry (its followers may have been counted toward a
    /// commit), else discard it all; the snapshot's entries are committed.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.last_index;
        assert!(index > self.commit_index, "installing a snapshot of entries already committed");
        let log_kept = self.log.term_at(index) == Some(snapshot.last_term);
        let dropped = if log_kept {
            self.persisted_index = self.persisted_index.max(index);
            self.log.compact_through(index)
        } else {
            // Safe before the disk confirms: the shell holds this node's
            // replies and votes until everything before them is durable.
            self.persisted_index = index;
            self.log.reset_after(index, snapshot.last_term)
        };
        self.commit_index = index;
        self.applied_index = index;
        self.snapshot = Some(snapshot.clone());
        self.effects.push(Effect::InstallSnapshot { snapshot, log_kept });
        if !dropped.is_empty() {
            self.effects.push(Effect::ReleaseEntries(dropped));
        }
        // The snapshot is written before any later hard state (the disk
        // runs its operations in order), so repair may end on it.
        self.maybe_finish_repair();
    }

    fn respond_snapshot(&mut self, to: NodeId, last_index: LogIndex, received_bytes: u64, done: bool) {
        let term = self.hard_state.current_term;
        let response = InstallSnapshotResponse { term, last_index, received_bytes, done };
        self.send(to, Message::InstallSnapshotResponse(response));
    }

    pub(super) fn on_install_snapshot_response(&mut self, from: NodeId, response: InstallSnapshotResponse) {
        // A follower counts the bytes of the snapshot it was sent, and says
        // `done` with all of them. (A reply about a snapshot this leader has
        // since replaced by a newer one cannot be checked against it.)
        let overcounts = self.snapshot.as_ref().is_some_and(|snapshot| {
            let total_bytes = snapshot.data.len() as u64;
            snapshot.last_index == response.last_index
                && (response.received_bytes > total_bytes || response.done && response.received_bytes != total_bytes)
        });
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if response.term != self.hard_state.current_term {
            return;
        }
        if overcounts {
            self.drop_message(from, "InstallSnapshotResponse counts bytes the snapshot does not have");
            return;
        }
        let Some(progress) = leader.progress.get_mut(&from) else {
            return; // check_message admits members only, and a leader tracks them all
        };
        progress.recent_active = true;
        if progress.state != ReplicationState::Snapshot || progress.snapshot_index != response.last_index {
            return; // about a snapshot no longer being sent
        }
        if response.done {
            progress.on_snapshot_installed(response.last_index);
            self.maybe_advance_commit();
            self.send_append(from, false);
            return;
        }
        if response.received_bytes == progress.snapshot_acked_bytes {
            return; // a keepalive's answer: the chunk in flight is not in yet
        }
        // Progress, or the follower lost what it had: continue from its offset.
        progress.snapshot_acked_bytes = response.received_bytes;
        progress.snapshot_idle_heartbeats = 0;
        // The snapshot this follower is receiving, even if a newer one exists.
        if let Some(snapshot) = progress.streamed_snapshot.clone() {
            self.send_snapshot_chunk(from, &snapshot, true);
        }
    }
}
