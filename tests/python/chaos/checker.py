"""A linearizability checker for raftmq histories: the Wing & Gong search
with Lowe's memoization (as Porcupine does it), written for the queue.

A history is a list of operations, each a dict:
    {"op": "put_topic" | "put_message" | "get_message" | "get_topics",
     "topic": str (not for get_topics), "message": str (put_message),
     "call": float, "return": float | None, "result": ...}
``return`` is None when the outcome is unknown (no reply, ``timeout``,
``leader_changed``): such an operation may have taken effect at any moment
after its call, or never. ``result`` is True/False for put_topic and
put_message, the message or None (empty or missing topic) for get_message,
and the list of topics for get_topics.

The queue is a set of independent topics, so the history is checked one
topic at a time (P-compositionality, Herlihy & Wing's locality), which keeps
the search small. get_topics is projected onto each topic as "does it
exist?"; the order of the topic list is checked separately, against the
order in which topics were created.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Operation:
    number: int
    kind: str
    argument: Any
    call: float
    returned: float  # math.inf when unknown
    result: Any
    known: bool
    #: Search order among candidates (see `_candidates`); set by `linearizable`.
    priority: tuple = ()
    #: For a put whose message an answered get returned: that get's place
    #: among answered gets ordered by return time, and how many of them
    #: returned before it was called (see `_set_fifo_ranks`).
    delivery_rank: Optional[int] = None
    required_puts: int = 0


KIND_ORDER = {"get_message": 0, "exists": 1, "put_topic": 1, "put_message": 2}


def _set_fifo_ranks(operations: list[Operation]) -> None:
    """FIFO with unique messages: if the get of m' returned before the get
    of m was called, m' was dequeued first, so it was enqueued first. Each
    delivered put records how many deliveries (in return order) must have
    their puts linearized before it may be: a necessary condition that cuts
    off wrong put orders at once instead of thousands of steps later."""
    deliveries = sorted(
        (op for op in operations if op.kind == "get_message" and op.known and op.result is not None),
        key=lambda op: op.returned,
    )
    returns = [op.returned for op in deliveries]
    rank_of = {op.result: (rank, bisect.bisect_left(returns, op.call)) for rank, op in enumerate(deliveries)}
    for operation in operations:
        operation.delivery_rank, operation.required_puts = None, 0
        if operation.kind == "put_message" and operation.argument in rank_of:
            operation.delivery_rank, operation.required_puts = rank_of[operation.argument]


def _set_priorities(operations: list[Operation]) -> None:
    dequeued_at = {
        operation.result: operation.call
        for operation in operations
        if operation.kind == "get_message" and operation.known and operation.result is not None
    }
    for operation in operations:
        if operation.kind == "put_message":
            order = dequeued_at.get(operation.argument, math.inf)
        else:
            order = operation.call
        operation.priority = (not operation.known, KIND_ORDER[operation.kind], order)


def step(state: tuple, operation: Operation) -> Optional[tuple]:
    """The topic's state after ``operation``, or None if its result is
    impossible in ``state``. State: (exists, messages in FIFO order)."""
    exists, messages = state
    kind, result = operation.kind, operation.result
    if kind == "put_topic":
        outcome = not exists
        if operation.known and result != outcome:
            return None
        return (True, messages)
    if kind == "exists":
        return state if (not operation.known or result == exists) else None
    if kind == "put_message":
        if operation.known and result != exists:
            return None
        return (exists, messages + (operation.argument,)) if exists else state
    if kind == "get_message":
        head = messages[0] if exists and messages else None
        if operation.known:
            if result != head:
                return None
            return (exists, messages[1:]) if head is not None else state
        # Unknown outcome. Every message is removed at most once, so this get
        # can only have taken a message no answered get returned (its
        # argument: the topic's orphans). Not happening at all is the same as
        # happening last, on the drained queue: a no-op on an empty queue.
        if head is None:
            return state
        return (exists, messages[1:]) if head in operation.argument else None
    raise ValueError(f"unknown operation {kind!r}")


class _Node:
    __slots__ = ("operation", "is_call", "match", "previous", "next")

    def __init__(self, operation: Optional[Operation], is_call: bool):
        self.operation = operation
        self.is_call = is_call
        self.match: Optional[_Node] = None
        self.previous: Optional[_Node] = None
        self.next: Optional[_Node] = None


def _build_list(operations: list[Operation]) -> _Node:
    events = []
    for operation in operations:
        call, ret = _Node(operation, True), _Node(operation, False)
        call.match = ret
        # Calls sort before returns at equal times: overlapping is the
        # permissive reading of a tie.
        events.append((operation.call, 0, operation.number, call))
        events.append((operation.returned, 1, operation.number, ret))
    events.sort(key=lambda event: event[:3])
    head = _Node(None, False)
    previous = head
    for *_, node in events:
        previous.next = node
        node.previous = previous
        previous = node
    return head


def _lift(call: _Node) -> None:
    call.previous.next = call.next
    if call.next:
        call.next.previous = call.previous
    ret = call.match
    ret.previous.next = ret.next
    if ret.next:
        ret.next.previous = ret.previous


def _unlift(call: _Node) -> None:
    ret = call.match
    ret.previous.next = ret
    if ret.next:
        ret.next.previous = ret
    call.previous.next = call
    if call.next:
        call.next.previous = call


class SearchTooLong(Exception):
    pass


def _candidates(head: _Node) -> list[_Node]:
    """Calls that may go next: those before the first pending return, in
    the order most likely to succeed (the order only affects speed):
    gets first, which succeed only when consistent with the queue now; then
    reads of existence; then puts in the order their messages were
    dequeued, so the search rarely guesses the order of concurrent puts
    wrong. Operations of unknown outcome come last, as they usually never
    happened."""
    calls = []
    node = head.next
    while node is not None and node.is_call:
        calls.append(node)
        node = node.next
    calls.sort(key=lambda call: call.operation.priority)
    return calls


def _random_bits() -> int:
    return random.getrandbits(128)


def linearizable(operations: list[Operation], max_steps: int = 5_000_000) -> bool:
    """True if some order of ``operations`` consistent with real time is a
    legal sequential history of one topic. Raises SearchTooLong past
    ``max_steps`` rather than running without bound.

    Memoization keys are (Zobrist hash of the set linearized, hash of the
    state): 128 + 64 bits instead of a bitset as long as the history, so a
    history of tens of thousands of operations fits in memory. A collision
    could only prune a branch, never accept a wrong history."""
    for position, operation in enumerate(operations):
        operation.number = position
    _set_priorities(operations)
    _set_fifo_ranks(operations)
    delivered_done = [False] * sum(1 for op in operations if op.delivery_rank is not None)
    done_prefix = 0  # deliveries 0..done_prefix-1 all have their put linearized
    operation_keys = [_random_bits() for _ in operations]
    head = _build_list(operations)
    state: tuple = (False, ())
    linearized = 0
    cache: set = set()
    frames: list = []
    candidates = _candidates(head)
    position = 0
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise SearchTooLong(f"gave up after {max_steps} steps on {len(operations)} operations")
        advanced = False
        while position < len(candidates):
            entry = candidates[position]
            position += 1
            if entry.operation.required_puts > done_prefix:
                continue  # a put that must come after ones not yet linearized
            new_state = step(state, entry.operation)
            if new_state is None:
                continue
            new_linearized = linearized ^ operation_keys[entry.operation.number]
            key = (new_linearized, hash(new_state))
            if key in cache:
                continue
            cache.add(key)
            frames.append((candidates, position, state, linearized, entry, done_prefix))
            _lift(entry)
            state, linearized = new_state, new_linearized
            rank = entry.operation.delivery_rank
            if rank is not None:
                delivered_done[rank] = True
                while done_prefix < len(delivered_done) and delivered_done[done_prefix]:
                    done_prefix += 1
            candidates, position = _candidates(head), 0
            advanced = True
            break
        if advanced:
            continue
        if not frames:
            return False
        candidates, position, state, linearized, entry, done_prefix = frames.pop()
        if entry.operation.delivery_rank is not None:
            delivered_done[entry.operation.delivery_rank] = False
        _unlift(entry)
    return True


def _returned(record: dict) -> float:
    return math.inf if record.get("return") is None else record["return"]


def _bound_unknown_puts(history: list[dict]) -> list[dict]:
    """Two sound simplifications of puts of unknown outcome. A message no
    get ever returned was never applied, or was taken by a get of unknown
    outcome: either way the history is linearizable with the put left out
    (linearized after everything). A message some get returned was applied
    before that get returned: that bounds the put's end."""
    delivered_by: dict[str, float] = {}
    for record in history:
        if record["op"] == "get_message" and record.get("return") is not None and record["result"] is not None:
            delivered_by.setdefault(record["result"], record["return"])
    simplified = []
    for record in history:
        if record["op"] == "put_message" and record.get("return") is None:
            observed_at = delivered_by.get(record["message"])
            if observed_at is None:
                continue
            record = dict(record, **{"return": observed_at, "result": True})
        simplified.append(record)
    return simplified


def per_topic(history: list[dict]) -> dict[str, list[Operation]]:
    """Split a history into one list of topic operations per topic."""
    history = _bound_unknown_puts(history)
    topics = {record["topic"] for record in history if "topic" in record}
    for record in history:
        if record["op"] == "get_topics" and record.get("return") is not None:
            topics.update(record["result"])
    split: dict[str, list[Operation]] = {topic: [] for topic in topics}
    for record in history:
        known = record.get("return") is not None
        if record["op"] == "get_topics":
            if not known:
                continue  # a read with no answer changed nothing
            for topic in topics:
                operation = Operation(0, "exists", None, record["call"], record["return"], topic in record["result"], True)
                split[topic].append(operation)
            continue
        argument = record.get("message")
        operation = Operation(0, record["op"], argument, record["call"], _returned(record), record.get("result"), known)
        split[record["topic"]].append(operation)
    for operations in split.values():
        _mark_orphans(operations)
    return {topic: _without_settled_existence(operations) for topic, operations in split.items()}


def _mark_orphans(operations: list[Operation]) -> None:
    """Give each get of unknown outcome the set of messages it may have
    taken: those put and never returned by an answered get."""
    returned = {op.result for op in operations if op.kind == "get_message" and op.known and op.result is not None}
    orphans = frozenset(op.argument for op in operations if op.kind == "put_message" and op.argument not in returned)
    for operation in operations:
        if operation.kind == "get_message" and not operation.known:
            operation.argument = orphans


def _without_settled_existence(operations: list[Operation]) -> list[Operation]:
    """Drop existence reads and repeated put_topics that begin after the
    topic's creation was acknowledged and answer that it exists: true
    throughout their interval, changing nothing, they fit anywhere in it.
    (Topics are never deleted.) A wrong answer there stays in the check."""
    created_at = min(
        (operation.returned for operation in operations
         if operation.kind == "put_topic" and operation.known and operation.result is True),
        default=math.inf,
    )
    def settled(operation: Operation) -> bool:
        if not operation.known or operation.call <= created_at:
            return False
        return (operation.kind == "exists" and operation.result is True) or (
            operation.kind == "put_topic" and operation.result is False)
    return [operation for operation in operations if not settled(operation)]


def check_history(history: list[dict]) -> list[str]:
    """Every problem found: a topic whose history is not linearizable, a
    message delivered twice, an acknowledged put never delivered although
    no get of unknown outcome could have taken it, topics listed out of
    creation order. Empty when the history is correct."""
    problems = []
    for topic, operations in sorted(per_topic(history).items()):
        try:
            if not linearizable(operations):
                problems.append(f"topic {topic!r}: the history is not linearizable")
        except SearchTooLong as error:
            problems.append(f"topic {topic!r}: {error}")
    problems.extend(_delivery_problems(history))
    problems.extend(_topic_order_problems(history))
    return problems


def _delivery_problems(history: list[dict]) -> list[str]:
    problems = []
    delivered: dict[str, int] = {}
    for record in history:
        if record["op"] == "get_message" and record.get("return") is not None and record["result"] is not None:
            delivered[record["result"]] = delivered.get(record["result"], 0) + 1
    for message, count in delivered.items():
        if count > 1:
            problems.append(f"message {message!r} was delivered {count} times")
    unknown_gets = {
        record["topic"] for record in history if record["op"] == "get_message" and record.get("return") is None
    }
    for record in history:
        acknowledged = record["op"] == "put_message" and record.get("return") is not None and record["result"]
        if acknowledged and record["message"] not in delivered and record["topic"] not in unknown_gets:
            problems.append(f"acknowledged message {record['message']!r} in {record['topic']!r} was lost")
    return problems


def _topic_order_problems(history: list[dict]) -> list[str]:
    """Topics are listed in creation order and never removed, so every
    answered get_topics lists a prefix of the longest list."""
    lists = [record["result"] for record in history if record["op"] == "get_topics" and record.get("return") is not None]
    if not lists:
        return []
    longest = max(lists, key=len)
    return [
        f"get_topics listed {listed}, not a prefix of the creation order {longest}"
        for listed in lists
        if list(listed) != list(longest[: len(listed)])
    ]
