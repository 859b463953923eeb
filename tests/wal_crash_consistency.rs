//! Crash consistency of the real WAL code, under the disk model of ALICE
//! (Pillai et al., OSDI 2014, "All File Systems Are Not Created Equal"):
//! what was written since the last completed fsync may persist as any
//! subset of its 512-byte sectors, a grown file may show zeros or keep its
//! old size, a new file may be missing or partly written, a removal may not
//! have happened; what a completed fsync covered stays as it was.
//!
//! Each scenario drives `WalStorage` through a sequence of synced writes,
//! copies the directory after every step whose durability the WAL waited
//! for, and then builds every state a power cut during the last step could
//! leave (exhaustively while that step spans few sectors, a seeded random
//! sample beyond). For each one: `open` succeeds, the log is the synced log
//! plus a prefix of the unsynced write, every record is byte-identical to
//! what was written, and the log takes writes again.

mod support;

use std::path::Path;
use std::sync::Arc;

use raftmq::raft::{Entry, HardState, Snapshot};
use raftmq::storage::{write_snapshot_temporary, Storage, WalOptions, WalStorage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::temp_directory::TempDirectory;
use support::wal_directory::{files, restore, Files};
use support::wal_layout::SECTOR_BYTES;

/// Units of tearing (sectors, file sizes, file existences) up to which every
/// combination is tried; beyond, `SAMPLED_STATES` random ones.
const EXHAUSTIVE_UNITS: usize = 13;
const SAMPLED_STATES: usize = 1500;

/// How a file may look after the crash; `None` is "absent".
type FileChoice = Option<Vec<u8>>;

/// The independent choices a crash makes for one changed file, each a
/// binary unit: whether its creation or removal reached the directory,
/// whether its new size did, and for each sector that changed, whether the
/// new content did (else the old, or zeros where the file grew).
struct FileTear {
    name: String,
    before: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
    sectors: Vec<usize>,
}

impl FileTear {
    fn names_differ(&self) -> bool {
        self.before.is_none() || self.after.is_none()
    }

    fn sizes_differ(&self) -> bool {
        let size = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or(0, Vec::len);
        self.after.is_some() && size(&self.before) != size(&self.after)
    }

    fn unit_count(&self) -> usize {
        usize::from(self.names_differ()) + usize::from(self.sizes_differ()) + self.sectors.len()
    }

    fn build(&self, units: &[bool]) -> FileChoice {
        let mut units = units.iter().copied();
        let Some(after) = &self.after else {
            let removed = units.next().expect("a name unit");
            return if removed { None } else { self.before.clone() };
        };
        if self.before.is_none() && !units.next().expect("a name unit") {
            return None; // the new file's name never reached the disk
        }
        let mut bytes = self.before.clone().unwrap_or_default();
        let size_persisted = if self.sizes_differ() { units.next().expect("a size unit") } else { true };
        let length = if size_persisted { after.len() } else { bytes.len() };
        bytes.resize(length, 0);
        for (&sector, persisted) in self.sectors.iter().zip(units) {
            let start = sector * SECTOR_BYTES;
            let end = (start + SECTOR_BYTES).min(length).min(after.len());
            if persisted && start < end {
                bytes[start..end].copy_from_slice(&after[start..end]);
            }
        }
        Some(bytes)
    }
}

fn file_tears(before: &Files, after: &Files) -> Vec<FileTear> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut tears = Vec::new();
    for name in names {
        let (old, new) = (before.get(name), after.get(name));
        if old == new {
            continue;
        }
        let empty = Vec::new();
        let (old_bytes, new_bytes) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        let sector_count = old_bytes.len().max(new_bytes.len()).div_ceil(SECTOR_BYTES);
        let sectors = (0..sector_count)
            .filter(|&sector| {
                let range = |bytes: &Vec<u8>| {
                    let start = (sector * SECTOR_BYTES).min(bytes.len());
                    bytes[start..(start + SECTOR_BYTES).min(bytes.len())].to_vec()
                };
                new.is_some() && range(old_bytes) != range(new_bytes)
            })
            .collect();
        tears.push(FileTear { name: name.clone(), before: old.cloned(), after: new.cloned(), sectors });
    }
    tears
}

/// Every state (or a seeded sample) a crash may leave when the writes that
/// turned `before` into `after` were in flight, no fsync between them done.
fn crash_states(before: &Files, after: &Files, seed: u64) -> Vec<Files> {
    let tears = file_tears(before, after);
    let units: usize = tears.iter().map(FileTear::unit_count).sum();
    let build = |values: &[bool]| {
        let mut files = before.clone();
        let mut at = 0;
        for tear in &tears {
            match tear.build(&values[at..at + tear.unit_count()]) {
                Some(bytes) => files.insert(tear.name.clone(), bytes),
                None => files.remove(&tear.name),
            };
            at += tear.unit_count();
        }
        files
    };
    if units <= EXHAUSTIVE_UNITS {
        return (0..1u32 << units)
            .map(|bits| build(&(0..units).map(|unit| bits >> unit & 1 == 1).collect::<Vec<_>>()))
            .collect();
    }
    let mut random = SmallRng::seed_from_u64(seed);
    let mut states = vec![build(&vec![false; units]), build(&vec![true; units])];
    for _ in 0..SAMPLED_STATES {
        let values: Vec<bool> = (0..units).map(|_| random.gen_bool(0.5)).collect();
        states.push(build(&values));
    }
    states
}

fn entry(index: u64, term: u64, bytes: usize) -> Entry {
    let data = (0..bytes).map(|at| (index as usize * 31 + at * 7) as u8).collect();
    Entry { term, index, data }
}

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64, bytes: usize) -> Vec<Entry> {
    indexes.map(|index| entry(index, term, bytes)).collect()
}

/// The log after the first `count` entries of `batch` replaced the suffix
/// of `log` from the batch's first index.
fn apply_prefix(log: &[Entry], batch: &[Entry], count: usize) -> Vec<Entry> {
    if count == 0 {
        return log.to_vec();
    }
    let mut result: Vec<Entry> = log.iter().filter(|entry| entry.index < batch[0].index).cloned().collect();
    result.extend_from_slice(&batch[..count]);
    result
}

/// What recovery must give: the log after a prefix of `batch` of at least
/// `at_least` entries (those a completed fsync covered), and the hard
/// state and snapshot one of those allowed.
struct Expected<'a> {
    log: &'a [Entry],
    batch: &'a [Entry],
    at_least: usize,
    hard_states: Vec<HardState>,
    snapshots: Vec<Option<Snapshot>>,
}

fn options(segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes, ..WalOptions::default() }
}

/// Open every crash state and check what it recovers. Returns how many
/// states there were and how many different logs they recovered.
fn check_states(
    directory: &Path,
    states: &[Files],
    segment_bytes: u64,
    expected: &Expected,
    scenario: &str,
) -> (usize, usize) {
    let mut recovered_logs = std::collections::BTreeSet::new();
    let allowed: Vec<Vec<Entry>> = (expected.at_least..=expected.batch.len())
        .map(|count| apply_prefix(expected.log, expected.batch, count))
        .collect();
    for (number, state) in states.iter().enumerate() {
        restore(directory, state);
        let context = || format!("{scenario}, crash state {number} of {}", states.len());
        let mut wal = match WalStorage::open(directory, options(segment_bytes)) {
            Ok(wal) => wal,
            Err(error) => panic!("{}: open refused: {error}", context()),
        };
        let recovered = wal.load().unwrap_or_else(|error| panic!("{}: load failed: {error}", context()));
        let snapshot_index = recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.last_index);
        let visible: Vec<Vec<Entry>> = allowed
            .iter()
            .map(|log| log.iter().filter(|entry| entry.index > snapshot_index).cloned().collect())
            .collect();
        assert!(
            visible.contains(&recovered.entries),
            "{}: recovered entries {:?} are not the synced log plus a prefix of the unsynced write",
            context(),
            recovered.entries.iter().map(|entry| (entry.index, entry.term)).collect::<Vec<_>>()
        );
        recovered_logs.insert(recovered.entries.len());
        assert!(
            expected.hard_states.contains(&recovered.hard_state),
            "{}: hard state {:?}",
            context(),
            recovered.hard_state
        );
        assert!(expected.snapshots.contains(&recovered.snapshot), "{}: snapshot through {snapshot_index}", context());
        // The node starts by itself: the log takes the next write and keeps it.
        if number % 7 == 0 {
            let next_index = recovered.entries.last().map_or(snapshot_index + 1, |last| last.index + 1);
            let term = recovered.entries.last().map_or(9, |last| last.term.max(9));
            let next = entry(next_index, term, 100);
            wal.append_entries(std::slice::from_ref(&next)).unwrap();
            wal.sync().unwrap();
            drop(wal);
            let mut again = WalStorage::open(directory, options(segment_bytes))
                .unwrap_or_else(|error| panic!("{}: reopen: {error}", context()));
            assert_eq!(again.load().unwrap().entries.last(), Some(&next), "{}: the next write", context());
        }
    }
    (states.len(), recovered_logs.len())
}

/// Write `batches` each with its own sync; return the log written.
fn write_synced(wal: &mut WalStorage, batches: &[Vec<Entry>]) -> Vec<Entry> {
    let mut log: Vec<Entry> = Vec::new();
    for batch in batches {
        wal.append_entries(batch).unwrap();
        wal.sync().unwrap();
        log = apply_prefix(&log, batch, batch.len());
    }
    log
}

fn synced_history() -> Vec<Vec<Entry>> {
    vec![entries(1..=3, 1, 40), entries(4..=4, 1, 700), entries(5..=9, 2, 90)]
}

/// The last write, unsynced, torn at every combination of its sectors (and
/// of the file's size): `batch_bytes` sizes its entries.
fn torn_append(entry_count: u64, entry_bytes: usize, seed: u64) -> (usize, usize) {
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let synced = files(&directory.0);
    let batch = entries(10..=9 + entry_count, 2, entry_bytes);
    wal.append_entries(&batch).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let written = files(&directory.0);
    let states = crash_states(&synced, &written, seed);
    let expected = Expected {
        log: &log,
        batch: &batch,
        at_least: 0,
        hard_states: vec![HardState::default()],
        snapshots: vec![None],
    };
    check_states(&directory.0, &states, 1 << 20, &expected, &format!("append of {entry_count} × {entry_bytes} bytes"))
}

#[test]
fn a_torn_append_of_up_to_twelve_sectors_keeps_the_synced_log_and_a_prefix_exhaustively() {
    // 11 entries of 500 bytes: 5.8 KB, twelve sectors, every combination.
    let (states, logs) = torn_append(11, 500, 1);
    assert!(states >= 1 << 12, "{states} states");
    assert_eq!(logs, 12, "every prefix of the 11 entries, the empty one too, is what some tear leaves");
}

#[test]
fn a_torn_append_of_many_sectors_keeps_the_synced_log_and_a_prefix_sampled() {
    let (states, logs) = torn_append(40, 600, 2);
    assert!(states > SAMPLED_STATES, "{states} states");
    assert!(logs > 5, "tears leave prefixes of many lengths: {logs}");
}

#[test]
fn a_torn_append_of_one_small_record_keeps_the_synced_log() {
    let (_, logs) = torn_append(1, 10, 3);
    assert_eq!(logs, 2, "the record is kept or not");
}

// Raft §5.3: a conflicting append replaces the suffix; torn, it leaves the
// old suffix or a prefix of the new one, never a mix.
#[test]
fn a_torn_conflicting_append_leaves_the_old_suffix_or_a_prefix_of_the_new() {
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let synced = files(&directory.0);
    let batch = entries(6..=12, 3, 300);
    wal.append_entries(&batch).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let states = crash_states(&synced, &files(&directory.0), 4);
    let expected = Expected {
        log: &log,
        batch: &batch,
        at_least: 0,
        hard_states: vec![HardState::default()],
        snapshots: vec![None],
    };
    check_states(&directory.0, &states, 1 << 20, &expected, "conflicting append");
}

// A full segment is synced, the next one created (header synced, then the
// directory), hard_state replaced to record both (the log's durable mark),
// and the rest of the write goes there: cut at every step.
#[test]
fn a_cut_during_segment_rotation_keeps_the_synced_log_and_a_prefix() {
    let segment_bytes = 3000;
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(segment_bytes)).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let before_append = files(&directory.0);
    let batch = entries(10..=17, 2, 300);
    wal.append_entries(&batch).unwrap(); // rotates: writes, syncs, creates the next segment
    let rotated = files(&directory.0);
    wal.sync().unwrap();
    drop(wal);
    let written = files(&directory.0);
    let new_segments: Vec<&String> =
        rotated.keys().filter(|name| name.ends_with(".wal") && !before_append.contains_key(*name)).collect();
    assert_eq!(new_segments.len(), 1, "the append rotated once");
    assert!(!before_append.contains_key("hard_state") && rotated.contains_key("hard_state"), "the mark is written");
    let mut segment_created = rotated.clone();
    segment_created.remove("hard_state");
    let mut old_segment_synced = segment_created.clone();
    old_segment_synced.remove(new_segments[0]);
    // Entries the rotation synced into the old segment.
    let in_old_segment = {
        let old_name = before_append.keys().filter(|name| name.ends_with(".wal")).max().unwrap();
        let grown = rotated[old_name].len() - before_append[old_name].len();
        batch
            .iter()
            .scan(16, |bytes, entry| {
                *bytes += 24 + entry.data.len();
                Some(*bytes)
            })
            .take_while(|&bytes| bytes <= grown)
            .count()
    };
    assert!(in_old_segment > 0 && in_old_segment < batch.len(), "{in_old_segment}");
    let phases = [
        ("rotation: the full segment's last write", &before_append, &old_segment_synced, 0),
        ("rotation: creating the next segment", &old_segment_synced, &segment_created, in_old_segment),
        ("rotation: recording the mark", &segment_created, &rotated, in_old_segment),
        ("rotation: the next segment's first write", &rotated, &written, in_old_segment),
    ];
    for (seed, (name, before, after, at_least)) in phases.into_iter().enumerate() {
        let states = if name == "rotation: recording the mark" {
            replacement_states(before, after, "hard_state", "hard_state.tmp", 10 + seed as u64)
        } else {
            crash_states(before, after, 10 + seed as u64)
        };
        let expected = Expected {
            log: &log,
            batch: &batch,
            at_least,
            hard_states: vec![HardState::default()],
            snapshots: vec![None],
        };
        check_states(&directory.0, &states, segment_bytes, &expected, name);
    }
}

/// The states a crash leaves while `name` is replaced by temp file, fsync,
/// rename, directory fsync: the old file with the temp file torn any way,
/// or the new file.
fn replacement_states(before: &Files, after: &Files, name: &str, temporary: &str, seed: u64) -> Vec<Files> {
    let mut with_temporary = before.clone();
    with_temporary.insert(temporary.to_string(), after[name].clone());
    let mut states = crash_states(before, &with_temporary, seed);
    states.push(after.clone());
    states
}

#[test]
fn a_cut_while_the_hard_state_is_replaced_leaves_the_old_or_the_new() {
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    let old = HardState { current_term: 2, voted_for: Some(1), ..Default::default() };
    wal.save_hard_state(old).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let before = files(&directory.0);
    let new = HardState { current_term: 3, voted_for: Some(2), ..Default::default() };
    wal.save_hard_state(new).unwrap();
    drop(wal);
    let states = replacement_states(&before, &files(&directory.0), "hard_state", "hard_state.tmp", 20);
    let expected = Expected { log: &log, batch: &[], at_least: 0, hard_states: vec![old, new], snapshots: vec![None] };
    check_states(&directory.0, &states, 1 << 20, &expected, "hard_state replacement");
}

fn snapshot(last_index: u64, last_term: u64, bytes: usize) -> Snapshot {
    Snapshot {
        last_index,
        last_term,
        data: Arc::new((0..bytes).map(|at| (at * 13 + last_index as usize) as u8).collect()),
    }
}

// Raft §7: the snapshot is replaced atomically, then segments wholly below
// it are removed and the directory synced; any pattern of removals a crash
// leaves is read back as the same log after the snapshot.
#[test]
fn a_cut_during_snapshot_replacement_and_compaction_leaves_the_old_or_the_new() {
    let segment_bytes = 600;
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(segment_bytes)).unwrap();
    let old_snapshot = snapshot(3, 1, 700);
    wal.save_snapshot(&old_snapshot).unwrap();
    let history: Vec<Vec<Entry>> = (1..=30).map(|index| entries(index..=index, 1, 120)).collect();
    let log = write_synced(&mut wal, &history);
    let before = files(&directory.0);
    let new_snapshot = snapshot(24, 1, 1500);
    wal.save_snapshot(&new_snapshot).unwrap();
    let saved = files(&directory.0);
    wal.compact(24).unwrap();
    drop(wal);
    let compacted = files(&directory.0);
    let removed = saved.len() - compacted.len();
    assert!(removed >= 3, "compaction removed {removed} segments");
    let snapshots = vec![Some(old_snapshot), Some(new_snapshot.clone())];
    let expected = Expected { log: &log, batch: &[], at_least: 0, hard_states: vec![HardState::default()], snapshots };
    let states = replacement_states(&before, &saved, "snapshot", "snapshot.tmp", 30);
    check_states(&directory.0, &states, segment_bytes, &expected, "snapshot replacement");
    let expected = Expected { snapshots: vec![Some(new_snapshot)], ..expected };
    let states = crash_states(&saved, &compacted, 31);
    check_states(&directory.0, &states, segment_bytes, &expected, "compaction");
}

// A snapshot the snapshot thread wrote to its own temp file is put in place
// by rename; a cut before that leaves the old one.
#[test]
fn a_cut_while_a_written_snapshot_is_adopted_leaves_the_old_or_the_new() {
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let old_snapshot = snapshot(2, 1, 300);
    wal.save_snapshot(&old_snapshot).unwrap();
    let before = files(&directory.0);
    let new_snapshot = snapshot(6, 2, 900);
    let temporary = write_snapshot_temporary(&directory.0, &new_snapshot).unwrap();
    let temporary_name = temporary.file_name().unwrap().to_str().unwrap().to_string();
    wal.adopt_snapshot(&new_snapshot, &temporary).unwrap();
    drop(wal);
    let states = replacement_states(&before, &files(&directory.0), "snapshot", &temporary_name, 40);
    let snapshots = vec![Some(old_snapshot), Some(new_snapshot)];
    let expected = Expected { log: &log, batch: &[], at_least: 0, hard_states: vec![HardState::default()], snapshots };
    check_states(&directory.0, &states, 1 << 20, &expected, "snapshot adoption");
}

// Raft Figure 13: an installed snapshot the log does not continue replaces
// the whole log. The log's durable mark is lowered to the snapshot first
// (hard_state replaced), then segments are removed newest first, each
// removal synced, then an empty segment is created after the snapshot: cut
// at every step.
#[test]
fn a_cut_while_an_installed_snapshot_resets_the_log_leaves_no_stale_entries() {
    let segment_bytes = 600;
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(segment_bytes)).unwrap();
    let history: Vec<Vec<Entry>> = (1..=20).map(|index| entries(index..=index, 1, 120)).collect();
    let log = write_synced(&mut wal, &history);
    let installed = snapshot(15, 4, 800); // term 4 at 15: the log diverges
    wal.save_snapshot(&installed).unwrap();
    let saved = files(&directory.0);
    wal.reset_log(15).unwrap();
    drop(wal);
    let reset = files(&directory.0);
    assert_ne!(saved["hard_state"], reset["hard_state"], "the mark is lowered");
    let mut lowered = saved.clone();
    lowered.insert("hard_state".into(), reset["hard_state"].clone());
    let mut states = replacement_states(&saved, &lowered, "hard_state", "hard_state.tmp", 49);
    let mut remaining = lowered;
    let mut old_segments: Vec<String> = remaining.keys().filter(|name| name.ends_with(".wal")).cloned().collect();
    while let Some(newest) = old_segments.pop() {
        states.extend(crash_states(
            &remaining,
            &{
                let mut next = remaining.clone();
                next.remove(&newest);
                next
            },
            50,
        ));
        remaining.remove(&newest);
    }
    states.extend(crash_states(&remaining, &reset, 51));
    let expected = Expected {
        log: &log[..15],
        batch: &[],
        at_least: 0,
        hard_states: vec![HardState::default()],
        snapshots: vec![Some(installed)],
    };
    check_states(&directory.0, &states, segment_bytes, &expected, "reset after an installed snapshot");
}

// Clients choose their bytes, and checksums are no secret: a message that
// holds a copy of a real batch frame, torn off its batch's header, must not
// pass for a later write (which would make the tear look like damage).
#[test]
fn a_batch_frame_inside_client_data_does_not_make_a_tear_look_like_damage() {
    let other = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&other.0, options(1 << 20)).unwrap();
    let empty = files(&other.0);
    wal.append_entries(&entries(1..=2, 1, 50)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let written = files(&other.0);
    let segment = written.keys().find(|name| name.ends_with(".wal")).unwrap();
    let frame = written[segment][empty[segment].len()..].to_vec();

    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(1 << 20)).unwrap();
    let log = write_synced(&mut wal, &synced_history());
    let synced = files(&directory.0);
    let mut batch = entries(10..=12, 2, 700);
    batch[1].data = frame.repeat(3);
    wal.append_entries(&batch).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let states = crash_states(&synced, &files(&directory.0), 60);
    let expected = Expected {
        log: &log,
        batch: &batch,
        at_least: 0,
        hard_states: vec![HardState::default()],
        snapshots: vec![None],
    };
    let (_, logs) = check_states(&directory.0, &states, 1 << 20, &expected, "a batch frame inside client data");
    assert_eq!(logs, 4, "every prefix of the three entries is what some tear leaves");
}

// Raft §5.3 again, reaching back into an older segment below the log's
// durable mark (hard_state records the synced log and its last segment):
// the mark is lowered first (hard_state replaced), then the later segments
// are removed newest first, each removal synced, then the new suffix is
// written. No state a cut leaves is taken for a log that lost synced
// records: each opens, with a prefix of the old log that still holds the
// entries before the conflict, or those entries and a prefix of the new
// suffix.
#[test]
fn a_conflicting_append_below_the_mark_never_leaves_a_state_that_is_refused() {
    let segment_bytes = 600;
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, options(segment_bytes)).unwrap();
    let history: Vec<Vec<Entry>> = (1..=20).map(|index| entries(index..=index, 1, 120)).collect();
    let log = write_synced(&mut wal, &history);
    let hard_state = HardState { current_term: 3, voted_for: Some(0), ..Default::default() };
    wal.save_hard_state(hard_state).unwrap(); // records the mark: synced through 20
    let marked = files(&directory.0);
    // Index 6 is in the middle of a closed segment (5 to 8).
    let batch = entries(6..=6, 3, 120);
    let kept = 5;
    wal.append_entries(&batch).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let written = files(&directory.0);
    assert_ne!(marked["hard_state"], written["hard_state"], "the mark is lowered");
    let mut lowered = marked.clone();
    lowered.insert("hard_state".into(), written["hard_state"].clone());
    let mut states = replacement_states(&marked, &lowered, "hard_state", "hard_state.tmp", 70);
    let mut remaining = lowered;
    let later: Vec<String> =
        remaining.keys().filter(|name| name.ends_with(".wal") && !written.contains_key(*name)).cloned().collect();
    assert!(later.len() >= 2, "the append removes later segments: {later:?}");
    for newest in later.iter().rev() {
        let mut next = remaining.clone();
        next.remove(newest);
        states.extend(crash_states(&remaining, &next, 71));
        remaining = next;
    }
    states.extend(crash_states(&remaining, &written, 72));
    for (number, state) in states.iter().enumerate() {
        restore(&directory.0, state);
        let context = format!("conflicting append below the mark, crash state {number} of {}", states.len());
        let mut wal = WalStorage::open(&directory.0, options(segment_bytes))
            .unwrap_or_else(|error| panic!("{context}: open refused: {error}"));
        let recovered = wal.load().unwrap();
        assert_eq!(recovered.hard_state, hard_state, "{context}");
        let entries = recovered.entries;
        let old_prefix = entries.len() >= kept && entries[..] == log[..entries.len()];
        let new_suffix = entries.len() > kept
            && entries[..kept] == log[..kept]
            && batch.get(..entries.len() - kept) == Some(&entries[kept..]);
        assert!(old_prefix || new_suffix, "{context}: recovered {} entries", entries.len());
    }
}

// The first term a node stores: hard_state is replaced, then IDENTITY gains
// the line that says the directory holds it (a directory that later lacks
// hard_state is refused as wiped). A cut at any step opens: without
// hard_state the claim was never made, so the node is still new.
#[test]
fn a_cut_while_the_first_term_is_stored_and_claimed_never_leaves_a_refused_state() {
    let identity = WalOptions { identity: Some("raftmq cluster 00ff node 2".into()), ..options(1 << 20) };
    let directory = TempDirectory::in_memory("crash");
    let mut wal = WalStorage::open(&directory.0, identity.clone()).unwrap();
    let before = files(&directory.0);
    let stored = HardState { current_term: 1, voted_for: Some(2), ..Default::default() };
    wal.save_hard_state(stored).unwrap();
    drop(wal);
    let after = files(&directory.0);
    assert_ne!(before["IDENTITY"], after["IDENTITY"], "the directory is claimed");
    let mut hard_state_written = before.clone();
    hard_state_written.insert("hard_state".into(), after["hard_state"].clone());
    let mut states = replacement_states(&before, &hard_state_written, "hard_state", "hard_state.tmp", 80);
    states.extend(replacement_states(&hard_state_written, &after, "IDENTITY", "IDENTITY.tmp", 81));
    for (number, state) in states.iter().enumerate() {
        restore(&directory.0, state);
        let context = format!("first term stored and claimed, crash state {number} of {}", states.len());
        let mut wal = WalStorage::open(&directory.0, identity.clone())
            .unwrap_or_else(|error| panic!("{context}: open refused: {error}"));
        let recovered = wal.load().unwrap().hard_state;
        assert!(recovered == HardState::default() || recovered == stored, "{context}: {recovered:?}");
        drop(wal);
        assert!(WalStorage::open(&directory.0, identity.clone()).is_ok(), "{context}: reopen");
    }
}
