//! The `IDENTITY` file: which cluster and node a data directory belongs to
//! (etcd's cluster token), and, once the node has stored a term or vote
//! there, a second line saying so. That line is what makes a directory
//! wiped of everything but `IDENTITY` refuse to start: without it the node
//! would come back as a blank member that has forgotten its votes.
//!
//! `IDENTITY` is written when a node first opens the directory; the claim
//! is added only after `hard_state` is durable, so no crash can leave the
//! claim without the file it vouches for.

use std::fs;
use std::path::Path;

use super::snapshot_file::{io_error, replace_file_atomically};
use super::StorageError;

pub const IDENTITY_FILE: &str = "IDENTITY";
/// The second line of a claimed `IDENTITY`.
const STATE_CLAIM: &str = "holds state: this node's term and vote are in hard_state, which must not go missing";

/// The directory belongs to the cluster and node named by `identity`, or is
/// new and is claimed for them. Returns whether `IDENTITY` says the
/// directory holds the node's term and vote.
pub fn check_identity(directory: &Path, identity: &str) -> Result<bool, StorageError> {
    let path = directory.join(IDENTITY_FILE);
    match fs::read_to_string(&path) {
        Ok(found) => {
            let mut lines = found.lines();
            let named = lines.next().unwrap_or("").trim();
            if named != identity.trim() {
                return Err(StorageError::IdentityMismatch {
                    directory: directory.to_path_buf(),
                    found: named.to_string(),
                    expected: identity.trim().to_string(),
                });
            }
            Ok(lines.any(|line| line.trim() == STATE_CLAIM))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            replace_file_atomically(directory, IDENTITY_FILE, format!("{}\n", identity.trim()).as_bytes())?;
            Ok(false)
        }
        Err(error) => Err(io_error("read", &path, error)),
    }
}

/// Add the claim that the directory holds the node's term and vote. Call
/// only once `hard_state` is durable.
pub fn claim_state(directory: &Path, identity: &str) -> Result<(), StorageError> {
    let text = format!("{}\n{STATE_CLAIM}\n", identity.trim());
    replace_file_atomically(directory, IDENTITY_FILE, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_identity_still_names_its_node_and_says_it_holds_state() {
        let directory = std::env::temp_dir().join(format!("raftmq-identity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        assert!(!check_identity(&directory, "raftmq cluster aa node 0").unwrap(), "a new directory claims nothing");
        assert!(!check_identity(&directory, "raftmq cluster aa node 0").unwrap());
        claim_state(&directory, "raftmq cluster aa node 0").unwrap();
        assert!(check_identity(&directory, "raftmq cluster aa node 0").unwrap());
        let error = check_identity(&directory, "raftmq cluster bb node 1").expect_err("another node is refused");
        assert!(error.to_string().contains("belongs to raftmq cluster aa node 0,"), "{error}");
        fs::remove_dir_all(&directory).unwrap();
    }
}
