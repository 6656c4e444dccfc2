"""``acd.asterisk`` and a queue's ``asterisk:`` in ivr.yaml (ivr/acd/asterisk.py): read, checked
at file:line:col, the AMI secret from the environment and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.acd.asterisk import AsteriskManager, AsteriskQueue
from ivr.acd.checks import check_enqueues
from ivr.config import ConfigError, load_config
from ivr.flow.loader import load_text

SECRET = "ami-Secret-77q"
GOOD = """\
acd:
  asterisk:
    host: 127.0.0.1
    port: 5038
    username: ivr
    secret: "${IVR_AMI_SECRET}"
  agents:
    ann: {password: pw}
  queues:
    general: {}
    support:
      asterisk: {queue: support-q, context: ivr-queues, extension: support}
"""


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    (tmp_path / "ivr.yaml").write_text(text, encoding="utf-8")
    env = {"IVR_AMI_SECRET": SECRET} if environ is None else environ
    return load_config(tmp_path / "ivr.yaml", environ=env)


def test_an_asterisk_queue(tmp_path: Path) -> None:
    acd = load(tmp_path, GOOD).acd  # type: ignore[attr-defined]
    assert acd.asterisk == AsteriskManager("127.0.0.1", 5038, "ivr", SECRET)
    assert acd.asterisk_queues == {"support": AsteriskQueue("support-q", "ivr-queues", "support")}
    assert [q.name for q in acd.queues] == ["general", "support"]
    assert SECRET not in repr(acd)


@pytest.mark.parametrize(("text", "environ", "expected"), [
    (GOOD, {}, "ivr.yaml:6:13: acd.asterisk.secret is empty: ${IVR_AMI_SECRET} is not set"),
    (GOOD.replace("extension: support", "extension: \"s\\r\\nAction: Hangup\""), None,
     "ivr.yaml:12:68: acd.queues.support.asterisk.extension must be an extension"),
    (GOOD.replace("  asterisk:\n    host", "  asterisk_:\n    host"), None,
     "unknown key 'asterisk_' in acd (did you mean 'asterisk'?)"),
    (GOOD.replace("auth", "x").replace("port: 5038", "auth: sha"), None,
     "acd.asterisk.auth must be one of md5, plain, not 'sha'"),
    ("acd:\n  queues:\n    support:\n      asterisk: {context: c, extension: e}\n", None,
     "an Asterisk queue needs acd.asterisk"),
])  # fmt: skip
def test_mistakes(tmp_path: Path, text: str, environ: dict[str, str] | None,
                  expected: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_secret_written_in_the_file_is_never_shown(tmp_path: Path) -> None:
    text = GOOD.replace('"${IVR_AMI_SECRET}"', f'"{SECRET}"').replace("port: 5038", "port: 0")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert "acd.asterisk.port" in str(caught.value) and SECRET not in str(caught.value)



def test_an_asterisk_queue_needs_none_of_our_agents(tmp_path: Path) -> None:
    flow = load_text("flow: q\nlanguages: [en]\nstart: a\nnodes:\n  a:\n"
                     "    enqueue: {queue: support, skills: [mandarin]}\n", "q.yaml")  # fmt: skip
    asterisk = load(tmp_path, GOOD).acd  # type: ignore[attr-defined]
    assert check_enqueues([flow], asterisk) == []
    mark = "      asterisk: {queue: support-q, context: ivr-queues, extension: support}\n"
    ours = load(tmp_path, GOOD.replace(mark, "      {}\n")).acd  # type: ignore[attr-defined]
    assert "no agent of queue 'support'" in str(check_enqueues([flow], ours))
