//! raftmq: a replicated message queue. Raft consensus over ZeroMQ.

pub mod raft;
