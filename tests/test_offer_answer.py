"""RFC 3264 offer/answer for our G.711 endpoint (ivr.sip.offer_answer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.sip.offer_answer import (
    PCMA,
    PCMU,
    LocalMedia,
    MediaPlan,
    NegotiationError,
    accept_answer,
    answer_offer,
    make_offer,
)
from ivr.sip.sdp import SessionDescription

DATA = Path(__file__).parent / "sip_data" / "sdp"
LOCAL = LocalMedia("127.0.0.1", 40000, session_id=77, session_version=1)


def negotiate(name: str, local: LocalMedia = LOCAL) -> tuple[SessionDescription, MediaPlan]:
    offer = SessionDescription.parse((DATA / name).read_bytes())
    answer, plan = answer_offer(offer, local)
    # The answer is what goes on the wire: it must read back as itself.
    assert SessionDescription.parse(bytes(answer)) == answer
    assert len(answer.media) == len(offer.media)  # RFC 3264 §6: one m= line per offered one
    return answer, plan


def test_baresip_g711_offer() -> None:
    answer, plan = negotiate("baresip_g711.sdp")
    assert plan == MediaPlan(
        payload_type=PCMU,
        remote_address="127.0.0.1",
        remote_port=48594,
        remote_rtcp_port=48595,
        dtmf_payload_type=101,
        dtmf_events="0-15",  # baresip offers 0-15; we answer what both know
        direction="sendrecv",
        remote_ptime=20,
    )
    assert plan.encoding == "PCMU" and plan.send and plan.receive
    assert str(answer) == (
        "v=0\r\no=ivr 77 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def test_sipp_uac_offer_without_telephone_event() -> None:
    answer, plan = negotiate("sipp_uac.sdp")
    assert (plan.payload_type, plan.dtmf_payload_type, plan.remote_port) == (PCMU, None, 6000)
    assert answer.media[0].formats == ["0"]


def test_opus_first_falls_back_to_the_first_g711() -> None:
    answer, plan = negotiate("baresip_opus.sdp")
    assert (plan.payload_type, plan.dtmf_payload_type) == (PCMU, 101)
    assert answer.media[0].formats == ["0", "101"]


def test_offerer_order_wins_pcma_first() -> None:
    answer, plan = negotiate("asterisk_pcma_first.sdp")
    assert (plan.encoding, plan.dtmf_events, plan.remote_address) == ("PCMA", "0-16", "192.0.2.30")
    assert answer.media[0].rtpmaps()[PCMA].encoding == "PCMA"
    assert answer.media[0].fmtp(101) == "0-16"
    pcmu_only = LocalMedia("127.0.0.1", 40000, codecs=(PCMU,))
    assert negotiate("asterisk_pcma_first.sdp", pcmu_only)[1].payload_type == PCMA  # answering
    # follows the offer: codecs only shape our own offers


def test_only_g729_is_488() -> None:
    offer = SessionDescription.parse((DATA / "asterisk_g729_only.sdp").read_bytes())
    with pytest.raises(NegotiationError) as info:
        answer_offer(offer, LOCAL)
    assert info.value.status == 488


def test_linphone_video_is_rejected_with_port_zero() -> None:
    answer, plan = negotiate("linphone_opus_video.sdp")
    audio, video = answer.media
    assert (audio.port, video.port) == (40000, 0)
    assert video.kind == "video" and video.formats == ["102", "103"]
    assert video.attributes == []
    # PCMU is Linphone's first G.711; telephone-event at 8 kHz is payload type 100, not 101.
    assert (plan.payload_type, plan.dtmf_payload_type, plan.dtmf_events) == (PCMU, 100, "0-15")
    assert plan.remote_rtcp_port == 7079  # a=rtcp


def test_ipv6_offer_gets_ipv6_answer() -> None:
    local6 = LocalMedia("::1", 40002)
    answer, plan = negotiate("linphone_ipv6.sdp", local6)
    assert plan.remote_address == "2001:db8::20"
    assert str(answer.connection) == "IN IP6 ::1"
    assert answer.origin.addrtype == "IP6"
    assert plan.payload_type == PCMU


@pytest.mark.parametrize(
    ("name", "direction"),
    [("baresip_hold.sdp", "recvonly"), ("asterisk_hold.sdp", "recvonly")],
)
def test_sendonly_hold_is_answered_recvonly(name: str, direction: str) -> None:
    answer, plan = negotiate(name)
    assert plan.direction == direction
    assert answer.media[0].direction == direction
    assert not plan.send and plan.receive


def test_rfc2543_hold_with_zero_address() -> None:
    _, plan = negotiate("rfc2543_hold.sdp")
    assert plan.remote_address == "0.0.0.0"
    assert plan.direction == "recvonly" and not plan.send


def test_inactive_and_recvonly_offers() -> None:
    base = (DATA / "asterisk_hold.sdp").read_text()
    _, inactive = answer_offer(
        SessionDescription.parse(base.replace("sendonly", "inactive")), LOCAL
    )
    assert inactive.direction == "inactive" and not inactive.send and not inactive.receive
    _, recvonly = answer_offer(
        SessionDescription.parse(base.replace("sendonly", "recvonly")), LOCAL
    )
    assert recvonly.direction == "sendonly" and recvonly.send and not recvonly.receive


def test_unusable_streams_are_skipped_for_the_first_usable_one() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nt=0 0\r\n"
        "m=audio 4000 RTP/SAVP 0\r\nc=IN IP4 127.0.0.2\r\n"
        "m=audio 0 RTP/AVP 0\r\n"
        "m=audio 4004 RTP/AVP 8\r\nc=IN IP4 127.0.0.3\r\n"
        "m=audio 4006 RTP/AVP 0\r\nc=IN IP4 127.0.0.4\r\n"
    )
    answer, plan = answer_offer(offer, LOCAL)
    assert [m.port for m in answer.media] == [0, 0, 40000, 0]
    assert (plan.remote_address, plan.remote_port, plan.encoding) == ("127.0.0.3", 4004, "PCMA")


def test_audio_without_address_is_488() -> None:
    offer = SessionDescription.parse("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n")
    with pytest.raises(NegotiationError):
        answer_offer(offer, LOCAL)


def test_our_offer_and_their_answer() -> None:
    offer = make_offer(LOCAL)
    assert str(offer) == (
        "v=0\r\no=ivr 77 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
    # An agent's softphone (another of us) answers it; we read its answer.
    their_side = LocalMedia("127.0.0.5", 50000)
    answer, their_plan = answer_offer(offer, their_side)
    plan = accept_answer(offer, answer)
    assert (plan.remote_address, plan.remote_port) == ("127.0.0.5", 50000)
    assert (plan.payload_type, plan.dtmf_payload_type, plan.dtmf_events) == (PCMU, 101, "0-16")
    assert their_plan.payload_type == PCMU and plan.direction == "sendrecv"
    held = accept_answer(
        make_offer(LOCAL, "sendonly"), answer_offer(make_offer(LOCAL, "sendonly"), their_side)[0]
    )
    assert held.direction == "sendonly"


def test_answers_we_cannot_use() -> None:
    offer = make_offer(LocalMedia("127.0.0.1", 40000, codecs=(PCMA,), dtmf_payload_type=None))
    assert "telephone-event" not in str(offer)
    rejected = SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 127.0.0.5\ns=-\nc=IN IP4 127.0.0.5\nt=0 0\nm=audio 0 RTP/AVP 8\n"
    )
    with pytest.raises(NegotiationError, match="rejected"):
        accept_answer(offer, rejected)
    wrong_codec = SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 127.0.0.5\ns=-\nc=IN IP4 127.0.0.5\nt=0 0\nm=audio 5000 RTP/AVP 0\n"
    )
    with pytest.raises(NegotiationError, match="no codec"):
        accept_answer(offer, wrong_codec)


@pytest.mark.parametrize(("connection", "port", "why"), [
    ("IN IP4 media.example.com", 4000, "numeric"),
    ("IN IP4 224.0.0.7", 4000, "multicast"),
    ("IN IP4 255.255.255.255", 4000, "broadcast"),
    ("IN IP6 2001:db8::1", 4000, "IPv6"),
    ("IN IP4 127.0.0.5", 53, "system port"),
])  # fmt: skip
def test_an_offer_or_answer_naming_an_unusable_destination_is_not_acceptable(
    connection: str, port: int, why: str
) -> None:
    text = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc={connection}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\n")  # fmt: skip
    with pytest.raises(NegotiationError, match=why):
        answer_offer(SessionDescription.parse(text), LOCAL)
    with pytest.raises(NegotiationError, match=why):
        accept_answer(make_offer(LOCAL), SessionDescription.parse(text))
