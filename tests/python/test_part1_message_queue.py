"""Course part 1: the message queue, on one node."""

import pytest

from conftest import STARTUP_WAIT_S


@pytest.fixture
def node(make_cluster):
    cluster = make_cluster(1)
    assert cluster.find_leader_course_style(STARTUP_WAIT_S) == 0
    return cluster


def test_topic_list_starts_empty(node):
    assert node.ask(0, {"op": "get_topics"}) == {"success": True, "topics": []}


def test_create_topic_and_refuse_duplicate(node):
    assert node.ask(0, {"op": "put_topic", "topic": "news"}) == {"success": True}
    assert node.ask(0, {"op": "put_topic", "topic": "news"}) == {"success": False}
    assert node.ask(0, {"op": "get_topics"}) == {"success": True, "topics": ["news"]}


def test_topics_listed_in_creation_order(node):
    names = ["zeta", "alpha", "mid", "Alpha"]
    for name in names:
        assert node.ask(0, {"op": "put_topic", "topic": name}) == {"success": True}
    assert node.ask(0, {"op": "get_topics"}) == {"success": True, "topics": names}


def test_messages_come_out_first_in_first_out(node):
    assert node.ask(0, {"op": "put_topic", "topic": "t"}) == {"success": True}
    for message in ["first", "second", "third"]:
        assert node.ask(0, {"op": "put_message", "topic": "t", "message": message}) == {"success": True}
    for message in ["first", "second", "third"]:
        assert node.ask(0, {"op": "get_message", "topic": "t"}) == {"success": True, "message": message}
    assert node.ask(0, {"op": "get_message", "topic": "t"}) == {"success": False}


def test_missing_topic_refuses_put_and_get(node):
    assert node.ask(0, {"op": "put_message", "topic": "nope", "message": "m"}) == {"success": False}
    assert node.ask(0, {"op": "get_message", "topic": "nope"}) == {"success": False}


def test_empty_topic_gives_nothing(node):
    assert node.ask(0, {"op": "put_topic", "topic": "empty"}) == {"success": True}
    assert node.ask(0, {"op": "get_message", "topic": "empty"}) == {"success": False}


def test_topics_are_separate_queues(node):
    for topic in ["a", "b"]:
        node.ask(0, {"op": "put_topic", "topic": topic})
    node.ask(0, {"op": "put_message", "topic": "a", "message": "for a"})
    node.ask(0, {"op": "put_message", "topic": "b", "message": "for b"})
    assert node.ask(0, {"op": "get_message", "topic": "b"})["message"] == "for b"
    assert node.ask(0, {"op": "get_message", "topic": "a"})["message"] == "for a"


@pytest.mark.parametrize(
    "message",
    ["", "héllo wörld", "🦀 emoji", "line\nbreak\ttab", '{"json": "inside"}', "x" * 100_000, "\u0000nul"],
)
def test_messages_round_trip_byte_for_byte(node, message):
    node.ask(0, {"op": "put_topic", "topic": "t"})
    assert node.ask(0, {"op": "put_message", "topic": "t", "message": message}) == {"success": True}
    assert node.ask(0, {"op": "get_message", "topic": "t"}) == {"success": True, "message": message}


def test_unicode_topic_names(node):
    assert node.ask(0, {"op": "put_topic", "topic": "tópico 話題"}) == {"success": True}
    assert node.ask(0, {"op": "get_topics"})["topics"] == ["tópico 話題"]


def test_reply_echoes_any_id(node):
    for request_id in [7, "abc", {"nested": [1, 2]}, None]:
        reply = node.ask(0, {"op": "get_topics", "id": request_id})
        assert reply == {"success": True, "topics": [], "id": request_id}
