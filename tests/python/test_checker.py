"""The linearizability checker itself: it must accept correct concurrent
histories and catch each kind of violation the chaos test looks for."""

from chaos.checker import check_history


def op(kind, call, ret, result, topic="t", message=None):
    record = {"op": kind, "call": call, "return": ret, "result": result}
    if kind != "get_topics":
        record["topic"] = topic
    if message is not None:
        record["message"] = message
    return record


BASE = [op("put_topic", 0, 1, True)]


def test_accepts_a_correct_concurrent_history():
    history = BASE + [
        op("put_message", 2, 10, True, message="a"),
        op("put_message", 3, 9, True, message="b"),
        # Overlapping puts may land in either order; this get saw b first.
        op("get_message", 11, 12, "b"),
        op("get_message", 13, 14, "a"),
        op("get_message", 15, 16, None),
        op("get_topics", 17, 18, ["t"]),
    ]
    assert check_history(history) == []


def test_an_unknown_outcome_may_or_may_not_have_happened():
    applied = BASE + [op("put_message", 2, None, None, message="a"), op("get_message", 5, 6, "a")]
    assert check_history(applied) == []
    not_applied = BASE + [op("put_message", 2, None, None, message="a"), op("get_message", 5, 6, None)]
    assert check_history(not_applied) == []


def test_catches_a_fifo_violation():
    history = BASE + [
        op("put_message", 2, 3, True, message="a"),
        op("put_message", 4, 5, True, message="b"),
        op("get_message", 6, 7, "b"),
    ]
    assert any("not linearizable" in problem for problem in check_history(history))


def test_catches_a_message_delivered_twice():
    history = BASE + [
        op("put_message", 2, 3, True, message="a"),
        op("get_message", 4, 5, "a"),
        op("get_message", 6, 7, "a"),
    ]
    problems = check_history(history)
    assert any("delivered 2 times" in problem for problem in problems)
    assert any("not linearizable" in problem for problem in problems)


def test_catches_an_acknowledged_message_lost():
    history = BASE + [op("put_message", 2, 3, True, message="a"), op("get_message", 4, 5, None)]
    problems = check_history(history)
    assert any("was lost" in problem for problem in problems)
    assert any("not linearizable" in problem for problem in problems)


def test_catches_a_stale_read():
    history = BASE + [op("put_topic", 2, 3, True, topic="u"), op("get_topics", 4, 5, ["t"])]
    assert any("topic 'u'" in problem for problem in check_history(history))


def test_catches_topics_out_of_creation_order():
    history = BASE + [
        op("put_topic", 2, 3, True, topic="u"),
        op("get_topics", 4, 5, ["t", "u"]),
        op("get_topics", 6, 7, ["u", "t"]),
    ]
    assert any("not a prefix" in problem for problem in check_history(history))


def test_a_long_sequential_history_checks_quickly():
    history = list(BASE)
    clock = 2
    for number in range(300):
        history.append(op("put_message", clock, clock + 1, True, message=str(number)))
        clock += 2
    for number in range(300):
        history.append(op("get_message", clock, clock + 1, str(number)))
        clock += 2
    assert check_history(history) == []


def random_history(seed: int, operations: int = 400) -> list[dict]:
    """A correct concurrent history: a real queue run at random
    linearization points, each operation's interval drawn around its point."""
    import random

    rng = random.Random(seed)
    queue, history, clock = [], [op("put_topic", 0, 0.5, True)], 1.0
    for number in range(operations):
        clock += rng.uniform(0.01, 1.0)
        start, end = clock - rng.uniform(0, 3), clock + rng.uniform(0, 3)
        if rng.random() < 0.5:
            queue.append(f"m{number}")
            history.append(op("put_message", start, end, True, message=f"m{number}"))
        else:
            history.append(op("get_message", start, end, queue.pop(0) if queue else None))
    clock += 10
    while queue:
        history.append(op("get_message", clock, clock + 1, queue.pop(0)))
        clock += 2
    return history


def test_random_correct_histories_pass_and_swapped_deliveries_fail():
    for seed in range(20):
        history = random_history(seed)
        assert check_history(history) == [], seed
        gets = [record for record in history if record["op"] == "get_message" and record["result"]]
        # Swap the messages of two gets far apart in time: FIFO is broken.
        first, last = gets[0], gets[-1]
        first["result"], last["result"] = last["result"], first["result"]
        assert any("not linearizable" in problem for problem in check_history(history)), seed
