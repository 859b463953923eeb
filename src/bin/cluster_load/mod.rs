//! What raftmq-bench and raftmq-flood share: the cluster they load and how
//! they ask a node one question. Each binary includes this folder with
//! `#[path]`; it is not in the library, which the tools' command lines and
//! their one-shot REQ calls are no part of.

pub mod call;
pub mod target_arguments;
