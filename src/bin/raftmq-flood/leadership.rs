//! What the status polls say about leadership during the flood.
//!
//! - Leader changes: distinct (term, leader) pairs any node named, beyond
//!   the one the flood started under.
//! - Terms advanced: the highest term any node reported, minus the start term.
//! - Same-leader gap: the longest time between successive answers (from any
//!   node) naming the starting leader in the starting term, counting from the
//!   flood's start to the polls' end; it grows when the leader is deposed or
//!   when nobody can vouch for it.
//! - Missed heartbeats, seen from outside: a follower forgets its leader
//!   (`leader` goes null) once it heard nothing from it for the shortest
//!   election timeout (3 heartbeat intervals by default), before any
//!   pre-vote; so a follower answer naming no leader, or another term,
//!   is a lapse. Lapses are counted as answers and as episodes (runs of
//!   such answers from one follower).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::histogram::Histogram;
use crate::status_poller::Poll;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaderTerm {
    pub term: u64,
    pub leader: usize,
}

#[derive(Debug, Default)]
pub struct NodePolls {
    pub answered: u64,
    pub timed_out: u64,
    pub latency: Histogram,
}

#[derive(Debug)]
pub struct LeadershipSummary {
    pub leaders_seen: BTreeSet<LeaderTerm>,
    pub leader_changes: usize,
    /// When an answer first named a leader other than the starting one.
    pub first_change_at: Option<Duration>,
    pub terms_advanced: u64,
    pub max_same_leader_gap: Duration,
    pub follower_lapse_answers: u64,
    pub follower_lapse_episodes: u64,
    pub per_node: Vec<NodePolls>,
}

pub fn summarize(polls: &[Poll], start: LeaderTerm, node_count: usize, polling_ended: Duration) -> LeadershipSummary {
    let mut leaders_seen = BTreeSet::from([start]);
    let mut max_term = start.term;
    let mut confirmations = vec![Duration::ZERO];
    let mut first_change_at: Option<Duration> = None;
    let mut per_node: Vec<NodePolls> = (0..node_count).map(|_| NodePolls::default()).collect();
    for poll in polls {
        let Some((latency, view)) = &poll.answer else {
            per_node[poll.node].timed_out += 1;
            continue;
        };
        per_node[poll.node].answered += 1;
        per_node[poll.node].latency.record(latency.as_micros() as u64);
        max_term = max_term.max(view.term);
        if let Some(leader) = view.named_leader(poll.node) {
            let named = LeaderTerm { term: view.term, leader };
            leaders_seen.insert(named);
            if named == start {
                confirmations.push(poll.at);
            } else if first_change_at.is_none_or(|first| poll.at < first) {
                first_change_at = Some(poll.at);
            }
        }
    }
    confirmations.push(polling_ended);
    confirmations.sort_unstable();
    let max_same_leader_gap = confirmations.windows(2).map(|pair| pair[1] - pair[0]).max().unwrap_or_default();
    let (follower_lapse_answers, follower_lapse_episodes) = follower_lapses(polls, start, node_count);
    LeadershipSummary {
        leader_changes: leaders_seen.len() - 1,
        first_change_at,
        leaders_seen,
        terms_advanced: max_term - start.term,
        max_same_leader_gap,
        follower_lapse_answers,
        follower_lapse_episodes,
        per_node,
    }
}

/// (answers, episodes) in which a follower named no leader or another term.
fn follower_lapses(polls: &[Poll], start: LeaderTerm, node_count: usize) -> (u64, u64) {
    let (mut answers, mut episodes) = (0, 0);
    for follower in (0..node_count).filter(|node| *node != start.leader) {
        let mut answered: Vec<&Poll> =
            polls.iter().filter(|poll| poll.node == follower && poll.answer.is_some()).collect();
        answered.sort_by_key(|poll| poll.at);
        let mut in_lapse = false;
        for poll in answered {
            let (_, view) = poll.answer.as_ref().expect("only answered polls were kept");
            let lapsed = view.term != start.term || view.named_leader(follower) != Some(start.leader);
            answers += u64::from(lapsed);
            episodes += u64::from(lapsed && !in_lapse);
            in_lapse = lapsed;
        }
    }
    (answers, episodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_poller::NodeView;

    fn answer(node: usize, at_ms: u64, role: &str, term: u64, leader: Option<usize>) -> Poll {
        let view = NodeView { role: role.into(), term, leader };
        Poll { node, at: Duration::from_millis(at_ms), answer: Some((Duration::from_millis(1), view)) }
    }

    #[test]
    fn a_steady_leader_shows_no_change_and_small_gaps() {
        let start = LeaderTerm { term: 2, leader: 0 };
        let polls: Vec<Poll> = (0..20u64)
            .flat_map(|tick| {
                [
                    answer(0, tick * 50, "Leader", 2, Some(0)),
                    answer(1, tick * 50 + 10, "Follower", 2, Some(0)),
                    answer(2, tick * 50 + 20, "Follower", 2, Some(0)),
                ]
            })
            .collect();
        let summary = summarize(&polls, start, 3, Duration::from_millis(1000));
        assert_eq!(summary.leader_changes, 0);
        assert_eq!(summary.first_change_at, None);
        assert_eq!(summary.terms_advanced, 0);
        assert_eq!(summary.max_same_leader_gap, Duration::from_millis(30));
        assert_eq!((summary.follower_lapse_answers, summary.follower_lapse_episodes), (0, 0));
        assert_eq!(summary.per_node[1].answered, 20);
    }

    #[test]
    fn a_deposed_leader_counts_changes_terms_lapses_and_the_gap_to_the_end() {
        let start = LeaderTerm { term: 2, leader: 0 };
        let polls = vec![
            answer(1, 100, "Follower", 2, Some(0)),
            answer(1, 150, "Follower", 2, None),
            answer(1, 200, "Candidate", 3, None),
            answer(1, 250, "Leader", 3, Some(1)),
            answer(2, 260, "Follower", 4, Some(2)),
            Poll { node: 0, at: Duration::from_millis(300), answer: None },
        ];
        let summary = summarize(&polls, start, 3, Duration::from_millis(1000));
        assert_eq!(summary.leader_changes, 2);
        assert_eq!(summary.first_change_at, Some(Duration::from_millis(250)));
        assert_eq!(summary.terms_advanced, 2);
        assert_eq!(summary.max_same_leader_gap, Duration::from_millis(900));
        assert_eq!((summary.follower_lapse_answers, summary.follower_lapse_episodes), (4, 2));
        assert_eq!(summary.per_node[0].timed_out, 1);
    }
}
