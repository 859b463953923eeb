"""Python client for raftmq: finds the leader, follows redirects, and tells
apart a failure that certainly did nothing from one whose outcome is unknown.

    from raftmq_client import Client
    client = Client.from_config("config.json")
    client.put_topic("news")
    client.put_message("news", "hello")
    print(client.get_message("news"))   # "hello"

Writes carry a session (``client_id``, ``seq``) by default, so the client
retries them after a lost reply or a leader change without applying them
twice. ``Client(..., exactly_once=False)`` sends bare requests instead; a
write whose outcome is unknown then raises ``Indeterminate``. A retry whose
reply the cluster no longer keeps (``reply_dropped``: large replies are
dropped first when sessions exceed their memory bound) raises
``ReplyDropped``: the request was applied once, its answer is lost.

The cluster's limits (docs/protocol.md, "Limits") raise ``QueueFull`` (the
queues hold 1 GiB of messages: take some, then put again) and
``TooManyTopics``; neither request was applied.

Every request waits at most ``timeout_ms`` for a reply (``RCVTIMEO``, and
``LINGER`` 0 so closing never blocks), so a dead node costs a timeout, never
a hang.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any, NamedTuple, Optional, Sequence

import zmq

__all__ = [
    "Client",
    "RaftMQError",
    "Indeterminate",
    "ReplyDropped",
    "QueueFull",
    "TooManyTopics",
    "request",
    "endpoints_from_config",
]

#: Error codes after which the request may or may not have taken effect.
INDETERMINATE_CODES = {"timeout", "leader_changed"}


class RaftMQError(Exception):
    """A request failed; ``reply`` holds the node's answer, if any."""

    def __init__(self, message: str, reply: Optional[dict] = None):
        super().__init__(message)
        self.reply = reply


class Indeterminate(RaftMQError):
    """The request may or may not have been applied (no reply, ``timeout``,
    ``leader_changed``). Retrying a write could apply it twice."""


class ReplyDropped(RaftMQError):
    """A retried write was applied by an earlier attempt, but the cluster no
    longer keeps its reply (for ``get_message``: the message it removed)."""


class QueueFull(RaftMQError):
    """``put_message`` was refused, not applied: the queues hold the most
    message bytes the cluster allows. It succeeds again once messages are
    taken (call ``put_message`` again: each call is a new request)."""


class TooManyTopics(RaftMQError):
    """``put_topic`` of a new topic was refused, not applied: the cluster
    holds the most topics it allows."""


class TooManySessions(RaftMQError):
    """A first request under a new ``client_id`` was refused, not applied:
    the cluster keeps a session per recent client and has no room for a new
    one until older sessions go quiet. Retry later."""


#: Error codes of the cluster's limits, each with its exception.
LIMIT_ERRORS = {"queue_full": QueueFull, "too_many_topics": TooManyTopics, "too_many_sessions": TooManySessions}

_context = zmq.Context.instance()


class CurveKeys(NamedTuple):
    """A client's CURVE key pair (Z85) and the node's public key, for a
    cluster whose config.json lists ``clients`` (docs/security.md)."""

    public_key: str
    secret_key: str
    server_key: str


def request(endpoint: str, payload: Any, timeout_ms: int = 1000, curve: Optional[CurveKeys] = None) -> Optional[dict]:
    """Send one request on a fresh REQ socket; the reply, or None on timeout.

    ``payload`` is a dict (sent as JSON), or str/bytes sent as they are.
    ``curve``: connect with CURVE, for a client port that requires it.
    """
    if isinstance(payload, dict):
        frame = json.dumps(payload).encode()
    elif isinstance(payload, str):
        frame = payload.encode()
    else:
        frame = bytes(payload)
    socket = _context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
    socket.setsockopt(zmq.SNDTIMEO, timeout_ms)
    if curve is not None:
        socket.curve_publickey = curve.public_key.encode()
        socket.curve_secretkey = curve.secret_key.encode()
        socket.curve_serverkey = curve.server_key.encode()
    try:
        socket.connect(endpoint)
        socket.send(frame)
        return json.loads(socket.recv())
    except zmq.Again:
        return None
    finally:
        socket.close()


def endpoints_from_config(path: str) -> list[str]:
    with open(path, encoding="utf-8") as config_file:
        config = json.load(config_file)
    return [f"tcp://{a['ip']}:{a['port']}" for a in config["addresses"]]


class Client:
    """Talks to whichever node leads; caches it and follows redirects."""

    def __init__(
        self,
        endpoints: Sequence[str],
        timeout_ms: int = 1000,
        give_up_after_s: float = 5.0,
        exactly_once: bool = True,
        client_key: Optional[tuple[str, str]] = None,
        server_keys: Optional[dict[str, str]] = None,
    ):
        """``client_key``: this client's (public, secret) CURVE keys and
        ``server_keys``: each endpoint's node public key, for a cluster whose
        client port requires CURVE; ``from_config`` fills ``server_keys``."""
        if not endpoints:
            raise ValueError("a client needs at least one node endpoint")
        if client_key is not None and not server_keys:
            raise ValueError("a CURVE client needs the nodes' public keys (server_keys)")
        self.client_key = client_key
        self.server_keys = dict(server_keys or {})
        self.endpoints = list(endpoints)
        self.timeout_ms = timeout_ms
        self.give_up_after_s = give_up_after_s
        self.leader: Optional[str] = None
        self.client_id: Optional[str] = uuid.uuid4().hex if exactly_once else None
        self._seq = itertools.count(1)

    @classmethod
    def from_config(cls, path: str, **options: Any) -> "Client":
        with open(path, encoding="utf-8") as config_file:
            addresses = json.load(config_file)["addresses"]
        server_keys = {f"tcp://{a['ip']}:{a['port']}": a["public_key"] for a in addresses if "public_key" in a}
        if options.get("client_key") is not None:
            options.setdefault("server_keys", server_keys)
        return cls(endpoints_from_config(path), **options)

    def curve_for(self, endpoint: str) -> Optional[CurveKeys]:
        """The CURVE keys for ``endpoint``, when this client uses CURVE."""
        if self.client_key is None:
            return None
        server_key = self.server_keys.get(endpoint)
        if server_key is None:
            raise RaftMQError(f"no public key known for {endpoint}")
        return CurveKeys(self.client_key[0], self.client_key[1], server_key)

    def status(self, endpoint: str) -> Optional[dict]:
        return request(endpoint, {"op": "status"}, self.timeout_ms, self.curve_for(endpoint))

    def find_leader(self) -> Optional[str]:
        for endpoint in self.endpoints:
            status = self.status(endpoint)
            if status and status.get("role") == "Leader":
                return endpoint
        return None

    def write(self, payload: dict) -> dict:
        """A request that changes state: in a fresh session seq when the
        client is exactly-once, so every retry of it is applied at most once."""
        if self.client_id is None:
            return self.call(payload)
        payload = dict(payload, client_id=self.client_id, seq=next(self._seq))
        return self.call(payload, idempotent=True)

    def call(self, payload: dict, idempotent: bool = False) -> dict:
        """Send ``payload`` to the leader; the reply (success or plain failure).

        Redirects (``not_leader``) are followed until ``give_up_after_s``. A
        lost reply, ``timeout`` or ``leader_changed`` is retried only when
        ``idempotent`` (a read, or a write in a session); otherwise it raises
        ``Indeterminate``.
        """
        deadline = time.monotonic() + self.give_up_after_s
        last_reply: Optional[dict] = None
        candidates = iter(())
        while time.monotonic() < deadline:
            endpoint = self.leader or next(candidates, None)
            if endpoint is None:
                candidates = iter(self.endpoints)
                time.sleep(0.05)
                continue
            reply = request(endpoint, payload, self.timeout_ms, self.curve_for(endpoint))
            last_reply = reply
            if reply is None or reply.get("error") in INDETERMINATE_CODES:
                self.leader = None
                if not idempotent:
                    raise Indeterminate(f"outcome unknown for {payload.get('op')}", reply)
                continue
            if reply.get("error") == "not_leader":
                self.leader = reply.get("leader")
                if self.leader is None:
                    time.sleep(0.05)
                continue
            if reply.get("error") == "busy":
                time.sleep(0.05)
                continue
            if reply.get("error") == "storage_failed":
                # That node's disk failed: the request was not applied; ask the others.
                self.leader = None
                time.sleep(0.05)
                continue
            if reply.get("error") == "reply_dropped":
                raise ReplyDropped(f"{payload.get('op')} was applied, but its reply is no longer kept", reply)
            if reply.get("error") in LIMIT_ERRORS:
                raise LIMIT_ERRORS[reply["error"]](f"{reply['error']}: {reply.get('detail')}", reply)
            if "error" in reply:
                raise RaftMQError(f"{reply['error']}: {reply.get('detail')}", reply)
            self.leader = endpoint
            return reply
        if last_reply is None or last_reply.get("error") in INDETERMINATE_CODES:
            raise Indeterminate(f"no leader answered within {self.give_up_after_s} s", last_reply)
        raise RaftMQError(f"no leader answered within {self.give_up_after_s} s", last_reply)

    def put_topic(self, topic: str) -> bool:
        """True if created, False if it already existed."""
        return self.write({"op": "put_topic", "topic": topic})["success"]

    def get_topics(self) -> list[str]:
        return self.call({"op": "get_topics"}, idempotent=True)["topics"]

    def put_message(self, topic: str, message: str) -> bool:
        """True if enqueued, False if the topic does not exist."""
        return self.write({"op": "put_message", "topic": topic, "message": message})["success"]

    def get_message(self, topic: str) -> Optional[str]:
        """The oldest message (removed from the topic), or None if there is none."""
        reply = self.write({"op": "get_message", "topic": topic})
        return reply["message"] if reply["success"] else None
