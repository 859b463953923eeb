//! Helpers the WAL test files share: `mod support;` in a file under tests/
//! brings them in. Each test file is its own crate and uses only some of
//! them, so unused ones are not warned about here.
//!
//! wal_recovery_harness.rs stays outside this module: the fuzz target
//! includes it on its own by `#[path]`, with no other file from here.
#![allow(dead_code)]

pub mod temp_directory;
pub mod wal_directory;
pub mod wal_layout;
