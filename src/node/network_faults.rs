//! Testing only: a switch that drops peer traffic, so a chaos test can cut
//! the real processes apart (partitions, one-way links) without network
//! namespaces or root. Enabled only by `--inject-network-faults <file>`.
//! The file holds lines `in <peer>...` (drop what arrives from those peers)
//! and `out <peer>...` (drop what this node sends them); `*` means every
//! peer. A missing or empty file means a healthy network. The file is
//! re-read at most every 10 ms, so a changed schedule applies within that.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::raft::NodeId;

const RECHECK_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkRules {
    drop_from: Vec<bool>,
    drop_to: Vec<bool>,
}

impl LinkRules {
    /// Parse the rule file's text for a cluster of `node_count` nodes.
    pub fn parse(text: &str, node_count: usize) -> Result<LinkRules, String> {
        let mut rules = LinkRules { drop_from: vec![false; node_count], drop_to: vec![false; node_count] };
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
            let mut words = line.split_whitespace();
            let direction = match words.next() {
                Some("in") => &mut rules.drop_from,
                Some("out") => &mut rules.drop_to,
                _ => return Err(format!("rule {line:?} must start with \"in\" or \"out\"")),
            };
            for word in words {
                if word == "*" {
                    direction.iter_mut().for_each(|dropped| *dropped = true);
                    continue;
                }
                let peer: NodeId = word.parse().map_err(|_| format!("{word:?} in {line:?} is not a node index"))?;
                *direction.get_mut(peer).ok_or(format!("node {peer} in {line:?} is not in the cluster"))? = true;
            }
        }
        Ok(rules)
    }

    pub fn drops_from(&self, peer: NodeId) -> bool {
        self.drop_from.get(peer).copied().unwrap_or(false)
    }

    pub fn drops_to(&self, peer: NodeId) -> bool {
        self.drop_to.get(peer).copied().unwrap_or(false)
    }
}

/// One thread's view of the switch; each thread that touches peer traffic
/// holds its own, so no lock is shared on the hot path.
pub struct NetworkFaults {
    path: Option<PathBuf>,
    node_count: usize,
    rules: LinkRules,
    checked_at: Option<Instant>,
}

impl NetworkFaults {
    pub fn new(path: Option<PathBuf>, node_count: usize) -> NetworkFaults {
        let healthy = LinkRules::parse("", node_count).expect("no rules parse");
        NetworkFaults { path, node_count, rules: healthy, checked_at: None }
    }

    /// The rules in force now (all links up when the switch is off).
    pub fn current(&mut self) -> &LinkRules {
        let Some(path) = &self.path else {
            return &self.rules;
        };
        let now = Instant::now();
        if self.checked_at.is_some_and(|checked| now.duration_since(checked) < RECHECK_INTERVAL) {
            return &self.rules;
        }
        self.checked_at = Some(now);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        match LinkRules::parse(&text, self.node_count) {
            Ok(rules) if rules != self.rules => {
                info!("network fault rules now: {:?}", text.trim());
                self.rules = rules;
            }
            Ok(_) => {}
            Err(problem) => warn!("ignoring the network fault file {}: {problem}", path.display()),
        }
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directions_peers_and_wildcards() {
        let rules = LinkRules::parse("# cut off from 0\nin 0 2\nout *\n", 3).unwrap();
        assert!(rules.drops_from(0) && !rules.drops_from(1) && rules.drops_from(2));
        assert!((0..3).all(|peer| rules.drops_to(peer)));
        assert_eq!(LinkRules::parse("", 3).unwrap(), LinkRules::parse("\n# nothing\n", 3).unwrap());
        assert!(LinkRules::parse("sideways 1", 3).is_err());
        assert!(LinkRules::parse("in 7", 3).is_err());
        assert!(LinkRules::parse("in x", 3).is_err());
    }
}
