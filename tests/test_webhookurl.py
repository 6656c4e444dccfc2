"""Webhook URL templates escape caller-controlled values; hosts are checked against
ivr.yaml's webhook_allow. A real HTTP server on 127.0.0.1 records what reaches it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ivr.config import ConfigError, load_config
from ivr.engine.actions import execute, host_rules
from ivr.flow.model import NOWHERE, ActionNode, Webhook
from ivr.flow.webhookurl import host_allowed, parse_rule, render_url


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    paths: ClassVar[list[str]] = []
    _Recorder.paths = paths
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", paths
    finally:
        httpd.shutdown()
        httpd.server_close()


def _node(url: str) -> ActionNode:
    return ActionNode(id="act", pos=NOWHERE, next="ok", on_error="err",
                      webhook=Webhook(url=url, method="GET"))  # fmt: skip


def test_caller_values_are_percent_encoded_in_the_url(server: tuple[str, list[str]]) -> None:
    base, paths = server
    scope = {"config": {"bank_api": base}, "account": "1/../../admin?all=1#x"}
    result = execute(_node("{config.bank_api}/accounts/{account}/balance"), scope, None)
    assert result.ok
    assert paths == ["/accounts/1%2F..%2F..%2Fadmin%3Fall%3D1%23x/balance"]


def test_a_value_cannot_move_the_request_to_another_host() -> None:
    url = render_url("http://{host}/x", {"host": "evil.example:80@127.0.0.1"})
    assert url == "http://evil.example%3A80%40127.0.0.1/x"


def test_a_host_outside_webhook_allow_is_refused_before_any_request(
    server: tuple[str, list[str]],
) -> None:
    base, paths = server
    scope = {"config": {"bank_api": base}}
    other = execute(_node("{config.bank_api}/x"), scope, None, host_rules(["127.0.0.1:1"]))
    assert not other.ok and other.error == "webhook host not in webhook_allow" and paths == []
    same = execute(_node("{config.bank_api}/x"), scope, None, host_rules([base + "/api"]))
    assert same.ok and paths == ["/x"]


@pytest.mark.parametrize(("url", "ok"), [
    ("http://bank.example/v1", True), ("https://bank.example/v1", True),
    ("http://bank.example:8080/", False), ("http://api.bank.example/", False),
    ("http://bank.example.evil.example/", False), ("http://u:p@bank.example/", False),
    ("ftp://bank.example/", False),
])
def test_host_rules_name_hosts_exactly(url: str, ok: bool) -> None:
    rules = host_rules(["bank.example"])
    assert rules is not None and host_allowed(url, rules) is ok


def test_a_url_entry_fixes_scheme_and_port() -> None:
    rules = host_rules(["http://127.0.0.1:8765"])
    assert rules is not None
    assert host_allowed("http://127.0.0.1:8765/verify", rules)
    assert not host_allowed("https://127.0.0.1:8765/verify", rules)
    assert not host_allowed("http://127.0.0.1/verify", rules)
    assert parse_rule("*.bank.example") is None and parse_rule("ftp://x") is None


def test_ivr_yaml_webhook_allow_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text('webhook_allow: ["bank.example", "http://10.1.2.3:80"]\n')
    assert load_config(tmp_path / "ivr.yaml").webhook_allow == (
        "bank.example", "http://10.1.2.3:80")
    (tmp_path / "ivr.yaml").write_text("languages: [en]\n")
    assert load_config(tmp_path / "ivr.yaml").webhook_allow is None
    (tmp_path / "ivr.yaml").write_text('webhook_allow: ["*.example"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml")
    assert "webhook_allow entry '*.example'" in caught.value.problems[0].message
