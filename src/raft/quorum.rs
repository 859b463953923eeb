//! Majorities (Raft §5.2, §5.3): the one place that decides how many of the
//! cluster's nodes make a quorum and what a quorum agrees on.

/// The quorum of a cluster of `node_count` voting members (this node included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quorum {
    node_count: usize,
}

impl Quorum {
    pub(super) fn new(node_count: usize) -> Quorum {
        assert!(node_count > 0, "a cluster has at least one node");
        Quorum { node_count }
    }

    /// Nodes that make a majority: any two majorities share a node.
    pub(super) fn size(self) -> usize {
        self.node_count / 2 + 1
    }

    /// Do `count` distinct nodes (votes, replies) make a majority?
    pub(super) fn is_reached(self, count: usize) -> bool {
        count >= self.size()
    }

    /// The highest value that a majority of nodes has reached: given one
    /// value per node (a match index, an acknowledged read round), the
    /// largest `v` such that at least a majority hold a value `>= v`.
    /// Nodes missing from `values` count as 0, so a short list never
    /// overstates what a majority holds.
    pub(super) fn agreed_value(self, values: impl IntoIterator<Item = u64>) -> u64 {
        let mut values: Vec<u64> = values.into_iter().collect();
        assert!(values.len() <= self.node_count, "more values than nodes");
        values.sort_unstable_by(|a, b| b.cmp(a));
        values.get(self.size() - 1).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::Quorum;

    // Raft §5.2: a majority of the cluster, so two majorities overlap.
    #[test]
    fn size_is_a_strict_majority() {
        let sizes: Vec<usize> = (1..=7).map(|nodes| Quorum::new(nodes).size()).collect();
        assert_eq!(sizes, vec![1, 2, 2, 3, 3, 4, 4]);
        for nodes in 1..=7 {
            let size = Quorum::new(nodes).size();
            assert!(2 * size > nodes, "two quorums of {nodes} nodes share a node");
            assert!(2 * (size - 1) <= nodes, "one node fewer would not be a quorum of {nodes}");
        }
    }

    #[test]
    fn is_reached_from_a_majority_on() {
        let quorum = Quorum::new(5);
        assert!(!quorum.is_reached(2));
        assert!(quorum.is_reached(3));
        assert!(quorum.is_reached(5));
        assert!(Quorum::new(1).is_reached(1));
        assert!(!Quorum::new(4).is_reached(2), "half of an even cluster is not a majority");
    }

    // Raft §5.3, §5.4.2: the commit point is the index a majority has reached.
    #[test]
    fn agreed_value_is_what_a_majority_has_reached() {
        assert_eq!(Quorum::new(1).agreed_value([7]), 7);
        assert_eq!(Quorum::new(3).agreed_value([9, 4, 1]), 4);
        assert_eq!(Quorum::new(3).agreed_value([1, 9, 9]), 9);
        assert_eq!(Quorum::new(4).agreed_value([8, 6, 4, 2]), 4, "3 of 4 hold at least 4");
        assert_eq!(Quorum::new(5).agreed_value([5, 5, 1, 1, 1]), 1);
        assert_eq!(Quorum::new(5).agreed_value([3, 5, 4, 1, 2]), 3);
    }

    #[test]
    fn agreed_value_counts_missing_nodes_as_zero() {
        assert_eq!(Quorum::new(5).agreed_value([9, 9]), 0);
        assert_eq!(Quorum::new(5).agreed_value([9, 9, 9]), 9);
        assert_eq!(Quorum::new(3).agreed_value([]), 0);
    }
}
