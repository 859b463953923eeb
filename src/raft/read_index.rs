//! Linearizable reads without a log write: ReadIndex (Raft dissertation
//! §6.4). The leader notes the index a read must see, confirms with one
//! round of AppendEntries to a majority that it still leads, and then the
//! shell answers the read once that index is applied.

use super::core::{NotLeader, RaftCore};
use super::effect::Effect;
use super::role::{PendingRead, RoleState};
use super::types::NodeId;

impl RaftCore {
    /// Start a ReadIndex round for every read the shell holds now. Returns
    /// the round; `Effect::ReadsConfirmed` reports when it (and every earlier
    /// round) is confirmed. A leader that has not yet committed an entry of
    /// its term reads at its no-op's index, which covers everything any
    /// earlier leader committed (§6.4 step 1).
    pub fn read_index(&mut self) -> Result<u64, NotLeader> {
        self.check_serving()?;
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(NotLeader { leader: None });
        };
        self.read_round += 1;
        let read_index = self.commit_index.max(leader.term_start_index);
        leader.pending_reads.push_back(PendingRead { round: self.read_round, read_index });
        // Ask now rather than at the next heartbeat: the round trip is the
        // read's whole latency.
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send_append(peer, true);
        }
        self.confirm_reads();
        Ok(self.read_round)
    }

    /// Release every read whose round a majority (counting this leader)
    /// has answered in this term.
    pub(super) fn confirm_reads(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.pending_reads.is_empty() {
            return;
        }
        let acked = leader.progress.values().map(|progress| progress.acked_read_round);
        let confirmed_round = self.quorum.agreed_value(acked.chain([self.read_round]));
        let mut released = None;
        while leader.pending_reads.front().is_some_and(|read| read.round <= confirmed_round) {
            released = leader.pending_reads.pop_front();
        }
        if let Some(read) = released {
            // Later rounds read at indices at least as high, so answering the
            // earlier ones at the latest index released is still linearizable.
            self.effects.push(Effect::ReadsConfirmed { round: read.round, read_index: read.read_index });
        }
    }
}
