"""Transactions: the RFC 3261 §17 state machines, on a virtual clock and over loopback UDP."""

from __future__ import annotations

import asyncio

from sip_phone import Phone, run

from ivr.core.clock import LoopClock, VirtualClock
from ivr.sip.client_tx import InviteClientTransaction
from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response, make_response, parse_message
from ivr.sip.timers import Timers
from ivr.sip.transaction import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    InviteServerTransaction,
    server_key,
)
from ivr.sip.transport import Address, UdpTransport
from ivr.sip.tx_layer import TransactionLayer

PEER: Address = ("127.0.0.1", 5099)


def _request(method: str, branch: str | None = "z9hG4bKabc123", cseq: int = 1,
             to_tag: str | None = None) -> Request:  # fmt: skip
    via = "SIP/2.0/UDP 127.0.0.1:5099" + (f";branch={branch}" if branch else "")
    headers = Headers([
        ("Via", via), ("From", "<sip:a@127.0.0.1>;tag=f1"),
        ("To", "<sip:b@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", "tx-test@127.0.0.1"), ("CSeq", f"{cseq} {method}"), ("Max-Forwards", "70"),
    ])  # fmt: skip
    return Request(method, "sip:b@127.0.0.1", headers)


class Wire:
    """A sender that records (message, address) instead of using a socket."""

    def __init__(self) -> None:
        self.sent: list[tuple[Request | Response, Address]] = []

    def __call__(self, message: Request | Response, address: Address) -> None:
        self.sent.append((message, address))

    def count(self, label: str) -> int:
        return sum(1 for m, _ in self.sent if _label(m) == label)


def _label(message: Request | Response) -> str:
    return message.method if isinstance(message, Request) else str(message.status)


def test_non_invite_client_retransmits_on_timer_e_and_gives_up_on_timer_f() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers())
        tx = layer.create_client(_request("OPTIONS"), PEER)
        clock.advance(31.9)
        # Sent at 0, then after 0.5, 1, 2, 4, 4, 4, ... (T1 doubling, capped at T2=4 s).
        assert wire.count("OPTIONS") == 11
        assert not tx.result.done()
        clock.advance(0.2)  # Timer F: 64*T1 = 32 s
        assert tx.result.done() and tx.result.result().status == 408 and tx.timed_out
        assert len(layer) == 0

    run(scenario())


def test_non_invite_client_provisional_moves_retransmissions_to_t2() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers())
        request = _request("BYE")
        tx = layer.create_client(request, PEER)
        layer.match_response(make_response(request, 100)).receive(make_response(request, 100))  # type: ignore[union-attr]
        clock.advance(8.1)  # proceeding: one resend every T2
        assert wire.count("BYE") == 3
        final = make_response(request, 200)
        match = layer.match_response(final)
        assert match is tx
        tx.receive(final)
        assert tx.result.result().status == 200
        clock.advance(5.1)  # Timer K = T4
        assert len(layer) == 0 and wire.count("BYE") == 3

    run(scenario())


def test_invite_client_timer_a_doubles_without_cap_and_acks_a_non_2xx() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers())
        invite = _request("INVITE")
        tx = layer.create_client(invite, PEER)
        assert isinstance(tx, InviteClientTransaction)
        clock.advance(31.9)
        assert wire.count("INVITE") == 7  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5
        busy = make_response(invite, 486, to_tag="t9")
        tx.receive(busy)
        ack = wire.sent[-1][0]
        assert isinstance(ack, Request) and ack.method == "ACK"
        assert ack.top_via().branch == invite.top_via().branch  # same transaction (§17.1.1.3)
        assert ack.to_addr().tag == "t9" and str(ack.cseq()) == "1 ACK"
        tx.receive(busy)  # a retransmitted final response: ACK again
        assert wire.count("ACK") == 2
        assert tx.result.result().status == 486

    run(scenario())


def test_invite_server_sends_100_and_retransmits_non_2xx_until_ack() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers())
        invite = _request("INVITE")
        tx = layer.create_server(invite, PEER)
        assert wire.count("100") == 1  # at once
        assert layer.match_request(_request("INVITE")) is tx  # a retransmission
        tx.receive(invite)
        assert wire.count("100") == 2  # replayed
        tx.respond(make_response(invite, 603, to_tag="me"))
        clock.advance(4.0)  # Timer G: 0.5, 1.5, 3.5
        assert wire.count("603") == 4
        ack = _request("ACK", to_tag="me")
        assert layer.match_request(ack) is tx
        assert tx.receive(ack) is False  # absorbed, not for the TU
        assert tx.state == CONFIRMED
        clock.advance(10)
        assert wire.count("603") == 4 and len(layer) == 0  # Timer I ended it

    run(scenario())


def test_invite_server_timer_h_reports_a_missing_ack() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        lost: list[str] = []
        layer = TransactionLayer(wire, clock, Timers())
        invite = _request("INVITE")
        tx = layer.create_server(invite, PEER, on_no_ack=lambda: lost.append("no ack"))
        tx.respond(make_response(invite, 486, to_tag="me"))
        clock.advance(31.9)
        assert tx.state == COMPLETED and not lost
        clock.advance(0.2)
        assert lost == ["no ack"] and len(layer) == 0
        # 1 + retransmissions at .5, 1.5, 3.5, 7.5, then every 4 s up to 31.5
        assert wire.count("486") == 11

    run(scenario())


def test_invite_server_accepted_state_absorbs_invites_and_passes_acks() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers())
        invite = _request("INVITE")
        tx = layer.create_server(invite, PEER)
        ok = make_response(invite, 200, to_tag="me")
        tx.respond(ok)
        assert tx.state == ACCEPTED
        assert tx.receive(invite) is False
        assert wire.count("200") == 1  # the INVITE retransmission did not replay the 2xx
        tx.respond(ok)  # the TU's own 2xx retransmission passes through
        assert wire.count("200") == 2
        assert tx.receive(_request("ACK", to_tag="me")) is True  # RFC 6026: to the TU
        clock.advance(32.1)  # Timer L
        assert len(layer) == 0

    run(scenario())


def test_non_invite_server_replays_last_response_then_forgets_on_timer_j() -> None:
    async def scenario() -> None:
        clock, wire = VirtualClock(), Wire()
        layer = TransactionLayer(wire, clock, Timers(t1=0.1))
        bye = _request("BYE", to_tag="me")
        tx = layer.create_server(bye, PEER)
        assert layer.match_request(bye) is tx
        tx.receive(bye)  # no response yet: nothing to replay
        assert wire.sent == []
        tx.respond(make_response(bye, 200))
        tx.receive(bye)
        tx.receive(bye)
        assert wire.count("200") == 3
        tx.respond(make_response(bye, 500))  # a second final response is not sent
        assert wire.count("500") == 0
        clock.advance(6.5)  # Timer J = 64*T1
        assert layer.match_request(bye) is None

    run(scenario())


def test_branch_matching_and_rfc2543_fallback() -> None:
    invite = _request("INVITE")
    assert server_key(invite)[0] == "3261"
    assert server_key(_request("ACK", to_tag="x")) == server_key(invite)
    cancel = _request("CANCEL")
    assert server_key(cancel) != server_key(invite)
    assert server_key(cancel, "INVITE") == server_key(invite)
    other_sent_by = _request("INVITE")
    other_sent_by.headers.set("Via", "SIP/2.0/UDP 127.0.0.2:5099;branch=z9hG4bKabc123")
    assert server_key(other_sent_by) != server_key(invite)
    old = _request("INVITE", branch=None)
    assert server_key(old)[0] == "2543"
    assert server_key(_request("ACK", branch=None, to_tag="ours")) == server_key(old)
    assert server_key(_request("INVITE", branch=None, cseq=2)) != server_key(old)
    cookie_only = _request("OPTIONS", branch="z9hG4bK")  # RFC 4475 badbranch.dat
    assert server_key(cookie_only)[0] == "2543"


def test_server_transactions_over_udp_answer_retransmissions_and_ack() -> None:
    """The layer on a real socket: a request without a branch (RFC 2543) and its ACK."""

    async def scenario() -> None:
        seen: list[Request] = []
        layer_box: list[TransactionLayer] = []

        def on_request(request: Request, source: Address) -> None:
            layer = layer_box[0]
            tx = layer.match_request(request)
            if tx is not None:
                tx.receive(request)
                return
            seen.append(request)
            tx = layer.create_server(request, source)
            assert isinstance(tx, InviteServerTransaction)
            tx.respond(make_response(request, 404, to_tag="srv"))

        transport = await UdpTransport.open("127.0.0.1", 0, on_request=on_request,
                                            on_response=lambda r, a: None, make_tag=lambda: "t")
        layer_box.append(TransactionLayer(transport.send, LoopClock(), Timers(t1=0.05)))
        phone = await Phone.open()
        invite = _request("INVITE", branch=None)
        invite.headers.set("Via", f"SIP/2.0/UDP {phone.address[0]}:{phone.address[1]}")
        phone.send(invite, transport.local)
        await phone.response(100, "INVITE")
        not_found = await phone.response(404, "INVITE")
        phone.send(invite, transport.local)  # retransmission: the 404 again, no new request
        await phone.response(404, "INVITE")
        ack = parse_message(bytes(invite).replace(b"1 INVITE", b"1 ACK").replace(
            b"INVITE sip:", b"ACK sip:"))  # fmt: skip
        assert isinstance(ack, Request)
        ack.headers.set("To", not_found.headers.get("To") or "")
        phone.send(ack, transport.local)
        await asyncio.sleep(0.3)
        late = await phone.quiet(0.3, status=404)
        assert len(seen) == 1 and len(late) <= 1
        phone.close()
        transport.close()

    run(scenario())


def test_client_transaction_over_udp_gets_its_response() -> None:
    async def scenario() -> None:
        responses: list[Response] = []
        layer_box: list[TransactionLayer] = []

        def on_response(response: Response, source: Address) -> None:
            responses.append(response)
            tx = layer_box[0].match_response(response)
            if tx is not None:
                tx.receive(response)

        transport = await UdpTransport.open("127.0.0.1", 0, on_request=lambda r, a: None,
                                            on_response=on_response, make_tag=lambda: "t")
        layer = TransactionLayer(transport.send, LoopClock(), Timers(t1=0.05))
        layer_box.append(layer)
        phone = await Phone.open()
        options = _request("OPTIONS")
        host, port = transport.local
        options.headers.set("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bKq1;rport")
        tx = layer.create_client(options, phone.address)
        first = await phone.request("OPTIONS")
        again = await phone.request("OPTIONS")  # Timer E
        assert bytes(first) == bytes(again)
        phone.reply(first, 200)
        result = await asyncio.wait_for(tx.result, 2)
        assert result.status == 200 and not tx.timed_out
        phone.close()
        transport.close()

    run(scenario())
