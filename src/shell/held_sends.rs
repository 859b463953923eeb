//! Messages that may leave only once this node's earlier writes are durable
//! (`Message::needs_durability`), held in emission order until the
//! LogManager reports the batch they follow durable.

use std::collections::VecDeque;

use crate::raft::{Message, NodeId};

#[derive(Default)]
pub struct HeldSends {
    /// (disk batch that must be durable first, recipient, message), in
    /// emission order; batch numbers never decrease along the queue.
    waiting: VecDeque<(u64, NodeId, Message)>,
}

impl HeldSends {
    pub fn hold(&mut self, after_batch: u64, to: NodeId, message: Message) {
        assert!(
            self.waiting.back().is_none_or(|&(last, _, _)| last <= after_batch),
            "held messages wait for batches in submission order"
        );
        self.waiting.push_back((after_batch, to, message));
    }

    /// Messages free to go now that every batch up to `durable_batch` is durable.
    pub fn release(&mut self, durable_batch: u64) -> impl Iterator<Item = (NodeId, Message)> + '_ {
        let ready = self.waiting.iter().take_while(|(batch, _, _)| *batch <= durable_batch).count();
        self.waiting.drain(..ready).map(|(_, to, message)| (to, message))
    }

    /// Drop everything: the writes they waited for will never be durable.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}
