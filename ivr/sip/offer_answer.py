"""RFC 3264 offer/answer for a G.711 endpoint with RFC 4733 telephone-events.

We take one audio stream: PCMU or PCMA, whichever the offerer lists first, plus
telephone-event at 8000 Hz when offered. Every other m= line is rejected with port 0, in the
same position (RFC 3264 §6). Holds are understood both ways: direction attributes and the
RFC 2543 ``c=0.0.0.0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.sip.media_address import media_address_problem
from ivr.sip.sdp import Connection, Media, Origin, RtpMap, SessionDescription, small_int

PCMU = 0
PCMA = 8
_G711 = {PCMU: "PCMU", PCMA: "PCMA"}
_STATIC = {PCMU: RtpMap(PCMU, "PCMU", 8000), PCMA: RtpMap(PCMA, "PCMA", 8000)}
MIN_RTP_PORT = 1024  # below: a system service (DNS, NTP ...), never an RTP peer
DTMF_EVENTS = range(17)  # 0-9 * # A-D and flash: what our RFC 4733 side sends and reads
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
            "inactive": "inactive"}  # fmt: skip


class NegotiationError(ValueError):
    """Nothing in the offer (or answer) we can use: a UAS answers 488 Not Acceptable Here."""

    status = 488


@dataclass(frozen=True)
class LocalMedia:
    """Our side of the media: where we receive RTP and what we put in our SDP.

    Attributes:
        address: The address we receive RTP on (IPv4 or IPv6).
        port: The RTP port (RTCP on port + 1).
        codecs: Payload types we offer, in our order of preference (PCMU and/or PCMA).
        dtmf_payload_type: The telephone-event payload type in our offers (None: no RFC 4733).
        ptime: The packet time we send and ask for, in ms.
        session_id: o= session id; keep it for the whole dialog.
        session_version: o= version; increase it with every new offer or answer we make.
    """

    address: str
    port: int
    codecs: tuple[int, ...] = (PCMU, PCMA)
    dtmf_payload_type: int | None = 101
    ptime: int = 20
    session_id: int = 0
    session_version: int = 0


@dataclass(frozen=True)
class MediaPlan:
    """What was agreed for the audio stream.

    Attributes:
        payload_type: 0 (PCMU) or 8 (PCMA).
        dtmf_payload_type: The telephone-event payload type, or None.
        dtmf_events: The events both sides understand, e.g. "0-16".
        remote_address: Where to send RTP (may be 0.0.0.0 for an RFC 2543 hold).
        remote_port: The remote RTP port.
        remote_rtcp_port: The remote RTCP port (a=rtcp, else RTP port + 1).
        direction: Our direction: sendrecv, sendonly, recvonly or inactive.
        remote_ptime: The packet time the peer asked for, or None.
    """

    payload_type: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    dtmf_payload_type: int | None = None
    dtmf_events: str = ""
    direction: str = "sendrecv"
    remote_ptime: int | None = None

    @property
    def encoding(self) -> str:
        """PCMU or PCMA."""
        return _G711[self.payload_type]

    @property
    def send(self) -> bool:
        """True when we should send RTP."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receive(self) -> bool:
        """True when the peer may send us RTP."""
        return self.direction in ("sendrecv", "recvonly")


def answer_offer(
    offer: SessionDescription, local: LocalMedia
) -> tuple[SessionDescription, MediaPlan]:
    """Answer an offer: the first usable audio stream is accepted, everything else rejected.

    Raises:
        NegotiationError: No audio stream with PCMU or PCMA over RTP/AVP and an address, or
            the first usable one names an address or port RTP must not go to.
    """
    plan: MediaPlan | None = None
    answer = _skeleton(local, offer.times)
    for media in offer.media:
        if plan is None and _usable(media):
            plan = _plan_for(offer, media, None)
            if plan is not None:
                _check_destination(plan, local.address)
                answer.media.append(_audio_media(local, plan))
                continue
        answer.media.append(Media(media.kind, 0, media.proto, media.formats or ["0"]))
    if plan is None:
        raise NegotiationError("no acceptable audio stream (need PCMU or PCMA over RTP/AVP)")
    return answer, plan


def make_offer(local: LocalMedia, direction: str = "sendrecv") -> SessionDescription:
    """Our offer: one audio stream with our codecs and telephone-event."""
    offer = _skeleton(local, [(0, 0)])
    media = Media("audio", local.port, "RTP/AVP", [str(pt) for pt in local.codecs])
    media.attributes = [("rtpmap", str(_STATIC[pt])) for pt in local.codecs]
    if local.dtmf_payload_type is not None:
        pt = local.dtmf_payload_type
        media.formats.append(str(pt))
        media.attributes += [("rtpmap", f"{pt} telephone-event/8000"), ("fmtp", f"{pt} 0-16")]
    media.attributes += [("ptime", str(local.ptime)), (direction, None)]
    offer.media.append(media)
    return offer


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaPlan:
    """Read the answer to our offer (``make_offer``'s single audio stream).

    Raises:
        NegotiationError: The audio stream was rejected or the answer picked nothing we offered.
    """
    index = next((i for i, m in enumerate(offer.media) if _usable(m)), None)
    if index is None or index >= len(answer.media) or answer.media[index].port == 0:
        raise NegotiationError("audio stream rejected by the answer")
    offered = {pt for f in offer.media[index].formats if (pt := small_int(f, 3)) is not None}
    plan = _plan_for(answer, answer.media[index], offered)
    if plan is None:
        raise NegotiationError("the answer chose no codec we offered")
    ours = offer.connection.host if offer.connection is not None else ""
    _check_destination(plan, ours)
    return plan


def _check_destination(plan: MediaPlan, local_address: str) -> None:
    """Refuse a plan that would send RTP somewhere it must never go (see media_address)."""
    problem = media_address_problem(plan.remote_address, local_address)
    if problem is None and plan.remote_port < MIN_RTP_PORT:
        problem = f"m= port {plan.remote_port} is a system port"
    if problem is not None:
        raise NegotiationError(problem)


def _skeleton(local: LocalMedia, times: list[tuple[int, int]]) -> SessionDescription:
    connection = Connection.for_address(local.address)
    origin = Origin("ivr", local.session_id, local.session_version, "IN", connection.addrtype,
                    local.address)  # fmt: skip
    # RFC 3264 §6: the answer's t= equals the offer's.
    return SessionDescription(origin, "-", connection, list(times) or [(0, 0)])


def _usable(media: Media) -> bool:
    return media.kind == "audio" and media.port != 0 and media.proto.upper() == "RTP/AVP"


def _plan_for(sdp: SessionDescription, media: Media, allowed: set[int] | None) -> MediaPlan | None:
    """The plan for an audio stream described by the peer, or None if it has no G.711."""
    connection = sdp.connection_for(media)
    maps = media.rtpmaps()
    codec = _first_g711(media, maps, allowed)
    if codec is None or connection is None:
        return None
    dtmf = _telephone_event(media, maps)
    events = _common_events(media, dtmf)
    direction = _REVERSE.get(sdp.direction_for(media), "sendrecv")
    if connection.unspecified:  # RFC 2543 hold: nowhere to send to
        direction = {"sendrecv": "recvonly", "sendonly": "inactive"}.get(direction, direction)
    rtcp = next((small_int(v.split()[0], 5) for v in media.values("rtcp") if v.split()), None)
    return MediaPlan(
        payload_type=codec,
        remote_address=connection.host,
        remote_port=media.port,
        remote_rtcp_port=rtcp if rtcp is not None else media.port + 1,
        dtmf_payload_type=dtmf if events else None,
        dtmf_events=events,
        direction=direction,
        remote_ptime=media.ptime,
    )


def _first_g711(media: Media, maps: dict[int, RtpMap], allowed: set[int] | None) -> int | None:
    """The first PCMU/PCMA (at their static payload types) in the peer's order of preference."""
    for fmt in media.formats:
        pt = small_int(fmt, 3)
        if pt is None:
            continue
        rtpmap = maps.get(pt, _STATIC.get(pt))
        if rtpmap is None or (allowed is not None and pt not in allowed):
            continue
        if pt in _G711 and rtpmap.encoding.upper() == _G711[pt] and rtpmap.clock_rate == 8000:
            return pt
    return None


def _telephone_event(media: Media, maps: dict[int, RtpMap]) -> int | None:
    for pt, rtpmap in maps.items():
        is_8k_events = rtpmap.encoding.lower() == "telephone-event" and rtpmap.clock_rate == 8000
        if is_8k_events and str(pt) in media.formats:
            return pt
    return None


def _common_events(media: Media, pt: int | None) -> str:
    """The events of the 8 kHz telephone-event both sides know, as "0-16"; "" if none."""
    if pt is None:
        return ""
    listed = _parse_events(media.fmtp(pt) or "0-15")  # RFC 4733 §7.1.1: no fmtp means 0-15
    return _format_events(sorted(listed & set(DTMF_EVENTS)))


def _parse_events(text: str) -> set[int]:
    events: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low_text, dash, high_text = part.partition("-")
        low = small_int(low_text, 3)
        high = small_int(high_text, 3) if dash else low
        if low is not None and high is not None:
            events.update(range(low, high + 1))
    return events


def _format_events(events: list[int]) -> str:
    ranges: list[str] = []
    start = prev = None
    for event in [*events, None]:
        if start is not None and prev is not None and event != prev + 1:
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if start is None:
            start = event
        prev = event
    return ",".join(ranges)


def _audio_media(local: LocalMedia, plan: MediaPlan) -> Media:
    media = Media("audio", local.port, "RTP/AVP", [str(plan.payload_type)])
    media.attributes = [("rtpmap", str(_STATIC[plan.payload_type]))]
    if plan.dtmf_payload_type is not None:
        pt = plan.dtmf_payload_type
        media.formats.append(str(pt))
        media.attributes += [
            ("rtpmap", f"{pt} telephone-event/8000"),
            ("fmtp", f"{pt} {plan.dtmf_events}"),
        ]
    media.attributes += [("ptime", str(local.ptime)), (plan.direction, None)]
    return media
