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

import math
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
        if operation.known and result != head:
            return None
        return (exists, messages[1:]) if head is not None else state
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


def linearizable(operations: list[Operation], max_steps: int = 5_000_000) -> bool:
    """True if some order of ``operations`` consistent with real time is a
    legal sequential history of one topic. Raises SearchTooLong past
    ``max_steps`` rather than running without bound."""
    for position, operation in enumerate(operations):
        operation.number = position
    head = _build_list(operations)
    state: tuple = (False, ())
    linearized = 0
    cache: set = set()
    stack: list = []
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise SearchTooLong(f"gave up after {max_steps} steps on {len(operations)} operations")
        if entry.is_call:
            operation = entry.operation
            new_state = step(state, operation)
            if new_state is not None:
                new_linearized = linearized | (1 << operation.number)
                key = (new_linearized, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new_state, new_linearized
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << entry.operation.number)
            _unlift(entry)
            entry = entry.next
    return True


def _returned(record: dict) -> float:
    return math.inf if record.get("return") is None else record["return"]


def per_topic(history: list[dict]) -> dict[str, list[Operation]]:
    """Split a history into one list of topic operations per topic."""
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
    return split


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
