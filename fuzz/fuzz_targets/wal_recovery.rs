//! WAL recovery on damaged files: see tests/support/wal_recovery_harness.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/wal_recovery_harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::recover_damaged_wal(data));
