"""An Asterisk queue end to end: ``ivr serve`` takes a real SIP call whose INVITE names the
caller's Asterisk channel (as Asterisk's dialplan adds it), the enqueue redirects that channel
over AMI to the replay peer (tests/ami_replay.py: no Asterisk can be installed here), the caller
(standing in for Asterisk) hangs our leg up, and the queue's events complete the call's record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml
from ami_replay import SECRET, AmiReplay, ReplayThread, written_answered_call
from serve_helpers import ServerThread, calls, free_port, record_ids, wait_for
from sip_phone import run

from ivr.config import load_config
from ivr.serve.server import ServeOptions
from ivr.sim.live_call import LivePhone
from ivr.sim.records import CallRecords

pytestmark = pytest.mark.timeout(120)

FLOW = """\
flow: ast
languages: [en]
start: queue
nodes:
  queue:
    enqueue: {queue: support, on_no_agents: closed}
  closed:
    hangup: {prompt: "Nobody is here.", outcome: failed}
"""
CHANNEL = "PJSIP/trunk-00000031"


def write_project(root: Path, port: int, ami_port: int) -> Path:
    (root / "flows").mkdir()
    (root / "flows" / "ast.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en"], "numbers": {"default": "ast"},
        "sip": {"listen": f"127.0.0.1:{port}", "rtp_ports": "44000-44999"},
        "asr": {"backend": "off"},
        "acd": {"asterisk": {"port": ami_port, "username": "nnnnnnnnn",
                             "secret": "${IVR_AMI_SECRET}"},
                "queues": {"support": {"asterisk": {"queue": "support-q",
                                                    "context": "ivr-queues",
                                                    "extension": "support"}}}},
    }  # fmt: skip
    (root / "ivr.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root / "ivr.yaml"


def test_a_sip_call_is_redirected_to_asterisk_and_recorded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    replay = AmiReplay()
    replay.after["redirect"] = written_answered_call(CHANNEL, "1700000000.77", "support-q")
    with ReplayThread(replay) as peer:
        port = free_port()
        config = load_config(write_project(tmp_path, port, peer.port),
                             environ={**os.environ, "IVR_AMI_SECRET": SECRET})  # fmt: skip
        server = ServerThread(config, ServeOptions(host="127.0.0.1", port=port,
                                                   rtp_ports=config.sip.rtp_ports)).start()
        try:
            wait_for(lambda: server.read(lambda s: s.host.asterisk.client.connected), 15)  # type: ignore[union-attr]

            async def scenario() -> str:
                phone = LivePhone()
                await phone.start()
                caller = phone.caller(records=CallRecords(server.db))
                try:
                    assert await caller.dial(f"sip:95588@127.0.0.1:{port}", caller="+3115001",
                                             headers=[("X-Asterisk-Channel", CHANNEL)]) == 200
                    assert await caller.wait_until(lambda: bool(peer.actions("Redirect")), 20)
                    caller.hangup()  # Asterisk took the caller out of its bridge with us
                    assert await caller.wait_until(lambda: caller.call_ended_in_record, 10)
                    return caller.call_id
                finally:
                    await caller.close()
                    await phone.close()

            call_id = run(scenario(), 60)
            record = wait_for(lambda: next((c for c in calls(server.db)
                                            if c["call_id"] in record_ids(server.db, call_id)
                                            and c["outcome"] == "agent"), None), 15)  # fmt: skip
        finally:
            server.stop()
        [redirect] = peer.actions("Redirect")
    assert (redirect["channel"], redirect["context"], redirect["exten"]) == \
        (CHANNEL, "ivr-queues", "support")  # fmt: skip
    assert (record["queue"], record["agent"], record["queue_wait"], record["talk_time"],
            record["ring_attempts"]) == ("support", "bo", 7, 42, 2)  # fmt: skip
    assert SECRET not in caplog.text
