//! The flood's summary, as text or as one JSON object.

use serde_json::{json, Value};

use crate::dealer_load::{ReplyKind, ReplyTally, SocketOutcome};
use crate::histogram::Histogram;
use crate::leadership::{LeaderTerm, LeadershipSummary};
use crate::Arguments;

pub struct FloodReport {
    settings: Value,
    replies: ReplyTally,
    during_flood: [u64; 6],
    /// Success replies in each whole second of the flood.
    successes_per_second: Vec<u64>,
    sent: u64,
    unanswered_at_end: u64,
    no_reply_in_time: u64,
    late_replies: u64,
    unmatched_replies: u64,
    duration_s: f64,
    leadership: Value,
}

impl FloodReport {
    pub fn new(
        arguments: &Arguments,
        start: LeaderTerm,
        outcomes: &[SocketOutcome],
        leadership: &LeadershipSummary,
    ) -> FloodReport {
        let mut replies = ReplyTally::default();
        let mut during_flood = [0; 6];
        let whole_seconds = arguments.duration_s.floor() as usize;
        let mut successes_per_second = vec![0; whole_seconds];
        for outcome in outcomes {
            replies.merge(&outcome.replies);
            for (total, count) in during_flood.iter_mut().zip(outcome.during_flood) {
                *total += count;
            }
            for (second, counts) in outcome.per_second.iter().take(whole_seconds).enumerate() {
                successes_per_second[second] += counts[ReplyKind::Success.position()];
            }
        }
        let total = |field: fn(&SocketOutcome) -> u64| outcomes.iter().map(field).sum::<u64>();
        FloodReport {
            settings: json!({
                "clients": arguments.clients,
                "window": arguments.window,
                "sockets": arguments.sockets,
                "in_flight": u64::from(arguments.clients) * arguments.window as u64,
                "message_bytes": arguments.target.message_bytes,
                "duration_s": arguments.duration_s,
                "grace_s": arguments.grace_s,
                "busy_backoff_ms": arguments.busy_backoff_ms,
                "leader": start.leader,
                "term": start.term,
            }),
            replies,
            during_flood,
            successes_per_second,
            sent: total(|outcome| outcome.sent),
            unanswered_at_end: total(|outcome| outcome.unanswered_at_end),
            no_reply_in_time: total(|outcome| outcome.no_reply_in_time),
            late_replies: total(|outcome| outcome.late_replies),
            unmatched_replies: total(|outcome| outcome.unmatched_replies),
            duration_s: arguments.duration_s,
            leadership: leadership_json(leadership),
        }
    }

    pub fn to_json(&self) -> Value {
        let replies: serde_json::Map<String, Value> = ReplyKind::ALL
            .iter()
            .map(|kind| (kind.name().to_string(), self.replies.of(*kind).total().into()))
            .collect();
        json!({
            "settings": self.settings,
            "sent": self.sent,
            "replies": replies,
            "unanswered_at_end": self.unanswered_at_end,
            "no_reply_in_time": self.no_reply_in_time,
            "late_replies": self.late_replies,
            "unmatched_replies": self.unmatched_replies,
            "good_puts_per_s": self.rate(ReplyKind::Success),
            "busy_per_s": self.rate(ReplyKind::Busy),
            "success_latency_ms": latency_json(self.replies.of(ReplyKind::Success)),
            "busy_latency_ms": latency_json(self.replies.of(ReplyKind::Busy)),
            "successes_per_second": self.successes_per_second,
            "leadership": self.leadership,
        })
    }

    pub fn print(&self) {
        let summary = self.to_json();
        println!("settings: {}", summary["settings"]);
        println!(
            "replies: {} sent={} unanswered_at_end={} no_reply_in_time={} late_replies={} unmatched_replies={}",
            summary["replies"],
            self.sent,
            self.unanswered_at_end,
            self.no_reply_in_time,
            self.late_replies,
            self.unmatched_replies
        );
        println!("good_puts_per_s={:.0} busy_per_s={:.0}", self.rate(ReplyKind::Success), self.rate(ReplyKind::Busy));
        println!("success_latency_ms: {}", summary["success_latency_ms"]);
        println!("busy_latency_ms: {}", summary["busy_latency_ms"]);
        let least = self.successes_per_second.iter().min().copied().unwrap_or(0);
        let empty = self.successes_per_second.iter().filter(|count| **count == 0).count();
        println!(
            "successes per whole second: least={least} seconds_without_success={empty} of {}: {:?}",
            self.successes_per_second.len(),
            self.successes_per_second
        );
        println!("leadership: {}", summary["leadership"]);
    }

    /// Replies of `kind` per second of flood (those arriving while it sent).
    fn rate(&self, kind: ReplyKind) -> f64 {
        self.during_flood[kind.position()] as f64 / self.duration_s
    }
}

fn milliseconds(microseconds: u64) -> f64 {
    microseconds as f64 / 1000.0
}

fn latency_json(histogram: &Histogram) -> Value {
    json!({
        "count": histogram.total(),
        "p50": milliseconds(histogram.percentile_us(0.50)),
        "p99": milliseconds(histogram.percentile_us(0.99)),
        "max": milliseconds(histogram.max_us()),
    })
}

fn leadership_json(leadership: &LeadershipSummary) -> Value {
    let per_node: Vec<Value> = leadership
        .per_node
        .iter()
        .enumerate()
        .map(|(node, polls)| {
            json!({
                "node": node,
                "answered": polls.answered,
                "timed_out": polls.timed_out,
                "latency_ms": latency_json(&polls.latency),
            })
        })
        .collect();
    let leaders_seen: Vec<Value> =
        leadership.leaders_seen.iter().map(|seen| json!({"term": seen.term, "leader": seen.leader})).collect();
    json!({
        "leader_changes": leadership.leader_changes,
        "first_change_at_s": leadership.first_change_at.map(|at| at.as_secs_f64()),
        "terms_advanced": leadership.terms_advanced,
        "leaders_seen": leaders_seen,
        "max_same_leader_gap_ms": milliseconds(leadership.max_same_leader_gap.as_micros() as u64),
        "follower_lapse_answers": leadership.follower_lapse_answers,
        "follower_lapse_episodes": leadership.follower_lapse_episodes,
        "status_polls": per_node,
    })
}
