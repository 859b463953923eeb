"""The short chaos run CI does on every change: a 3- and a 5-node cluster of
real processes under concurrent clients and a seeded schedule of faults,
each history checked for linearizability, loss and duplicates.
scripts/chaos.py runs the long campaigns."""

import pytest

from chaos import NODE_ARGUMENTS
from chaos.driver import ChaosRun

DURATION_S = 20


@pytest.mark.parametrize("nodes,seed", [(3, 101), (5, 202)])
def test_chaos_history_is_linearizable_and_loses_nothing(make_cluster, nodes, seed):
    cluster = make_cluster(nodes, *NODE_ARGUMENTS)
    result = ChaosRun(cluster, seed, DURATION_S).run()
    report = "\n".join(result.problems[:20])
    assert result.problems == [], f"seed {seed} ({nodes} nodes) failed; history in {result.history_path}:\n{report}"
    assert len(result.faults) >= 5
    answered = result.operations - result.unknown
    assert answered >= 100, f"only {answered} operations were answered"
