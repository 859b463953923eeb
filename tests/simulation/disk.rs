//! What a simulated node's disk holds after a power loss, under the model
//! of ALICE (Pillai et al., OSDI 2014, "All File Systems Are Not Created
//! Equal"): what a completed fsync covered stays as it was; a write not yet
//! synced may persist as any subset of its 512-byte sectors, a sector that
//! did not persist reads as zeros (the file grew but its new pages were
//! never written) or as garbage (a reused block's old content, which some
//! file systems expose after a crash), and the file's new size may itself
//! be lost in part.
//!
//! The node's durable state lives in a `MemoryStorage` (what was synced).
//! At a crash, the batches the shell handed to the disk and that were not
//! yet reported durable are replayed as the LogManager and `WalStorage`
//! would have executed them:
//! - the LogManager takes batches in groups and syncs once per group; the
//!   groups it finished before the power went are durable, whole (a random
//!   number of the first batches), the next group is the one being written,
//!   and the batches after it were never started;
//! - in the group being written, the crash comes after a random number of
//!   its operations, or after all of them and the group's one WAL write but
//!   before its fdatasync. Hard state, snapshots, compaction and log resets
//!   are durable as soon as `WalStorage` executes them (each is synced
//!   before it returns); entries only fill the pending batch, which reaches
//!   the file in one write at the sync;
//! - the log is then encoded with the real WAL encoding (`wal_format`): a
//!   segment header, the synced records as an intact batch, then the pending
//!   batch, whose sectors are torn; the real recovery
//!   (`wal_recovery::read_segment`) reads it, and the `MemoryStorage` is
//!   rebuilt to exactly the records it kept. A refusal is a simulator
//!   failure: a tear of unsynced data must never stop a node.
//!
//! A conflicting append (a follower replacing its log's suffix) is modelled
//! as `WalStorage` does it: the synced records stay in the file, and the
//! pending batch opens at the lower index and replaces them when read back.
//! If the tear loses that batch's first record, the node comes back with its
//! old suffix, as a real node would.
//!
//! Simplifications: one segment (rotation in `WalStorage` writes and syncs
//! the pending batch before starting the next segment, so it only makes
//! more of a group durable, and compaction removes whole segments only);
//! the synced records form one batch (their framing does not matter: they
//! are intact); a sector persists whole or not at all, and bytes the file
//! held before the write (the synced tail sharing the first sector) keep
//! their old content.
//!
//! `WalRule::Format1` reads the same tears with the format 1 rule (records
//! back to back, "an intact record after a bad one is damage"), to show
//! that this disk finds what the old rule got wrong; there a conflicting
//! append is modelled as format 1 did it: the file cut at the conflict,
//! the cut durable.

use raftmq::raft::{Entry, LogIndex};
use raftmq::storage::wal_format::{begin_batch, encode_record, encode_segment_header, seal_batch};
use raftmq::storage::wal_recovery::{read_segment, read_segment_format_1, ReadLog, SegmentEnd};
use raftmq::storage::{
    chain_after_snapshot, write_operations, DiskOperation, MemoryStorage, RecoveredState, Storage, StorageError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const SECTOR_BYTES: usize = 512;

/// Which recovery rule reads a log after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalRule {
    /// Format 2: batch frames; a damaged last batch with no intact batch
    /// after it is the torn write.
    Batches,
    /// Format 1 (before issue 16): an intact record after a bad one is
    /// damage to synced data, and the node refuses to start.
    Format1,
}

impl WalRule {
    /// `SIM_OLD_WAL_RULE=1` runs the simulator against the format 1 rule.
    pub fn from_environment() -> WalRule {
        match std::env::var("SIM_OLD_WAL_RULE").as_deref() {
            Ok("1") => WalRule::Format1,
            _ => WalRule::Batches,
        }
    }
}

/// What one power loss did to a node's log.
#[derive(Debug, Default, Clone, Copy)]
pub struct PowerLoss {
    /// Some batch was with the disk, not reported durable.
    pub in_flight: bool,
    /// The pending batch reached the file and recovery cut a torn tail.
    pub torn: bool,
    /// Records of the pending batch that recovery did not keep, when torn.
    pub records_cut: usize,
}

/// The active segment as the real WAL holds it while a group is written.
struct LogFile {
    first_index: LogIndex,
    /// Records a completed fsync covered.
    synced: Vec<Entry>,
    /// The batch `WalStorage` builds in memory, written at the sync.
    pending: Vec<Entry>,
    rule: WalRule,
}

impl LogFile {
    fn on_operation(&mut self, operation: &DiskOperation) {
        match operation {
            DiskOperation::Entries(entries) => self.on_entries(entries),
            DiskOperation::InstallSnapshot { snapshot, log_kept: false } => {
                // reset_log: segments removed and a new one created, synced.
                self.first_index = snapshot.last_index + 1;
                self.synced.clear();
                self.pending.clear();
            }
            _ => {}
        }
    }

    /// `WalStorage::append_entries`: an append inside the pending batch
    /// truncates it there; one below it starts the batch afresh, opening at
    /// the lower index (format 1 cut the file there instead).
    fn on_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        match self.pending.first() {
            Some(start) if first.index >= start.index => {
                self.pending.truncate((first.index - start.index) as usize);
            }
            _ => {
                self.pending.clear();
                if self.rule == WalRule::Format1 {
                    self.synced.truncate(first.index.saturating_sub(self.first_index) as usize);
                }
            }
        }
        self.pending.extend_from_slice(entries);
    }

    /// The file's bytes: what was synced, then (when `written`) the pending
    /// batch. Returns them and where the unsynced bytes start.
    fn encode(&self, written: bool, salt: u64) -> (Vec<u8>, usize) {
        let mut bytes = Vec::new();
        match self.rule {
            WalRule::Batches => {
                bytes = encode_segment_header(self.first_index, salt);
                append_batch(&mut bytes, &self.synced, salt);
            }
            WalRule::Format1 => self.synced.iter().for_each(|entry| encode_record(entry, &mut bytes)),
        }
        let synced_length = bytes.len();
        if written {
            match self.rule {
                WalRule::Batches => append_batch(&mut bytes, &self.pending, salt),
                WalRule::Format1 => self.pending.iter().for_each(|entry| encode_record(entry, &mut bytes)),
            }
        }
        (bytes, synced_length)
    }

    /// The real recovery's reading of `bytes`: the records it keeps and
    /// whether it cut a torn tail; an error is a refusal to start.
    fn recover(&self, bytes: &[u8]) -> Result<(Vec<Entry>, bool), String> {
        let mut log = ReadLog::starting_at(self.first_index);
        let end = match self.rule {
            WalRule::Batches => read_segment(bytes, self.first_index, 0, true, &mut log).map(|(end, _)| end),
            WalRule::Format1 => read_segment_format_1(bytes, 0, true, &mut log),
        };
        let torn = match end {
            Ok(SegmentEnd::Whole) => false,
            Ok(SegmentEnd::Torn { .. }) => true,
            Ok(SegmentEnd::NeverCreated { problem }) => {
                return Err(format!("recovery took a segment whose header was synced for never created ({problem})"));
            }
            Err(damage) => {
                return Err(format!(
                    "recovery ({:?} rule) refused to start: offset {}: {}",
                    self.rule, damage.offset, damage.what
                ));
            }
        };
        Ok((log.entries, torn))
    }

    /// How many pending records `recovered` kept, if it is the synced log
    /// plus a prefix of the pending batch (the rule every tear must obey).
    fn kept_prefix(&self, recovered: &[Entry]) -> Result<usize, String> {
        let base = self.pending.first().map_or(self.synced.len(), |first| {
            (first.index.saturating_sub(self.first_index) as usize).min(self.synced.len())
        });
        let kept = recovered.len().saturating_sub(base);
        if recovered.len() > base
            && recovered[..base] == self.synced[..base]
            && kept <= self.pending.len()
            && recovered[base..] == self.pending[..kept]
        {
            return Ok(kept);
        }
        if recovered == self.synced.as_slice() {
            return Ok(0);
        }
        Err(format!(
            "recovery kept {} records, not the {} synced ones plus a prefix of the {} unsynced ones",
            recovered.len(),
            self.synced.len(),
            self.pending.len()
        ))
    }
}

fn append_batch(out: &mut Vec<u8>, entries: &[Entry], salt: u64) {
    if entries.is_empty() {
        return;
    }
    let start = out.len();
    begin_batch(out);
    entries.iter().for_each(|entry| encode_record(entry, out));
    seal_batch(&mut out[start..], salt);
}

/// Tear the bytes from `synced_length` on, sector by sector.
fn tear(bytes: &mut Vec<u8>, synced_length: usize, rng: &mut impl Rng) {
    match rng.gen_range(0..8) {
        0 => {}                              // the write reached the disk whole; only its fdatasync was missing
        1 => bytes[synced_length..].fill(0), // the file grew, no new sector was written
        _ => {
            let first_sector = synced_length / SECTOR_BYTES;
            let end_sector = bytes.len().div_ceil(SECTOR_BYTES);
            for sector in first_sector..end_sector {
                if rng.gen_bool(0.5) {
                    continue;
                }
                let start = (sector * SECTOR_BYTES).max(synced_length);
                let end = ((sector + 1) * SECTOR_BYTES).min(bytes.len());
                if rng.gen_range(0..4) == 0 {
                    rng.fill(&mut bytes[start..end]); // a reused block's old content
                } else {
                    bytes[start..end].fill(0);
                }
            }
        }
    }
    if rng.gen_range(0..4) == 0 {
        // Only part of the size update reached the disk.
        let length = rng.gen_range(synced_length..=bytes.len());
        bytes.truncate(length);
    }
}

/// Replace `storage` (what was synced) with what the node finds after a
/// power loss while `batches` (not yet reported durable, oldest first)
/// were with its disk. An error names the broken rule.
pub fn power_loss(
    storage: &mut MemoryStorage,
    batches: Vec<Vec<DiskOperation>>,
    rule: WalRule,
    rng: &mut impl Rng,
) -> Result<PowerLoss, String> {
    if batches.is_empty() {
        return Ok(PowerLoss::default());
    }
    let (file, written) = run_until_the_power_goes(storage, batches, rule, rng)?;
    // The tear draws from a stream of its own, so that the run goes on the
    // same way whichever rule reads it and however many sectors it spans.
    let mut tear_rng = ChaCha8Rng::seed_from_u64(rng.gen());
    let (bytes, synced_length) = file.encode(written, tear_rng.gen());
    let mut torn_bytes = bytes.clone();
    if written {
        tear(&mut torn_bytes, synced_length, &mut tear_rng);
    }
    let (recovered, torn) = file.recover(&torn_bytes)?;
    let kept = file.kept_prefix(&recovered)?;
    if written && torn_bytes == bytes && kept != file.pending.len() {
        return Err(format!(
            "the unsynced write reached the disk whole, yet recovery kept {kept} of its {} records",
            file.pending.len()
        ));
    }
    let durable = storage.load().map_err(|error| error.to_string())?;
    *storage = rebuild(durable, recovered).map_err(|error| error.to_string())?;
    let records_cut = if torn { file.pending.len() - kept } else { 0 };
    Ok(PowerLoss { in_flight: true, torn, records_cut })
}

/// Execute on `storage` what the disk did before the power went: the
/// groups it finished, then part of the group in flight. Returns the log
/// file as the WAL holds it then, and whether the group's write was made.
fn run_until_the_power_goes(
    storage: &mut MemoryStorage,
    batches: Vec<Vec<DiskOperation>>,
    rule: WalRule,
    rng: &mut impl Rng,
) -> Result<(LogFile, bool), String> {
    let finished = rng.gen_range(0..batches.len());
    let mut batches = batches.into_iter();
    let synced: Vec<DiskOperation> = batches.by_ref().take(finished).flatten().collect();
    write_operations(storage, synced).map_err(|error| error.to_string())?;
    let group_batches = rng.gen_range(1..=batches.len());
    let group: Vec<DiskOperation> = batches.take(group_batches).flatten().collect();
    let written = rng.gen_bool(0.5);
    let executed = if written { group.len() } else { rng.gen_range(0..=group.len()) };

    let before = storage.load().map_err(|error| error.to_string())?;
    let after_snapshot = before.snapshot.as_ref().map_or(1, |snapshot| snapshot.last_index + 1);
    let first_index = before.entries.first().map_or(after_snapshot, |entry| entry.index);
    let mut file = LogFile { first_index, synced: before.entries, pending: Vec::new(), rule };
    let group: Vec<DiskOperation> = group.into_iter().take(executed).collect();
    group.iter().for_each(|operation| file.on_operation(operation));
    write_operations(storage, group).map_err(|error| error.to_string())?;
    let written = written && !file.pending.is_empty();
    Ok((file, written))
}

/// A `MemoryStorage` holding `durable`'s term, vote and snapshot, and of
/// the log exactly the `recovered` records that continue the snapshot.
fn rebuild(durable: RecoveredState, recovered: Vec<Entry>) -> Result<MemoryStorage, StorageError> {
    let (entries, _) = chain_after_snapshot(durable.snapshot.as_ref(), recovered);
    let mut storage = MemoryStorage::new();
    storage.save_hard_state(durable.hard_state)?;
    if let Some(snapshot) = &durable.snapshot {
        storage.save_snapshot(snapshot)?;
        storage.reset_log(snapshot.last_index)?;
    }
    storage.append_entries(&entries)?;
    Ok(storage)
}
