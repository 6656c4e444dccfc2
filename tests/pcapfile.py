"""A minimal pcap reader for tests: the UDP payloads of Ethernet/IPv4 captures.

The classic pcap format: a 24-byte global header (magic number, whose byte order tells the file's
endianness; version; time zone; accuracy; snap length; link type) and then, per packet, a 16-byte
record header (seconds, microseconds, captured length, original length) and the captured bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import debs

SIPP_PCAPS = Path("/usr/share/sip-tester")
_LINK_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_IP_UDP = 17


@dataclass(frozen=True)
class UdpDatagram:
    time: float
    src_port: int
    dst_port: int
    payload: bytes


def read_udp(path: Path) -> list[UdpDatagram]:
    """Every IPv4/UDP datagram of an Ethernet pcap file, in capture order."""
    if path.parent == SIPP_PCAPS:
        debs.file(path, "sip-tester")
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    link = struct.unpack_from(endian + "I", data, 20)[0]
    if link != _LINK_ETHERNET:
        raise ValueError(f"{path}: link type {link}, expected Ethernet")
    out = []
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        datagram = _udp(frame, sec + usec / 1e6)
        if datagram is not None:
            out.append(datagram)
    return out


def _udp(frame: bytes, time: float) -> UdpDatagram | None:
    if len(frame) < 14 or struct.unpack_from("!H", frame, 12)[0] != _ETHERTYPE_IPV4:
        return None
    ip = frame[14:]
    header_len = (ip[0] & 0x0F) * 4
    total_len = struct.unpack_from("!H", ip, 2)[0]
    if ip[9] != _IP_UDP:
        return None
    udp = ip[header_len:total_len]
    src, dst, length = struct.unpack_from("!HHH", udp)
    return UdpDatagram(time, src, dst, udp[8:length])
