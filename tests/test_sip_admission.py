"""Per-source admission of INVITEs (ivr.sip.admission) and the media addresses we may send to
(ivr.sip.media_address), on a clock the test moves."""

from __future__ import annotations

import pytest

from ivr.sip.admission import MAX_SOURCES, SourceAdmission, SourceLimits
from ivr.sip.media_address import media_address_problem


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_unconfirmed_calls_of_one_source_are_bounded_and_an_ack_frees_a_place() -> None:
    admission = SourceAdmission(SourceLimits(max_unconfirmed=2, rate=0), Clock())
    for ref in ("a", "b"):
        assert admission.refuse("192.0.2.1") is None
        admission.opened(ref, "192.0.2.1")
    assert "not confirmed" in (admission.refuse("192.0.2.1") or "")
    assert admission.refuse("192.0.2.2") is None  # another source is not touched
    admission.confirmed("a")
    assert admission.refuse("192.0.2.1") is None
    assert admission.refused == 1


def test_calls_of_one_source_are_bounded_until_one_ends() -> None:
    admission = SourceAdmission(SourceLimits(max_calls=1, max_unconfirmed=0, rate=0), Clock())
    admission.opened("a", "192.0.2.1")
    admission.confirmed("a")
    assert admission.refuse("192.0.2.1") == "1 calls from 192.0.2.1"
    admission.closed("a")
    assert admission.refuse("192.0.2.1") is None


def test_the_invite_rate_of_one_source_is_a_token_bucket() -> None:
    clock = Clock()
    admission = SourceAdmission(SourceLimits(max_unconfirmed=0, rate=2, burst=3), clock)
    assert [admission.refuse("192.0.2.1") is None for _ in range(4)] == [True] * 3 + [False]
    clock.t += 0.5  # one token back
    assert admission.refuse("192.0.2.1") is None
    assert admission.refuse("192.0.2.1") is not None


def test_no_limits_refuse_nothing_and_idle_sources_are_forgotten() -> None:
    admission = SourceAdmission(SourceLimits(0, 0, 0.0, 1), Clock())
    for n in range(MAX_SOURCES + 5):
        assert admission.refuse(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}") is None
    assert len(admission._sources) <= MAX_SOURCES + 1


@pytest.mark.parametrize(("host", "local", "why"), [
    ("media.example.com", "127.0.0.1", "not a numeric IP"),
    ("2001:db8::1", "127.0.0.1", "IPv6"),
    ("224.0.0.1", "127.0.0.1", "multicast"),
    ("ff02::1", "::1", "multicast"),
    ("255.255.255.255", "127.0.0.1", "broadcast"),
    ("240.0.0.1", "127.0.0.1", "reserved"),
    ("127.0.0.1", "192.0.2.5", "loopback"),
    ("::ffff:192.0.2.1", "::1", "IPv4-mapped"),
])  # fmt: skip
def test_addresses_rtp_must_never_go_to(host: str, local: str, why: str) -> None:
    assert why in (media_address_problem(host, local) or "")


@pytest.mark.parametrize(("host", "local"), [
    ("192.0.2.7", "192.0.2.5"), ("127.0.0.9", "127.0.0.1"), ("0.0.0.0", "192.0.2.5"),
    ("2001:db8::20", "::1"), ("::", "127.0.0.1"),
])  # fmt: skip
def test_addresses_rtp_may_go_to(host: str, local: str) -> None:
    assert media_address_problem(host, local) is None
