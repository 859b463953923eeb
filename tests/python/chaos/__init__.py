"""Fault injection against real raftmq-node processes, and the
linearizability checker for the histories it records."""

#: Node arguments for a chaos run: the test-only network fault switch, and
#: a small snapshot threshold so snapshots and InstallSnapshot happen too.
NODE_ARGUMENTS = (
    "--inject-network-faults",
    "{directory}/network-{index}.rules",
    "--snapshot-threshold-bytes",
    "65536",
)
