//! WAL recovery on damaged directories: the inputs the fuzz target
//! (fuzz/fuzz_targets/wal_recovery.rs) starts from, plus every input a
//! fuzzing run found to crash, replayed on each test run. The harness
//! itself says what must hold.

#[path = "support/wal_recovery_harness.rs"]
mod harness;

#[test]
fn damaged_wal_directories_recover_or_are_refused_cleanly() {
    let inputs: &[&[u8]] = &[
        b"\x00\x01\x00",                     // an empty segment
        b"\x00\x00\x05\xff\xff\xff\xff",     // a record header damaged
        b"\x00\x00\x40\x01",                 // a bit flipped in a record body
        b"\x01\x01\x00",                     // an empty hard_state file
        b"\x01\x00\x04\x01",                 // hard_state damaged
        b"\x02\x01\x00garbage",              // the snapshot replaced with garbage
        b"\x02\x00\x00\x00\x00\x00\x00\x01", // the snapshot's header damaged
        b"\x03\x01\x00another cluster\n",    // an identity that is not ours
    ];
    for input in inputs {
        harness::recover_damaged_wal(input);
    }
}

#[test]
fn every_single_byte_damage_of_the_segment_is_handled() {
    for offset in 0..=255u8 {
        harness::recover_damaged_wal(&[0, 0, offset, 0x80]);
    }
}
