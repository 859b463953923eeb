//! A simulated network: messages are delayed by a random amount (so they
//! reorder), may be dropped or duplicated, and may be cut by partitions.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use raftmq::raft::{Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub struct NetworkConfig {
    pub drop_per_mille: u32,
    pub duplicate_per_mille: u32,
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Messages held back for up to `stale_delay_ms` (a TCP connection
    /// that retransmits after a partition heals delivers them late).
    pub stale_per_mille: u32,
    pub stale_delay_ms: u64,
    /// Messages also delivered as a confused copy (confused.rs).
    pub confused_per_mille: u32,
}

impl NetworkConfig {
    pub fn reliable() -> NetworkConfig {
        NetworkConfig {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            min_delay_ms: 1,
            max_delay_ms: 3,
            stale_per_mille: 0,
            stale_delay_ms: 0,
            confused_per_mille: 0,
        }
    }

    pub fn hostile() -> NetworkConfig {
        NetworkConfig {
            drop_per_mille: 50,
            duplicate_per_mille: 30,
            min_delay_ms: 1,
            max_delay_ms: 25,
            stale_per_mille: 5,
            stale_delay_ms: 3000,
            confused_per_mille: 5,
        }
    }
}

struct InFlight {
    deliver_at_ms: u64,
    sequence: u64,
    from: NodeId,
    to: NodeId,
    message: Message,
    /// A confused copy (confused.rs), not what the sender sent.
    confused: bool,
}

/// A message due for delivery.
pub struct Delivery {
    pub from: NodeId,
    pub to: NodeId,
    pub message: Message,
    pub confused: bool,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    // Reversed so the BinaryHeap pops the earliest delivery first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deliver_at_ms, other.sequence).cmp(&(self.deliver_at_ms, self.sequence))
    }
}

pub struct Network {
    pub config: NetworkConfig,
    queue: BinaryHeap<InFlight>,
    /// Directed links that drop everything: (from, to).
    cut: HashSet<(NodeId, NodeId)>,
    sequence: u64,
    pub delivered: u64,
    node_count: usize,
}

impl Network {
    pub fn new(config: NetworkConfig, node_count: usize) -> Network {
        Network { config, queue: BinaryHeap::new(), cut: HashSet::new(), sequence: 0, delivered: 0, node_count }
    }

    pub fn send(&mut self, rng: &mut ChaCha8Rng, now_ms: u64, from: NodeId, to: NodeId, message: Message) {
        if rng.gen_range(0..1000) < self.config.drop_per_mille {
            return;
        }
        if rng.gen_range(0..1000) < self.config.confused_per_mille {
            let confused = super::confused::confuse(rng, from, self.node_count, &message);
            let delay_ms = rng.gen_range(self.config.min_delay_ms..=self.config.max_delay_ms);
            self.sequence += 1;
            let sequence = self.sequence;
            let deliver_at_ms = now_ms + delay_ms;
            self.queue.push(InFlight { deliver_at_ms, sequence, from, to, message: confused, confused: true });
        }
        let copies = if rng.gen_range(0..1000) < self.config.duplicate_per_mille { 2 } else { 1 };
        for _ in 0..copies {
            let stale = rng.gen_range(0..1000) < self.config.stale_per_mille;
            let delay_ms = if stale {
                rng.gen_range(self.config.max_delay_ms..=self.config.stale_delay_ms.max(self.config.max_delay_ms))
            } else {
                rng.gen_range(self.config.min_delay_ms..=self.config.max_delay_ms)
            };
            self.sequence += 1;
            self.queue.push(InFlight {
                deliver_at_ms: now_ms + delay_ms,
                sequence: self.sequence,
                from,
                to,
                message: message.clone(),
                confused: false,
            });
        }
    }

    /// Messages due by `now_ms` whose link is not cut at delivery time.
    pub fn due(&mut self, now_ms: u64) -> Vec<Delivery> {
        let mut due = Vec::new();
        while self.queue.peek().is_some_and(|head| head.deliver_at_ms <= now_ms) {
            let InFlight { from, to, message, confused, .. } = self.queue.pop().expect("peeked");
            if !self.cut.contains(&(from, to)) {
                self.delivered += 1;
                due.push(Delivery { from, to, message, confused });
            }
        }
        due
    }

    /// Cut every link between different groups; links inside a group stay.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.cut.clear();
        for (a, group_a) in groups.iter().enumerate() {
            for (b, group_b) in groups.iter().enumerate() {
                if a != b {
                    for &from in group_a {
                        for &to in group_b {
                            self.cut.insert((from, to));
                        }
                    }
                }
            }
        }
    }

    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
