//! The disk pipeline: the core's writes of one turn become one numbered
//! batch for the disk thread (group commit), and messages that promise
//! durable state wait until the batch they follow is reported durable.
//!
//! Storage failure: a failed write or sync voids every batch not yet
//! reported durable. The disk thread then opens a new epoch; reports and
//! batches of an older epoch are ignored, and the shell rebuilds its core
//! from what storage durably holds, as after a crash.

use std::time::Duration;

use super::held_sends::HeldSends;
use super::Time;
use crate::raft::{Message, NodeId};
use crate::storage::DiskOperation;

/// What the pipeline hands the driver at the end of a turn.
pub struct Batch {
    /// The epoch the batch belongs to.
    pub epoch: u64,
    /// Its number.
    pub sequence: u64,
    /// The writes, in emission order.
    pub operations: Vec<DiskOperation>,
}

/// Where a message goes: out now, or held until the disk catches up.
pub enum Route {
    /// Send it now.
    Now,
    /// Held; `capped_ack` is a true-as-it-stands acknowledgement to send now.
    Held {
        /// A success capped at the durable index, sent ahead of the held one.
        capped_ack: Option<Message>,
    },
}

pub struct DiskPipeline {
    batch: Vec<DiskOperation>,
    epoch: u64,
    submitted_sequence: u64,
    durable_sequence: u64,
    held: HeldSends,
    /// When this follower last sent a capped acknowledgement ahead of its disk.
    capped_ack_sent_at: Option<Time>,
    capped_ack_interval: Duration,
    /// Why storage failed, while it does: the node then takes no part.
    failure: Option<String>,
    /// Bytes storage occupies, and syncs so far (for status).
    pub disk_bytes: u64,
    pub disk_syncs: u64,
}

impl DiskPipeline {
    /// `disk_bytes`: what storage occupied at start; `capped_ack_interval`:
    /// how often a follower may acknowledge its durable prefix early.
    pub fn new(disk_bytes: u64, capped_ack_interval: Duration) -> DiskPipeline {
        DiskPipeline {
            batch: Vec::new(),
            epoch: 0,
            submitted_sequence: 0,
            durable_sequence: 0,
            held: HeldSends::default(),
            capped_ack_sent_at: None,
            capped_ack_interval,
            failure: None,
            disk_bytes,
            disk_syncs: 0,
        }
    }

    pub fn push(&mut self, operation: DiskOperation) {
        assert!(self.failure.is_none(), "no writes while storage is failed");
        self.batch.push(operation);
    }

    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Writes emitted or submitted whose durability is not yet reported.
    pub fn writes_outstanding(&self) -> bool {
        !self.batch.is_empty() || self.durable_sequence < self.submitted_sequence
    }

    /// Decide whether `message` may leave now. One that promises durable
    /// state (`Message::needs_durability`) waits for every write emitted
    /// before it. While a follower's acknowledgement waits, the leader is
    /// told at most once per interval what is already durable: a success
    /// capped at `persisted_index` is true as it stands, and it keeps the
    /// leader's quorum check fed, so a slow fsync cannot depose a healthy
    /// leader.
    pub fn route(&mut self, to: NodeId, message: Message, persisted_index: u64, now: Time) -> Route {
        if !(self.writes_outstanding() && message.needs_durability()) {
            return Route::Now;
        }
        let capped_ack = self.capped_acknowledgement(&message, persisted_index, now);
        let after_batch = self.submitted_sequence + u64::from(!self.batch.is_empty());
        self.held.hold(after_batch, to, message);
        Route::Held { capped_ack }
    }

    fn capped_acknowledgement(&mut self, message: &Message, persisted_index: u64, now: Time) -> Option<Message> {
        let Message::AppendEntriesResponse(response) = message else {
            return None;
        };
        let recently = self.capped_ack_sent_at.is_some_and(|sent| now.saturating_sub(sent) < self.capped_ack_interval);
        if !response.success || recently {
            return None;
        }
        self.capped_ack_sent_at = Some(now);
        let mut capped = response.clone();
        capped.index = capped.index.min(persisted_index);
        Some(Message::AppendEntriesResponse(capped))
    }

    /// The turn's writes as one batch, if there are any.
    pub fn take_batch(&mut self) -> Option<Batch> {
        if self.batch.is_empty() {
            return None;
        }
        self.submitted_sequence += 1;
        let operations = std::mem::take(&mut self.batch);
        Some(Batch { epoch: self.epoch, sequence: self.submitted_sequence, operations })
    }

    /// The disk reports every batch through `sequence` of `epoch` durable.
    /// Returns false for a report a failure has since voided; otherwise the
    /// messages that may now leave go to `release`.
    pub fn on_durable(
        &mut self,
        epoch: u64,
        sequence: u64,
        disk_bytes: u64,
        syncs: u64,
        release: &mut Vec<(NodeId, Message)>,
    ) -> bool {
        if epoch != self.epoch || self.failure.is_some() {
            return false;
        }
        assert!(sequence <= self.submitted_sequence, "the disk reports a batch never submitted");
        self.durable_sequence = self.durable_sequence.max(sequence);
        self.disk_bytes = disk_bytes;
        self.disk_syncs = syncs;
        release.extend(self.held.release(self.durable_sequence));
        true
    }

    /// Writes since the last durable report may be lost: drop them and the
    /// messages that waited for them.
    pub fn on_failed(&mut self, detail: String) {
        self.failure = Some(detail);
        self.held.clear();
        self.batch.clear();
    }

    /// Storage works again under `epoch`; nothing is outstanding.
    pub fn on_recovered(&mut self, epoch: u64, disk_bytes: u64) {
        assert!(epoch > self.epoch, "epochs only move forward");
        self.epoch = epoch;
        self.durable_sequence = self.submitted_sequence;
        self.disk_bytes = disk_bytes;
        self.failure = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{AppendEntriesResponse, RequestVote};

    fn ack(index: u64) -> Message {
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 1,
            success: true,
            index,
            conflict_index: 0,
            conflict_term: None,
            read_round: 0,
        })
    }

    #[test]
    fn a_durable_promise_waits_for_the_writes_before_it() {
        let mut pipeline = DiskPipeline::new(0, Duration::from_millis(50));
        let now = Duration::ZERO;
        let vote = Message::RequestVote(RequestVote {
            term: 1,
            candidate: 0,
            last_log_index: 0,
            last_log_term: 0,
            leadership_transfer: false,
        });
        assert!(matches!(pipeline.route(1, vote.clone(), 0, now), Route::Now), "nothing outstanding");
        pipeline.push(DiskOperation::Compact(0));
        assert!(matches!(pipeline.route(1, ack(5), 3, now), Route::Held { capped_ack: Some(_) }));
        assert!(matches!(pipeline.route(1, vote, 3, now), Route::Now), "a request promises nothing");
        let batch = pipeline.take_batch().expect("one write");
        assert_eq!((batch.epoch, batch.sequence), (0, 1));
        let mut released = Vec::new();
        assert!(pipeline.on_durable(0, 1, 10, 1, &mut released));
        assert_eq!(released, vec![(1, ack(5))]);
        assert!(!pipeline.writes_outstanding());
    }

    #[test]
    fn capped_acknowledgements_are_rate_limited_and_capped() {
        let mut pipeline = DiskPipeline::new(0, Duration::from_millis(50));
        pipeline.push(DiskOperation::Compact(0));
        let Route::Held { capped_ack: Some(capped) } = pipeline.route(0, ack(9), 4, Duration::ZERO) else {
            panic!("first acknowledgement is capped");
        };
        assert_eq!(capped, ack(4));
        let again = pipeline.route(0, ack(10), 4, Duration::from_millis(10));
        assert!(matches!(again, Route::Held { capped_ack: None }), "within the interval");
        let later = pipeline.route(0, ack(11), 5, Duration::from_millis(60));
        assert!(matches!(later, Route::Held { capped_ack: Some(_) }));
    }

    #[test]
    fn a_failure_voids_outstanding_writes_and_old_epochs() {
        let mut pipeline = DiskPipeline::new(0, Duration::from_millis(50));
        pipeline.push(DiskOperation::Compact(0));
        pipeline.route(2, ack(3), 0, Duration::ZERO);
        let batch = pipeline.take_batch().expect("a write");
        pipeline.on_failed("disk full".into());
        let mut released = Vec::new();
        assert!(!pipeline.on_durable(batch.epoch, batch.sequence, 0, 0, &mut released), "voided");
        assert!(released.is_empty());
        pipeline.on_recovered(1, 7);
        assert!(!pipeline.writes_outstanding());
        pipeline.push(DiskOperation::Compact(0));
        assert_eq!(pipeline.take_batch().map(|batch| (batch.epoch, batch.sequence)), Some((1, 2)));
    }
}
