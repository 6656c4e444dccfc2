"""SDP parsing and serialization (ivr.sip.sdp) on offers from real softphones and PBXs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.sip.sdp import Connection, Media, Origin, RtpMap, SdpError, SessionDescription

DATA = Path(__file__).parent / "sip_data" / "sdp"


def load(name: str) -> SessionDescription:
    return SessionDescription.parse((DATA / name).read_bytes())


@pytest.mark.parametrize("path", sorted(DATA.glob("*.sdp")), ids=lambda p: p.name)
def test_round_trip(path: Path) -> None:
    data = path.read_bytes()
    sdp = SessionDescription.parse(data)
    assert SessionDescription.parse(bytes(sdp)) == sdp
    # Every body here is already in RFC 4566 order, so serializing gives the same bytes.
    assert bytes(sdp) == data


def test_baresip_offer() -> None:
    sdp = load("baresip_opus.sdp")
    assert sdp.origin == Origin("-", 2323755847, 1054206732, "IN", "IP4", "127.0.0.1")
    assert sdp.connection == Connection("127.0.0.1")
    assert sdp.times == [(0, 0)]
    assert sdp.attributes == [("tool", "baresip 1.0.0")]
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.proto) == ("audio", 17162, "RTP/AVP")
    assert audio.formats == ["96", "9", "0", "8", "101"]
    maps = audio.rtpmaps()
    assert maps[96] == RtpMap(96, "opus", 48000, 2)
    assert maps[0] == RtpMap(0, "PCMU", 8000)
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(96) == "stereo=1;sprop-stereo=1;maxaveragebitrate=28000"
    assert audio.fmtp(0) is None
    assert (audio.direction, audio.ptime) == ("sendrecv", 20)


def test_linphone_offer_with_video() -> None:
    sdp = load("linphone_opus_video.sdp")
    assert sdp.name == "Talk"
    assert [m.kind for m in sdp.media] == ["audio", "video"]
    audio, video = sdp.media
    assert audio.values("rtcp") == ["7079"]
    assert audio.direction is None
    assert sdp.direction_for(audio) == "sendrecv"
    assert sdp.connection_for(video) == Connection("192.0.2.20")
    assert video.rtpmaps()[102].encoding == "VP8"


def test_ipv6_and_hold() -> None:
    v6 = load("linphone_ipv6.sdp")
    assert v6.origin.addrtype == "IP6"
    assert v6.connection == Connection("2001:db8::20", "IP6")
    assert 0 not in v6.media[0].rtpmaps()  # static payload type without rtpmap
    held = load("baresip_hold.sdp")
    assert held.direction_for(held.media[0]) == "sendonly"
    old_hold = load("rfc2543_hold.sdp")
    media_c = old_hold.media[0].connection
    assert media_c is not None and media_c.unspecified


def test_session_level_direction_applies_to_media() -> None:
    sdp = SessionDescription.parse(
        "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\na=inactive\n"
        "m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\na=recvonly\n"
    )
    assert [sdp.direction_for(m) for m in sdp.media] == ["inactive", "recvonly"]


def test_lenient_where_endpoints_differ() -> None:
    sdp = SessionDescription.parse(
        b"v=0\n\no=x 1 1 IN IP4 127.0.0.1\nc=IN IP4 127.0.0.1\nq=unknown line type\n"
        b"m=audio 5004/2 RTP/AVP 0\na=ptime:20.0\na=rtpmap:bad\n"
    )
    assert sdp.name == "-" and sdp.times == [(0, 0)]
    media = sdp.media[0]
    assert (media.port, media.port_count, media.ptime, media.rtpmaps()) == (5004, 2, 20, {})
    assert "m=audio 5004/2 RTP/AVP 0" in str(sdp)


def test_build_and_serialize() -> None:
    media = Media("audio", 40000, "RTP/AVP", ["0"], attributes=[("rtpmap", "0 PCMU/8000")])
    origin = Origin("ivr", 7, 8, addrtype="IP6", address="::1")
    sdp = SessionDescription(origin, connection=Connection.for_address("::1"))
    sdp.media.append(media)
    assert str(sdp) == (
        "v=0\r\no=ivr 7 8 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=1\no=- 1 1 IN IP4 h\n",
        "v=0\ns=-\n",
        "v=0\no=- x 1 IN IP4 h\n",
        "v=0\no=- 1 1 IN IP4\n",
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio 70000 RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\nm=audio\n",
        "v=0\no=- 1 1 IN IP4 h\nthis is not sdp\n",
        "v=0\no=- 1 1 IN IP4 h\nt=now 0\n",
    ],
)
def test_malformed_sdp(text: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(text)


def test_rtpmap_parse_and_format() -> None:
    assert str(RtpMap.parse("96 opus/48000/2")) == "96 opus/48000/2"
    for bad in ("x PCMU/8000", "0 PCMU", "0 /8000", "200 X/8000"):
        with pytest.raises(SdpError):
            RtpMap.parse(bad)
