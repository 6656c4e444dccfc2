"""Deterministic ids: the same seed gives the same Call-IDs, tags and branches."""

from __future__ import annotations

from ivr.sip.fields import MAGIC_COOKIE, is_call_id
from ivr.sip.ids import IdGenerator
from ivr.sip.params import is_token


def _sample(ids: IdGenerator) -> list[str]:
    return [ids.call_id("127.0.0.1"), ids.tag(), ids.branch(), ids.cnonce(),
            str(ids.session_id())]  # fmt: skip


def test_seeded_generators_repeat_and_differ_by_seed() -> None:
    assert _sample(IdGenerator(seed=7)) == _sample(IdGenerator(seed=7))
    assert _sample(IdGenerator(seed=7)) != _sample(IdGenerator(seed=8))
    assert _sample(IdGenerator()) != _sample(IdGenerator())  # OS randomness


def test_ids_are_valid_on_the_wire() -> None:
    ids = IdGenerator(seed="x")
    call_id, tag, branch, cnonce, session = _sample(ids)
    assert is_call_id(call_id) and call_id.endswith("@127.0.0.1")
    assert is_token(tag) and len(tag) == 12
    assert branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE) + 8
    assert is_token(cnonce) and 0 < int(session) < 2**62
    assert len({ids.tag() for _ in range(1000)}) == 1000
