//! `raftmq-keygen`: CURVE key pairs for authenticated peers (docs/security.md).
//!
//! `raftmq-keygen node0.key` writes a new secret key to node0.key (mode 600,
//! never over an existing file) and prints its public key, the value of
//! that node's `"public_key"` in config.json.
//!
//! `raftmq-keygen --cluster config.json --out-dir keys/` does it for every
//! node of a config: `keys/node<i>.key`, and keys/config.json, the same config
//! with each node's `"public_key"` filled in.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use raftmq::config::ClusterConfig;

/// Generate CURVE key pairs for raftmq nodes.
#[derive(Parser, Debug)]
#[command(name = "raftmq-keygen", version)]
struct Arguments {
    /// Write one new secret key to this file and print its public key.
    #[arg(required_unless_present = "cluster", conflicts_with = "cluster")]
    secret_key_file: Option<PathBuf>,
    /// Make keys for every node of this config.json.
    #[arg(long, requires = "out_dir", value_name = "CONFIG")]
    cluster: Option<PathBuf>,
    /// With --cluster: where `node<i>.key` and the keyed config.json go.
    #[arg(long, value_name = "DIRECTORY")]
    out_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let outcome = match (&arguments.secret_key_file, &arguments.cluster, &arguments.out_dir) {
        (Some(file), _, _) => write_key_pair(file).map(|public_key| println!("{public_key}")),
        (None, Some(config), Some(directory)) => key_cluster(config, directory),
        _ => Err("give a secret key file, or --cluster CONFIG --out-dir DIRECTORY".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("raftmq-keygen: error: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// A new key pair: the secret into `file` (created, mode 600); returns the
/// public key in Z85.
fn write_key_pair(file: &Path) -> Result<String, String> {
    let pair = zmq::CurveKeyPair::new().map_err(|error| format!("cannot make a CURVE key pair: {error}"))?;
    let secret = zmq::z85_encode(&pair.secret_key).map_err(|error| error.to_string())?;
    let public = zmq::z85_encode(&pair.public_key).map_err(|error| error.to_string())?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|error| format!("cannot create {} (it is never overwritten): {error}", file.display()))?;
    writeln!(output, "{secret}")
        .and_then(|()| output.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", file.display()))?;
    Ok(public)
}

fn key_cluster(config_file: &Path, directory: &Path) -> Result<(), String> {
    // Checked as a config first, then edited as JSON so other fields stay.
    let config = ClusterConfig::load(config_file).map_err(|error| error.to_string())?;
    let text = std::fs::read_to_string(config_file).map_err(|error| error.to_string())?;
    let mut document: serde_json::Value = serde_json::from_str(&text).map_err(|error| error.to_string())?;
    std::fs::create_dir_all(directory).map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    let addresses = document["addresses"].as_array_mut().ok_or("config has no \"addresses\" list")?;
    for (index, address) in addresses.iter_mut().enumerate().take(config.node_count()) {
        let key_file = directory.join(format!("node{index}.key"));
        let public_key = write_key_pair(&key_file)?;
        address["public_key"] = serde_json::Value::String(public_key);
        println!("node {index}: secret key in {}", key_file.display());
    }
    let keyed = directory.join("config.json");
    let pretty = serde_json::to_string_pretty(&document).map_err(|error| error.to_string())?;
    std::fs::write(&keyed, pretty + "\n").map_err(|error| format!("cannot write {}: {error}", keyed.display()))?;
    println!(
        "config with public keys: {}\nstart node i with: raftmq-node {} i --peer-key-file {}\n\
         (a cluster that already has data: copy the \"public_key\" lines into the config.json it runs from, \
         since data directories live beside the config file)",
        keyed.display(),
        keyed.display(),
        directory.join("node<i>.key").display()
    );
    Ok(())
}
