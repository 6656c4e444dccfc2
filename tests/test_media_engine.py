"""The media engine: RTP/RTCP port pairs from a range, exhaustion and reuse, closing."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from ivr.rtp.engine import MediaEngine, PortAllocator


def test_streams_get_even_ports_with_the_rtcp_port_held() -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), port_range=(31000, 31100), seed=1)
        streams = [await engine.open_stream() for _ in range(10)]
        ports = [s.local_address[1] for s in streams]
        assert len(set(ports)) == 10
        assert all(p % 2 == 0 and 31000 <= p < 31100 for p in ports)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError):
            probe.bind(("127.0.0.1", ports[0] + 1))  # the RTCP port is ours too
        probe.close()
        engine.close()
        assert all(s.closed for s in streams) and engine.streams == []

    asyncio.run(main())


def test_a_full_range_raises_and_closed_ports_are_reused() -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), port_range=(31200, 31205), seed=2)
        streams = [await engine.open_stream() for _ in range(3)]  # 31200, 31202, 31204
        with pytest.raises(OSError):
            await engine.open_stream()
        port = streams[1].local_address[1]
        streams[1].close()
        again = await engine.open_stream()
        assert again.local_address[1] == port
        engine.close()
        with pytest.raises(RuntimeError):
            await engine.open_stream()

    asyncio.run(main())


def test_ports_taken_by_someone_else_are_skipped() -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 31301))  # the RTCP half of the pair 31300/31301
    allocator = PortAllocator("127.0.0.1", (31300, 31303), random.Random(0))
    rtp, rtcp = allocator.bind()
    assert rtp.getsockname()[1] == 31302 and rtcp is not None
    assert rtcp.getsockname()[1] == 31303
    for sock in (rtp, rtcp, squatter):
        sock.close()


def test_without_rtcp_odd_ports_stay_free() -> None:
    allocator = PortAllocator("127.0.0.1", (31400, 31401), random.Random(0), rtcp=False)
    rtp, rtcp = allocator.bind()
    assert rtp.getsockname()[1] == 31400 and rtcp is None
    rtp.close()
    with pytest.raises(ValueError):
        PortAllocator("127.0.0.1", (31501, 31501), random.Random(0))
