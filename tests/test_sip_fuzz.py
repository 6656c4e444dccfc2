"""Mutated real traffic never breaks the parsers: only their own error types come out.

The mutations are those a hostile or broken peer produces: flipped bytes, truncated
datagrams, repeated header lines, and stray bytes (separators, quotes, CR/LF, UTF-8) dropped
anywhere. Derandomized so CI always runs the same cases; run with a larger
``max_examples`` and ``derandomize=False`` by hand to search further.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.sip.errors import SipParseError
from ivr.sip.message import Request, make_response, parse_message
from ivr.sip.offer_answer import LocalMedia, NegotiationError, answer_offer
from ivr.sip.sdp import SdpError, SessionDescription
from ivr.sip.validate import Reject, check_request, check_response, verdict_for_error

DATA = Path(__file__).parent / "sip_data"
RFC4475 = Path(__file__).parent / "data" / "rfc4475"
SEEDS = [
    (DATA / "messages" / name).read_bytes()
    for name in ("baresip_opus_invite.sip", "sipp_uac_invite.sip", "asterisk_invite.sip")
] + [(RFC4475 / "wsinv.dat").read_bytes()]
SDP_SEEDS = [path.read_bytes() for path in sorted((DATA / "sdp").glob("*.sdp"))]
NASTY = [b":", b";", b",", b"=", b'"', b"\\", b"<", b">", b"%", b"@", b" ", b"\t", b"\r", b"\n",
         b"\r\n", b"\r\n ", b"\r\n\r\n", b"\x00", b"\xff", b"\xc3\xa9", b"/", b"[", b"]", b"0",
         b"-1", b"99999999999999999999", "\u00b2".encode(), "\u0663".encode()]  # fmt: skip
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def flip(data: bytes, pos: int, mask: int) -> bytes:
    if not data:
        return data
    pos %= len(data)
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]


def duplicate_line(data: bytes, pos: int, _: int) -> bytes:
    lines = data.split(b"\r\n")
    line = lines[pos % len(lines)]
    lines.insert(pos % len(lines), line)
    return b"\r\n".join(lines)


def truncate(data: bytes, pos: int, _: int) -> bytes:
    return data[: pos % (len(data) + 1)]


def insert(data: bytes, pos: int, which: int) -> bytes:
    pos %= len(data) + 1
    return data[:pos] + NASTY[which % len(NASTY)] + data[pos:]


def insert_random(data: bytes, pos: int, value: int) -> bytes:
    pos %= len(data) + 1
    return data[:pos] + bytes([value]) + data[pos:]


Step = tuple[Callable[[bytes, int, int], bytes], int, int]
MUTATIONS = [flip, duplicate_line, truncate, insert, insert_random]
mutation = st.tuples(
    st.sampled_from(MUTATIONS),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=1, max_value=255),
)


def mutate(seed: bytes, steps: list[Step]) -> bytes:
    data = seed
    for fn, pos, arg in steps:
        data = fn(data, pos, arg)
    return data


def exercise(data: bytes) -> None:
    """Everything the user agent does with an incoming datagram before the dialog layer."""
    try:
        message = parse_message(data)
    except SipParseError as err:
        verdict = verdict_for_error(err)
        if isinstance(verdict, Reject) and isinstance(err.partial, Request):
            bytes(verdict.response(err.partial, to_tag="fz"))
        return
    again = parse_message(bytes(message))  # what we parsed, we can write and read back
    assert type(again) is type(message)
    assert again.body == message.body
    if isinstance(message, Request):
        request_verdict = check_request(message)
        bytes(make_response(message, 200 if request_verdict is None else 400, to_tag="fz"))
        if request_verdict is None:
            message.vias()
            message.from_addr()
            message.to_addr()
            message.request_uri()
    else:
        check_response(message)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_messages_only_raise_sip_parse_error(seed: bytes, steps: list[Step]) -> None:
    with contextlib.suppress(SipParseError):  # accessors of a parsed message may find a bad field
        exercise(mutate(seed, steps))


@FUZZ
@given(st.sampled_from(SDP_SEEDS), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_sdp_only_raises_sdp_or_negotiation_errors(seed: bytes, steps: list[Step]) -> None:
    data = mutate(seed, steps)
    try:
        answer, _ = answer_offer(SessionDescription.parse(data), LocalMedia("127.0.0.1", 40000))
    except (SdpError, NegotiationError):
        return
    assert SessionDescription.parse(bytes(answer)) == answer


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        exercise(data)
