"""Which SDP connection addresses we may ever send RTP to (checked before we answer).

A peer's ``c=`` line names where media should go; taken on trust it lets any caller aim our RTP
at a third party (reflection), at a multicast group or a broadcast address, or at a host name
the media layer cannot use without a DNS lookup. An offer (or answer) whose audio stream names
such an address is refused with 488 before anything is answered: never accepted first and
failed later.

Accepted: a numeric unicast address of our RTP socket's family (IPv4 or IPv6), or the
unspecified address (an RFC 2543 hold: we send nothing). A loopback address only when we
receive on loopback ourselves (a public server never sends media to itself).
"""

from __future__ import annotations

import ipaddress

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def media_address_problem(host: str, local: str) -> str | None:
    """Why RTP must never be sent to ``host`` (an SDP c= address), or None when it may.

    Args:
        host: The address from the peer's SDP (without a ``/ttl`` suffix).
        local: The address we receive RTP on (decides the family and whether loopback is ours).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"c= is not a numeric IP address: {host[:40]!r}"
    try:
        ours = ipaddress.ip_address(local)
    except ValueError:  # a named local address: the family cannot be compared
        ours = None
    if address.is_unspecified:
        return None  # a hold: nothing is sent there
    if ours is not None and address.version != ours.version:
        return f"c= is IPv{address.version}, our media is IPv{ours.version}"
    if address.is_multicast:
        return f"c= is a multicast address: {host}"
    if address == _LIMITED_BROADCAST or (
        isinstance(address, ipaddress.IPv4Address) and address.is_reserved
    ):
        return f"c= is a broadcast or reserved address: {host}"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"c= is an IPv4-mapped IPv6 address: {host}"
    if address.is_loopback and ours is not None and not ours.is_loopback:
        return f"c= is a loopback address: {host}"
    return None
