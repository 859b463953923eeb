//! Client flood against a cluster's leader, watching whether it keeps leading:
//! `raftmq-flood --config config.json` (defaults: 1,024 logical clients × 64
//! requests in flight over 16 DEALER sockets, 100-byte `put_message`, 60 s).
//!
//! Meanwhile every node is asked for `status` every 50 ms (a REQ socket per
//! node, with a timeout). At the end it prints replies by kind, good puts/s,
//! busy/s, latency percentiles of successes and of `busy` replies, requests
//! still unanswered after a grace period, leader and term changes, the
//! longest time no status answer confirmed the starting leader, and
//! followers that forgot their leader (the outside sign of missed
//! heartbeats). `--json` prints the same as one JSON object. With
//! `--clients 0` it only watches: no topic, no writes, just the polls.
//! Only loopback clusters are accepted.

#[path = "../cluster_load/mod.rs"]
mod cluster_load;
mod dealer_load;
mod histogram;
mod leadership;
mod report;
mod status_poller;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use raftmq::config::ClusterConfig;
use serde_json::json;

use cluster_load::call::call;
use cluster_load::target_arguments::TargetArguments;
use dealer_load::{DealerLoad, LoadPlan, SocketOutcome};
use leadership::LeaderTerm;
use status_poller::{NodeView, Poll, PollPlan};

/// The shared `--config` help, with the limit `check_loopback` enforces.
const CONFIG_HELP: &str =
    "The cluster's config.json (every address must be 127.0.0.1); the leader is found through `status`";

#[derive(Parser, Debug)]
#[command(name = "raftmq-flood", mut_arg("config", |config| config.help(CONFIG_HELP)))]
pub struct Arguments {
    #[command(flatten)]
    target: TargetArguments,
    /// Logical clients, spread over the sockets (0: only watch the status polls).
    #[arg(long, default_value_t = 1024)]
    clients: u32,
    /// Requests each logical client keeps in flight.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// DEALER sockets (one thread each) carrying the logical clients.
    #[arg(long, default_value_t = 16)]
    sockets: u32,
    /// How long requests are sent.
    #[arg(long, default_value_t = 60.0)]
    duration_s: f64,
    /// After the flood, how long to wait for replies still owed.
    #[arg(long, default_value_t = 5.0)]
    grace_s: f64,
    /// A client answered `busy` or `not_leader` waits this long before its next request (0: at once).
    #[arg(long, default_value_t = 0)]
    busy_backoff_ms: u64,
    /// A request unanswered this long is counted as lost and its client moves on.
    #[arg(long, default_value_t = 5000)]
    reply_timeout_ms: u64,
    /// How often each node is asked for `status`.
    #[arg(long, default_value_t = 50)]
    poll_interval_ms: u64,
    /// A status poll unanswered this long counts as timed out.
    #[arg(long, default_value_t = 1000)]
    poll_timeout_ms: u64,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also write every status poll to this file, one JSON object a line.
    #[arg(long)]
    polls_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("raftmq-flood: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &Arguments) -> Result<(), String> {
    check(arguments)?;
    let config = ClusterConfig::load(&arguments.target.config).map_err(|e| e.to_string())?;
    check_loopback(&config)?;
    let context = zmq::Context::new();
    let start = find_leader(&context, &config)?;
    let endpoint = config.client_endpoint(start.leader);
    let topic = if arguments.clients == 0 { String::new() } else { create_topic(&context, &endpoint)? };
    let started = Instant::now();
    let stop_sending_at = started + Duration::from_secs_f64(arguments.duration_s);
    let give_up_at = stop_sending_at + Duration::from_secs_f64(arguments.grace_s);
    let load = LoadPlan {
        endpoint,
        topic,
        message_bytes: arguments.target.message_bytes,
        window: arguments.window,
        busy_backoff: Duration::from_millis(arguments.busy_backoff_ms),
        reply_timeout: Duration::from_millis(arguments.reply_timeout_ms),
        started,
        stop_sending_at,
        give_up_at,
    };
    let polling = PollPlan {
        interval: Duration::from_millis(arguments.poll_interval_ms),
        timeout: Duration::from_millis(arguments.poll_timeout_ms),
        started,
        stop_at: give_up_at,
        load_finished: AtomicBool::new(false),
    };
    let (outcomes, polls) = flood(&context, &config, arguments, &load, &polling)?;
    let polling_ended = started.elapsed();
    if let Some(path) = &arguments.polls_out {
        status_poller::write_polls(path, &polls)?;
    }
    let leadership = leadership::summarize(&polls, start, config.node_count(), polling_ended);
    let report = report::FloodReport::new(arguments, start, &outcomes, &leadership);
    if arguments.json {
        println!("{}", report.to_json());
    } else {
        report.print();
    }
    Ok(())
}

fn check(arguments: &Arguments) -> Result<(), String> {
    if arguments.window == 0 || arguments.sockets == 0 {
        return Err("--window and --sockets must be at least 1".into());
    }
    if arguments.clients > 0 && arguments.sockets > arguments.clients {
        return Err(format!("--sockets ({}) cannot exceed --clients ({})", arguments.sockets, arguments.clients));
    }
    let valid_seconds = |value: f64| value.is_finite() && (0.0..=86_400.0).contains(&value);
    if !valid_seconds(arguments.duration_s) || arguments.duration_s == 0.0 || !valid_seconds(arguments.grace_s) {
        return Err("--duration-s must be in (0, 86400] and --grace-s in [0, 86400]".into());
    }
    if arguments.poll_interval_ms == 0 || arguments.poll_timeout_ms == 0 || arguments.reply_timeout_ms == 0 {
        return Err("--poll-interval-ms, --poll-timeout-ms and --reply-timeout-ms must be at least 1".into());
    }
    if arguments.poll_timeout_ms > i32::MAX as u64 {
        return Err("--poll-timeout-ms is too large".into());
    }
    Ok(())
}

/// A flood is a test load: it must never leave this machine.
fn check_loopback(config: &ClusterConfig) -> Result<(), String> {
    match config.addresses.iter().position(|address| address.ip != "127.0.0.1") {
        Some(index) => Err(format!(
            "address {index} is {}: raftmq-flood only targets clusters on 127.0.0.1",
            config.addresses[index].ip
        )),
        None => Ok(()),
    }
}

/// Run the sockets and the pollers until the plan ends; their results.
fn flood(
    context: &zmq::Context,
    config: &ClusterConfig,
    arguments: &Arguments,
    load: &LoadPlan,
    polling: &PollPlan,
) -> Result<(Vec<SocketOutcome>, Vec<Poll>), String> {
    std::thread::scope(|scope| {
        let pollers: Vec<_> = (0..config.node_count())
            .map(|node| {
                let endpoint = config.client_endpoint(node);
                let nodes = (node, config.node_count());
                scope.spawn(move || status_poller::poll_node(context, nodes, &endpoint, polling))
            })
            .collect();
        let sockets: Vec<_> = (0..arguments.sockets.min(arguments.clients))
            .map(|socket| {
                let clients: Vec<u32> = (socket..arguments.clients).step_by(arguments.sockets as usize).collect();
                scope.spawn(move || DealerLoad::connect(context, load)?.run(&clients))
            })
            .collect();
        let finished: Vec<_> = sockets.into_iter().map(|socket| socket.join()).collect();
        // Watch at least for the whole duration, also when nothing is sent.
        std::thread::sleep(load.stop_sending_at.saturating_duration_since(Instant::now()));
        // Stop polling before any error is returned: the scope waits for the pollers.
        polling.load_finished.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for outcome in finished {
            outcomes.push(outcome.map_err(|_| "a socket thread panicked".to_string())??);
        }
        let mut polls = Vec::new();
        for poller in pollers {
            polls.extend(poller.join().map_err(|_| "a status poller panicked".to_string())??);
        }
        Ok((outcomes, polls))
    })
}

fn find_leader(context: &zmq::Context, config: &ClusterConfig) -> Result<LeaderTerm, String> {
    for _attempt in 0..50 {
        for node in 0..config.node_count() {
            let Ok(status) = call(context, &config.client_endpoint(node), &json!({"op": "status"})) else {
                continue;
            };
            if let Ok(view) = serde_json::from_value::<NodeView>(status) {
                if view.role == "Leader" {
                    return Ok(LeaderTerm { term: view.term, leader: node });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("no leader found within 5 s".into())
}

fn create_topic(context: &zmq::Context, endpoint: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let topic = format!("flood-{}-{}", std::process::id(), now.as_millis());
    let reply = call(context, endpoint, &json!({"op": "put_topic", "topic": topic}))?;
    if reply["success"] != json!(true) {
        return Err(format!("cannot create the flood topic {topic}: {reply}"));
    }
    Ok(topic)
}
