"""The queue authority's JSON lines (ivr/acd/wire.py): the codec, its limits, hostile lines."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.acd import wire


def test_a_message_is_one_compact_ascii_line_with_its_version() -> None:
    line = wire.encode(wire.message("join", call_id="c1", queue="general", priority=5,
                                    skills=["accounts"], tier="general", language="zh",
                                    caller="+86 王"))  # fmt: skip
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")
    msg = wire.check(wire.decode(line), wire.TO_AUTHORITY)
    assert msg["v"] == wire.VERSION and msg["caller"] == "+86 王"


def test_every_message_of_the_protocol_passes_its_own_check() -> None:
    to_authority = [
        wire.message("hello", worker=1),
        wire.message("join", call_id="c", queue="q", priority=0, skills=[], tier="full",
                     language="", caller=""),
        wire.message("leave", call_id="c"),
        wire.message("result", offer_id=3, outcome="answered"),
        wire.message("ended", agent="ann"),
        wire.message("registered", agent="ann", contact="sip:ann@10.0.0.2", expires=3600),
        wire.message("registered", agent="ann", contact=None, expires=0.0),
        wire.message("figures", call_id="c", req=7),
        wire.message("agents", action="pause", agent="ann", reason="lunch"),
        wire.message("agents", action="list"),
        wire.message("status"),
    ]  # fmt: skip
    to_peer = [
        wire.message("hello", queues=["general"]),
        wire.message("joined", call_id="c", exit=None),
        wire.message("joined", call_id="c", exit="no_agents", error="unknown tier"),
        wire.message("offer", id=1, agent="ann", contact="sip:a", ring_timeout=15.0,
                     whisper=None, call_id="c"),
        wire.message("withdraw", offer_id=1, call_id="c"),
        wire.message("exit", call_id="c", reason="max_wait"),
        wire.message("figures", req=7, position=None, wait=None),
        wire.message("figures", req=7, position=2, wait=360.0),
        wire.message("error", error="no agent 'x'", code="unknown_agent"),
    ]  # fmt: skip
    for ops, messages in ((wire.TO_AUTHORITY, to_authority), (wire.TO_PEER, to_peer)):
        for msg in messages:
            assert wire.check(wire.decode(wire.encode(msg)), ops)["op"] == msg["op"]


def test_optional_fields_read_as_null() -> None:
    msg = wire.check(wire.decode(b'{"v":1,"op":"agents","action":"list"}'), wire.TO_AUTHORITY)
    assert msg["agent"] is None and msg["reason"] is None


@pytest.mark.parametrize(("line", "code"), [
    (b'{"v":1,"op":"launch"}', "unknown_op"),
    (b'{"v":1,"op":"hello"}', "bad_message"),  # worker missing
    (b'{"v":1,"op":"hello","worker":true}', "bad_message"),  # a bool is no number
    (b'{"v":1,"op":"hello","worker":"1"}', "bad_message"),
    (b'{"v":1,"op":"result","offer_id":1.5,"outcome":"answered"}', "bad_message"),
    (b'{"v":1,"op":"join","call_id":"c","queue":"q","priority":1,"skills":["a",2],'
     b'"tier":"general","language":""}', "bad_message"),
    (b'{"v":1,"op":"registered","agent":"a","contact":"x","expires":"soon"}', "bad_message"),
    (b'{"v":1,"op":"registered","agent":"a","contact":"x","expires":1e400}', "bad_message"),
])  # fmt: skip
def test_a_readable_line_the_receiver_cannot_take_is_a_bad_message(line: bytes, code: str) -> None:
    with pytest.raises(wire.BadMessage) as caught:
        wire.check(wire.decode(line), wire.TO_AUTHORITY)
    assert caught.value.code == code and not caught.value.fatal


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_another_version_is_a_fatal_bad_message(version: Any) -> None:
    msg: dict[str, Any] = {"op": "status"}
    if version is not None:
        msg["v"] = version
    with pytest.raises(wire.BadMessage) as caught:
        wire.check(wire.decode(json.dumps(msg).encode()), wire.TO_AUTHORITY)
    assert caught.value.fatal and caught.value.code == "version"


@pytest.mark.parametrize("line", [
    b"not json", b"", b"[1,2]", b'"op"', b"null", b'{"v":1}', b'{"v":1,"op":5}',
    b'{"v":1,"op":"status","x":NaN}', b'{"v":1,"op":"status","x":-Infinity}',
    b'\xff\xfe{"v":1,"op":"status"}', b"[" * 100_000 + b"]" * 100_000,
    b'{"v":1,"op":"status","n":' + b"9" * 5000 + b"}",
])  # fmt: skip
def test_lines_that_break_the_framing_are_wire_errors(line: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(line)


def test_a_line_at_the_limit_passes_and_one_byte_more_is_refused() -> None:
    head = b'{"v":1,"op":"status","pad":"'
    fits = head + b"x" * (wire.MAX_LINE - len(head) - 3) + b'"}\n'
    assert len(fits) == wire.MAX_LINE
    decoder = wire.LineDecoder()
    [line] = decoder.feed(fits)
    assert wire.decode(line)["op"] == "status"
    with pytest.raises(wire.WireError):
        wire.LineDecoder().feed(fits[:-3] + b'x"}\n')


def test_a_line_growing_past_the_limit_is_refused_before_its_end_comes() -> None:
    decoder = wire.LineDecoder(limit=1024)
    decoder.feed(b'{"v":1,"op":"status"}\n{"pad":"')
    with pytest.raises(wire.WireError):
        for _ in range(100):
            decoder.feed(b"x" * 100)
    assert decoder.pending <= 1024 + 100


# --- fuzzing --------------------------------------------------------------------------------

texts = st.text(max_size=30)
values = st.recursive(st.none() | st.booleans() | st.integers() | texts
                      | st.floats(allow_nan=False, allow_infinity=False),
                      lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=12)  # fmt: skip
objects = st.dictionaries(texts, values, max_size=6).map(
    lambda d: {**d, "op": d.get("op") if isinstance(d.get("op"), str) else "x"})


@given(st.lists(objects, max_size=8), st.lists(st.integers(1, 200), max_size=20))
@settings(max_examples=200, deadline=None)
def test_any_cut_of_a_stream_gives_back_the_same_messages(msgs: list[dict[str, Any]],
                                                          cuts: list[int]) -> None:  # fmt: skip
    stream = b"".join(wire.encode(m) for m in msgs)
    decoder = wire.LineDecoder(limit=1 << 20)
    got: list[dict[str, Any]] = []
    offset = 0
    for size in [*cuts, len(stream)]:
        got += [wire.decode(line) for line in decoder.feed(stream[offset:offset + size])]
        offset += size
    assert got == msgs and decoder.pending == 0


@given(st.binary(max_size=3000), st.integers(16, 2048))
@settings(max_examples=300, deadline=None)
def test_hostile_bytes_raise_nothing_but_wire_errors_and_bad_messages(data: bytes,
                                                                      limit: int) -> None:
    decoder = wire.LineDecoder(limit=limit)
    try:
        lines = decoder.feed(data)
    except wire.WireError:
        return
    for line in lines:
        assert len(line) < limit
        with contextlib.suppress(wire.WireError, wire.BadMessage):
            wire.check(wire.decode(line), wire.TO_AUTHORITY)


@given(st.sampled_from(sorted(wire.TO_AUTHORITY)), st.dictionaries(texts, values, max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_fields_on_a_known_op_are_taken_or_a_bad_message(op: str,
                                                            fields: dict[str, Any]) -> None:
    msg = {**fields, "v": wire.VERSION, "op": op}
    try:
        checked = wire.check(wire.decode(wire.encode(msg)), wire.TO_AUTHORITY)
    except wire.BadMessage as exc:
        assert not exc.fatal
        return
    for name in wire.TO_AUTHORITY[op]:
        assert name in checked
