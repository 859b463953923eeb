//! Load generator: `raftmq-bench --config config.json --clients 64 --window 16`.
//! Each client is a DEALER socket on its own thread keeping `window` requests
//! in flight (put_message of `--message-bytes`), for `--duration-s`. Prints
//! throughput and latency percentiles measured from send to reply, and how
//! many writes each of the leader's fdatasyncs covered (group commit).
//!
//! `raftmq-bench --fsync-probe-dir DIR` instead measures this disk: it
//! appends `--message-bytes` entries to a WAL in DIR, one fdatasync each.

#[path = "cluster_load/mod.rs"]
mod cluster_load;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use raftmq::config::ClusterConfig;
use serde_json::{json, Value};

use cluster_load::call::call;
use cluster_load::target_arguments::TargetArguments;

#[derive(Parser, Debug)]
#[command(name = "raftmq-bench")]
struct Arguments {
    #[command(flatten)]
    target: TargetArguments,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Requests each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    window: usize,
    #[arg(long, default_value_t = 5.0)]
    duration_s: f64,
    /// Alternate put_message and get_message, so the queue stays short and
    /// the log, not the state, is what grows (shows compaction at work).
    #[arg(long)]
    put_get: bool,
    /// Measure fdatasync latency of a WAL in this (new) directory, then exit.
    #[arg(long)]
    fsync_probe_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 2000)]
    fsync_probe_count: u64,
    /// Writers syncing their own WALs at once, as three nodes on one disk do.
    #[arg(long, default_value_t = 1)]
    fsync_probe_writers: usize,
}

struct ClientOutcome {
    latencies_us: Vec<u64>,
    errors: u64,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("raftmq-bench: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &Arguments) -> Result<(), String> {
    if arguments.clients == 0 || arguments.window == 0 {
        return Err("--clients and --window must be at least 1".into());
    }
    if let Some(directory) = &arguments.fsync_probe_dir {
        return probe_fsync(directory, arguments);
    }
    let config = ClusterConfig::load(&arguments.target.config).map_err(|e| e.to_string())?;
    let context = zmq::Context::new();
    let leader = find_leader(&context, &config)?;
    let syncs_before = call(&context, &leader, &json!({"op": "status"}))?["disk_syncs"].as_u64().unwrap_or(0);
    let topic = format!("bench-{}", std::process::id());
    let reply = call(&context, &leader, &json!({"op": "put_topic", "topic": topic}))?;
    if reply["success"] != json!(true) {
        return Err(format!("cannot create the bench topic: {reply}"));
    }
    let duration = Duration::from_secs_f64(arguments.duration_s);
    let started = Instant::now();
    let handles: Vec<_> = (0..arguments.clients)
        .map(|_| {
            let (context, leader, topic) = (context.clone(), leader.clone(), topic.clone());
            let load = Load {
                window: arguments.window,
                message_bytes: arguments.target.message_bytes,
                duration,
                put_get: arguments.put_get,
            };
            std::thread::spawn(move || drive_client(&context, &leader, &topic, &load))
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let outcome = handle.join().map_err(|_| "a client thread panicked".to_string())??;
        latencies_us.extend(outcome.latencies_us);
        errors += outcome.errors;
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let syncs_after = call(&context, &leader, &json!({"op": "status"}))?["disk_syncs"].as_u64().unwrap_or(0);
    report(arguments, &mut latencies_us, errors, elapsed_s, syncs_after.saturating_sub(syncs_before));
    Ok(())
}

/// Append entries to fresh WALs (one per writer, all at once) with one
/// fdatasync each; print the sync latency percentiles: the floor under a
/// durable write's latency, and what sharing the disk does to it.
fn probe_fsync(directory: &std::path::Path, arguments: &Arguments) -> Result<(), String> {
    if directory.exists() {
        return Err(format!("{} exists; the probe wants a new directory", directory.display()));
    }
    let (count, message_bytes) = (arguments.fsync_probe_count, arguments.target.message_bytes);
    let writers: Vec<_> = (0..arguments.fsync_probe_writers.max(1))
        .map(|writer| {
            let directory = directory.join(format!("writer-{writer}"));
            std::thread::spawn(move || probe_one_wal(&directory, count, message_bytes))
        })
        .collect();
    let mut latencies_us = Vec::new();
    for writer in writers {
        latencies_us.extend(writer.join().map_err(|_| "a probe thread panicked".to_string())??);
    }
    let _ = std::fs::remove_dir_all(directory);
    latencies_us.sort_unstable();
    println!(
        "fsync probe: writers={} appends_each={count} entry_bytes={message_bytes} p50_ms={:.3} p90_ms={:.3} \
         p99_ms={:.3} max_ms={:.3}",
        arguments.fsync_probe_writers.max(1),
        percentile(&latencies_us, 0.50),
        percentile(&latencies_us, 0.90),
        percentile(&latencies_us, 0.99),
        latencies_us.last().map_or(0.0, |&max| max as f64 / 1000.0),
    );
    Ok(())
}

fn probe_one_wal(directory: &std::path::Path, count: u64, message_bytes: usize) -> Result<Vec<u64>, String> {
    use raftmq::raft::Entry;
    use raftmq::storage::{Storage, WalOptions, WalStorage};
    let mut wal = WalStorage::open(directory, WalOptions::default()).map_err(|e| e.to_string())?;
    let mut latencies_us = Vec::with_capacity(count as usize);
    for index in 1..=count {
        let entry = Entry { term: 1, index, data: vec![b'm'; message_bytes] };
        let started = Instant::now();
        wal.append_entries(std::slice::from_ref(&entry)).map_err(|e| e.to_string())?;
        wal.sync().map_err(|e| e.to_string())?;
        latencies_us.push(started.elapsed().as_micros() as u64);
    }
    Ok(latencies_us)
}

fn find_leader(context: &zmq::Context, config: &ClusterConfig) -> Result<String, String> {
    for _attempt in 0..50 {
        for index in 0..config.node_count() {
            let endpoint = config.client_endpoint(index);
            if let Ok(status) = call(context, &endpoint, &json!({"op": "status"})) {
                if status["role"] == json!("Leader") {
                    return Ok(endpoint);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("no leader found".into())
}

struct Load {
    window: usize,
    message_bytes: usize,
    duration: Duration,
    put_get: bool,
}

fn drive_client(context: &zmq::Context, endpoint: &str, topic: &str, load: &Load) -> Result<ClientOutcome, String> {
    let (window, message_bytes, duration) = (load.window, load.message_bytes, load.duration);
    let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(5000).map_err(|e| e.to_string())?;
    socket.connect(endpoint).map_err(|e| e.to_string())?;
    let message = "m".repeat(message_bytes);
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(window);
    let mut outcome = ClientOutcome { latencies_us: Vec::with_capacity(1 << 16), errors: 0 };
    let mut next_id = 0u64;
    let stop_at = Instant::now() + duration;
    let send = |next_id: &mut u64, sent_at: &mut HashMap<u64, Instant>| -> Result<(), String> {
        let request = if load.put_get && *next_id % 2 == 1 {
            json!({"op": "get_message", "topic": topic, "id": *next_id})
        } else {
            json!({"op": "put_message", "topic": topic, "message": message, "id": *next_id})
        };
        sent_at.insert(*next_id, Instant::now());
        *next_id += 1;
        socket.send_multipart([&b""[..], request.to_string().as_bytes()], 0).map_err(|e| e.to_string())
    };
    for _ in 0..window {
        send(&mut next_id, &mut sent_at)?;
    }
    while !sent_at.is_empty() {
        let frames = socket.recv_multipart(0).map_err(|e| format!("waiting for a reply: {e}"))?;
        let reply: Value = serde_json::from_slice(frames.last().ok_or("empty reply")?).map_err(|e| e.to_string())?;
        let id = reply["id"].as_u64().ok_or("reply without id")?;
        let sent = sent_at.remove(&id).ok_or("reply to an unknown id")?;
        // A get that finds the topic empty is a valid answer, not an error.
        if reply.get("error").is_none() {
            outcome.latencies_us.push(sent.elapsed().as_micros() as u64);
        } else {
            outcome.errors += 1;
        }
        if Instant::now() < stop_at {
            send(&mut next_id, &mut sent_at)?;
        }
    }
    Ok(outcome)
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[position] as f64 / 1000.0
}

fn report(arguments: &Arguments, latencies_us: &mut [u64], errors: u64, elapsed_s: f64, leader_syncs: u64) {
    latencies_us.sort_unstable();
    let writes_per_sync = if leader_syncs == 0 { 0.0 } else { latencies_us.len() as f64 / leader_syncs as f64 };
    println!(
        "clients={} window={} message_bytes={} ops={} errors={} elapsed_s={:.2} throughput_ops_s={:.0} \
         p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} leader_syncs={leader_syncs} writes_per_sync={writes_per_sync:.1}",
        arguments.clients,
        arguments.window,
        arguments.target.message_bytes,
        latencies_us.len(),
        errors,
        elapsed_s,
        latencies_us.len() as f64 / elapsed_s,
        percentile(latencies_us, 0.50),
        percentile(latencies_us, 0.90),
        percentile(latencies_us, 0.99),
        latencies_us.last().map_or(0.0, |&max| max as f64 / 1000.0),
    );
}
