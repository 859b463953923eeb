//! raftmq: a replicated message queue. Raft consensus over ZeroMQ.

pub mod binary;
pub mod config;
pub mod node;
pub mod protocol;
pub mod queue;
pub mod raft;
pub mod shell;
pub mod storage;
