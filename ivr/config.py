"""ivr.yaml: the main configuration, read once by every command, against one schema.

Every key the platform reads is declared here; an unknown key (``stor:``), a wrong type
(``workers: many``), a value out of range or a YAML syntax error is a :class:`ConfigError`
listing every problem as ``ivr.yaml:LINE:COL: reason``, before anything starts. The file is
parsed with the flows' YAML 1.2 loader (:mod:`ivr.flow.yamlload`): ``off`` is text, only
``true``/``false`` are booleans. ``${NAME}`` and ``${NAME:-default}`` expand in text values
(:mod:`ivr.configread`); an expanded value is never shown in a message.

The sections and their keys::

    flows_dir, prompts_dir, scripts_dir, actions_path   folders (relative to ivr.yaml's folder)
    store: {path}                                       the SQLite call records
    languages: [en, ...]                                default languages of flows
    numbers: {"95588": flow-id, default: flow-id}       dialled number -> flow
    transfer_allow: [pattern, ...]                      numbers or sip:USER@HOST, * ? in USER
    webhook_allow: [host, ...]                          hosts webhooks may reach (absent: any)
    vars: {...}                                         free: config.<name> in flows
    timers: {...}                                       free here; checked when flows are built
    asr: {backend, workers, models_dir}                 speech recognition (AsrConfig)
    sip: {listen, rtp_host, rtp_ports, max_calls, ringing, drain_timeout, test_headers,
          workers, register: {registrar, username, password, domain, expires},
          per_source: {max_calls, max_unconfirmed, rate, burst}, refuse_without_store,
          media_timeout}
    pyvoip: {server, port, username, password, local_ip, local_port, rtp_ports,
             register_timeout, max_calls}
    log: {format}                                       text or json
    acd: {realm, control, agents, queues} or {file}     the agent queue (ivr/acd/config.py)
    console: {listen, users, session_lifetime}          the web console (ivr/consoleconf.py)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.acd.config import AcdConfig, AgentAccount, read_acd
from ivr.configread import MISSING, ConfigProblem, Reader, expand_env, syntax_problem
from ivr.consoleconf import ConsoleConfig, read_console
from ivr.core.priority import PRIORITIES
from ivr.flow.errors import YamlError
from ivr.flow.model import Pos
from ivr.flow.transferallow import bad_entry
from ivr.flow.webhookurl import parse_rule
from ivr.flow.yamlload import Positions, load_yaml, pointer
from ivr.sip.admission import SourceLimits
from ivr.sip.errors import SipParseError
from ivr.sip.uri import SipUri, parse_host_port

__all__ = ["ASR_BACKENDS", "LOG_FORMATS", "AcdConfig", "AgentAccount", "AsrConfig", "Config",
           "ConfigError", "ConfigProblem", "LogConfig", "PyvoipConfig", "RegisterConfig",
           "SipConfig", "expand_env", "load_config", "parse_listen",
           "parse_port_range"]  # fmt: skip

ASR_BACKENDS = ("auto", "pocketsphinx", "vosk", "off")
LOG_FORMATS = ("text", "json")
# asr.backend may also name a factory, ``module:callable`` (ivr/asr/worker.py backend_factory)
_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")

_TOP = ("flows_dir", "prompts_dir", "scripts_dir", "actions_path", "store", "languages",
        "numbers", "transfer_allow", "webhook_allow", "vars", "timers", "asr", "sip", "pyvoip",
        "log", "acd", "console")  # fmt: skip
_SIP = ("listen", "rtp_host", "rtp_ports", "max_calls", "ringing", "drain_timeout",
        "test_headers", "workers", "register", "priority", "per_source", "refuse_without_store",
        "media_timeout")  # fmt: skip
_PER_SOURCE = ("max_calls", "max_unconfirmed", "rate", "burst")
_REGISTER = ("registrar", "username", "password", "domain", "expires")
_PYVOIP = ("server", "port", "username", "password", "local_ip", "local_port", "rtp_ports",
           "register_timeout", "max_calls")  # fmt: skip


class ConfigError(ValueError):
    """ivr.yaml cannot be used; :attr:`problems` has every reason, each with its position."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class AsrConfig:
    """ivr.yaml ``asr:``: speech recognition for live calls (ivr/asr/service.py).

    ``backend``: auto (Vosk for a language with a model under ``models_dir``, PocketSphinx's
    bundled English otherwise), pocketsphinx, vosk, or off (DTMF only); or ``module:callable``,
    a backend factory. ``workers``: decoding processes (0: one per core but one, at most 4).
    """

    backend: str = "auto"
    workers: int = 0
    models_dir: Path = Path("asr_models")

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class RegisterConfig:
    """ivr.yaml ``sip.register:``: register the native user agent to a PBX as an extension.

    Attributes:
        registrar: as written: ``host[:port]`` or a ``sip:`` URI.
        host: the registrar's host.
        port: its port (None: the URI's default, 5060).
        username: the extension, also the digest user name.
        password: the digest password (usually ``${IVR_SIP_PASSWORD}``; never printed).
        domain: the address-of-record's domain (default: the registrar's host).
        expires: the binding lifetime asked for, in seconds.
    """

    registrar: str
    host: str
    username: str
    password: str = field(default="", repr=False)
    port: int | None = None
    domain: str | None = None
    expires: int = 3600

    @property
    def registrar_uri(self) -> str:
        """The Request-URI of the REGISTER (``sip:pbx.example:5060``)."""
        if self.registrar.lower().startswith(("sip:", "sips:")):
            return self.registrar
        return f"sip:{self.host}" + (f":{self.port}" if self.port is not None else "")

    @property
    def aor(self) -> str:
        """The address of record (``sip:1001@pbx.example``)."""
        return f"sip:{self.username}@{self.domain or self.host}"


@dataclass(frozen=True)
class SipConfig:
    """ivr.yaml ``sip:``: the native SIP server (``ivr serve``); its flags win over these."""

    host: str = "127.0.0.1"
    port: int = 5060
    rtp_host: str | None = None
    rtp_ports: tuple[int, int] = (20000, 30000)
    max_calls: int = 200
    ringing: tuple[str, ...] = ("180",)
    drain_timeout: float = 30.0
    test_headers: bool = False
    workers: int = 1
    register: RegisterConfig | None = None
    priority: str = "high"  # of each engine process: normal | high | realtime (core/priority.py)
    per_source: SourceLimits = field(default_factory=SourceLimits)
    refuse_without_store: bool = True
    media_timeout: float = 30.0


@dataclass(frozen=True)
class PyvoipConfig:
    """ivr.yaml ``pyvoip:``: ``ivr serve-pyvoip`` (ivr/cli/cmd_serve_pyvoip.py); flags win."""

    server: str = ""  # the registrar's host ("" when not configured)
    port: int = 5060
    username: str = ""
    password: str = field(default="", repr=False)
    local_ip: str = "127.0.0.1"
    local_port: int = 0
    rtp_ports: tuple[int, int] = (10000, 20000)
    register_timeout: float = 5.0
    max_calls: int = 40


@dataclass(frozen=True)
class LogConfig:
    """ivr.yaml ``log:``: ``format`` text (one readable line) or json (one object a line)."""

    format: str = "text"


@dataclass(frozen=True)
class Config:
    """Everything ivr.yaml says, with paths made absolute against its folder."""

    root: Path
    flows_dir: Path
    prompts_dir: Path
    scripts_dir: Path
    actions_path: Path
    store_path: Path
    languages: tuple[str, ...] = ("en",)
    numbers: dict[str, str] = field(default_factory=dict)
    transfer_allow: tuple[str, ...] = ()
    webhook_allow: tuple[str, ...] | None = None  # None: not set, webhooks may reach any host
    vars: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, Any] = field(default_factory=dict)
    asr: AsrConfig = field(default_factory=AsrConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    pyvoip: PyvoipConfig = field(default_factory=PyvoipConfig)
    log: LogConfig = field(default_factory=LogConfig)
    acd: AcdConfig | None = None  # None: no agent queue (every enqueue takes its no-agents exit)
    console: ConsoleConfig | None = None  # None: ivr serve serves no web console
    file: str = "ivr.yaml"  # the file as named in messages
    positions: Positions | None = field(default=None, repr=False, compare=False)

    def flow_for(self, number: str) -> str | None:
        """The flow that answers ``number`` (or the default flow)."""
        return self.numbers.get(number) or self.numbers.get("default")

    def position(self, ptr: str) -> Pos:
        """Where the value at JSON pointer ``ptr`` is written (the file's start if nowhere)."""
        if self.positions is None:
            return Pos(self.file, 1, 1)
        return self.positions.value(ptr)


# --- values with a syntax of their own ------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``; the host defaults to 127.0.0.1).

    Raises:
        ValueError: no port, or one outside 0-65535.
    """
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def parse_port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` (or one port), 1-65535, LOW <= HIGH.

    Raises:
        ValueError: not that.
    """
    low, dash, high = str(text).strip().partition("-")
    high = high if dash else low
    if not (low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) <= 65535):
        raise ValueError(f"expected LOW-HIGH ports (1-65535), got {text!r}")
    return int(low), int(high)


def _host_port(text: str) -> tuple[str, int | None]:
    """``host[:port]`` or a sip:/sips: URI (SipParseError when neither)."""
    if text.lower().startswith(("sip:", "sips:")):
        uri = SipUri.parse(text)
        return uri.host, uri.port
    return parse_host_port(text)


# --- reading ---------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None
                ) -> Config:  # fmt: skip
    """Read ivr.yaml (default: ``$IVR_CONFIG`` or ``./ivr.yaml``); a missing file gives the
    defaults.

    Raises:
        ConfigError: the file is unreadable, not YAML, or breaks the schema (every problem,
            each at its line and column).
    """
    env = os.environ if environ is None else environ
    given = Path(path or env.get("IVR_CONFIG") or "ivr.yaml")
    cfg_path = given.resolve()
    display = _display(given)
    if not cfg_path.exists():
        return _defaults(cfg_path.parent, display)
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(Pos(display), f"cannot read: {reason}")]) from None
    try:
        doc = load_yaml(text, display)
    except YamlError as exc:
        raise ConfigError([syntax_problem(d.pos, d.message, text)
                           for d in exc.diagnostics]) from None  # fmt: skip
    reader = Reader(doc, env)
    config = _read(reader, cfg_path.parent, display, doc.positions)
    if reader.problems:
        # ivr.yaml's problems first, then those of a file it names (acd.file)
        raise ConfigError(sorted(reader.problems,
                                 key=lambda p: (p.pos.file != display, p.pos.line, p.pos.col)))
    return config


def _defaults(root: Path, display: str) -> Config:
    return Config(root=root, flows_dir=root / "flows", prompts_dir=root / "prompts",
                  scripts_dir=root / "tests/scripts", actions_path=root / "flows/actions",
                  store_path=root / "var/calls.db", asr=AsrConfig(models_dir=root / "asr_models"),
                  file=display)  # fmt: skip


def _display(path: Path) -> str:
    """The file as messages name it: as given when relative, else relative to the working
    folder when inside it."""
    if not path.is_absolute():
        return os.path.normpath(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return os.path.normpath(path)


def _read(r: Reader, root: Path, display: str, positions: Positions) -> Config:
    if r.get("") is not MISSING and not isinstance(r.get(""), dict):
        r.problem("", "the top level must be a mapping of settings (flows_dir: ..., numbers: ...)")
        return _defaults(root, display)
    r.section("", _TOP)

    def path(ptr: str, default: str) -> Path:
        value = Path(r.text(ptr, default) or default)
        return value if value.is_absolute() else root / value

    r.section("/store", ("path",))
    r.section("/log", ("format",))
    numbers = r.mapping("/numbers")
    return Config(
        root=root,
        flows_dir=path("/flows_dir", "flows"),
        prompts_dir=path("/prompts_dir", "prompts"),
        scripts_dir=path("/scripts_dir", "tests/scripts"),
        actions_path=path("/actions_path", "flows/actions"),
        store_path=path("/store/path", "var/calls.db"),
        languages=r.text_list("/languages", ("en",)) or ("en",),
        numbers={key: r.text(pointer("numbers", key), "") for key in numbers},
        transfer_allow=_transfer_allow(r),
        webhook_allow=_webhook_allow(r),
        vars=dict(r.mapping("/vars")),
        timers=dict(r.mapping("/timers")),
        asr=_asr(r, path),
        sip=_sip(r),
        pyvoip=_pyvoip(r),
        log=LogConfig(r.choice("/log/format", "text", LOG_FORMATS)),
        acd=read_acd(r, root, display),
        console=read_console(r, parse_listen),
        file=display,
        positions=positions,
    )


def _transfer_allow(r: Reader) -> tuple[str, ...]:
    """The allow-list, every entry a number or plain SIP URI pattern (flow/transferallow.py)."""
    entries = r.text_list("/transfer_allow", ())
    for i, entry in enumerate(entries):
        problem = bad_entry(entry)
        if problem is not None:
            r.problem(pointer("transfer_allow", i), problem)
    return entries


def _webhook_allow(r: Reader) -> tuple[str, ...] | None:
    """The hosts webhooks may reach: ``host``, ``host:port`` or a URL (flow/webhookurl.py)."""
    if r.get("/webhook_allow") is MISSING:
        return None
    entries = r.text_list("/webhook_allow", ())
    for i, entry in enumerate(entries):
        if parse_rule(entry) is None:
            r.problem(pointer("webhook_allow", i), f"webhook_allow entry {entry!r} is not a "
                      "host, host:port or http(s) URL (hosts are named exactly, no globs)")
    return entries


def _asr(r: Reader, path: Callable[[str, str], Path]) -> AsrConfig:
    r.section("/asr", ("backend", "workers", "models_dir"))
    return AsrConfig(
        backend=r.choice("/asr/backend", "auto", ASR_BACKENDS, _FACTORY),
        workers=r.integer("/asr/workers", 0, minimum=0),
        models_dir=path("/asr/models_dir", "asr_models"),
    )


def _ports(r: Reader, ptr: str, default: tuple[int, int]) -> tuple[int, int]:
    value = r.get(ptr)
    if value is MISSING:
        return default
    try:
        return parse_port_range(r.text(ptr, ""))
    except ValueError:
        r.problem(ptr, f"{r.name(ptr)} must be LOW-HIGH ports (1-65535), not "
                       f"{r.show(ptr, value)}")  # fmt: skip
        return default


def _sip(r: Reader) -> SipConfig:
    if not r.section("/sip", _SIP):
        return SipConfig()
    host, port = SipConfig.host, SipConfig.port
    if r.get("/sip/listen") is not MISSING:
        try:
            host, port = parse_listen(r.text("/sip/listen", f"{host}:{port}"))
        except ValueError:
            r.problem("/sip/listen", "sip.listen must be HOST:PORT (port 0-65535), not "
                                     f"{r.show('/sip/listen', r.get('/sip/listen'))}")  # fmt: skip
    ringing = _ringing(r, "/sip/ringing")
    return SipConfig(
        host=host,
        port=port,
        rtp_host=r.optional_text("/sip/rtp_host"),
        rtp_ports=_ports(r, "/sip/rtp_ports", SipConfig.rtp_ports),
        max_calls=r.integer("/sip/max_calls", SipConfig.max_calls, minimum=1),
        ringing=ringing,
        drain_timeout=r.number("/sip/drain_timeout", SipConfig.drain_timeout),
        test_headers=r.boolean("/sip/test_headers", False),
        workers=r.integer("/sip/workers", SipConfig.workers, minimum=0),
        register=_register(r),
        priority=r.choice("/sip/priority", SipConfig.priority, PRIORITIES),
        per_source=_per_source(r),
        refuse_without_store=r.boolean("/sip/refuse_without_store", True),
        media_timeout=r.number("/sip/media_timeout", SipConfig.media_timeout, minimum=1.0),
    )


def _per_source(r: Reader) -> SourceLimits:
    """What one source address may take (ivr/sip/admission.py); 0 turns a limit off."""
    ptr, default = "/sip/per_source", SourceLimits()
    if not r.section(ptr, _PER_SOURCE):
        return default
    return SourceLimits(
        max_calls=r.integer(f"{ptr}/max_calls", default.max_calls, minimum=0),
        max_unconfirmed=r.integer(f"{ptr}/max_unconfirmed", default.max_unconfirmed, minimum=0),
        rate=r.number(f"{ptr}/rate", default.rate),
        burst=r.integer(f"{ptr}/burst", default.burst, minimum=1),
    )


def _ringing(r: Reader, ptr: str) -> tuple[str, ...]:
    """Provisional answers sent before the final one: a list of 1xx codes ([] for none)."""
    value = r.get(ptr)
    if value is MISSING:
        return SipConfig.ringing
    if not isinstance(value, list):
        r.problem(ptr, f"sip.ringing must be a list of status codes (180, 183), not "
                       f"{r.show(ptr, value)}")  # fmt: skip
        return SipConfig.ringing
    codes = []
    for index, code in enumerate(value):
        if str(code).isdigit() and not isinstance(code, bool) and 101 <= int(code) <= 199:
            codes.append(str(int(code)))
        else:
            item = f"{ptr}/{index}"
            r.problem(item, f"{r.name(item)} must be a provisional status code (101-199, e.g. "
                            f"180 or 183), not {r.show(item, code)}")  # fmt: skip
    return tuple(codes)


def _register(r: Reader) -> RegisterConfig | None:
    ptr = "/sip/register"
    if not r.section(ptr, _REGISTER):
        return None
    for key in ("registrar", "username"):
        if r.get(f"{ptr}/{key}") is MISSING:
            r.problem(ptr, f"sip.register needs {key}", at_key=True)
    registrar = r.text(f"{ptr}/registrar", "")
    host, port = registrar, None
    if registrar:
        try:
            host, port = _host_port(registrar)
        except SipParseError:
            r.problem(f"{ptr}/registrar", "sip.register.registrar must be host[:port] or a sip: "
                      f"URI, not {r.show(f'{ptr}/registrar', registrar)}")  # fmt: skip
    return RegisterConfig(
        registrar=registrar,
        host=host,
        port=port,
        username=r.text(f"{ptr}/username", ""),
        password=r.text(f"{ptr}/password", ""),
        domain=r.optional_text(f"{ptr}/domain"),
        expires=r.integer(f"{ptr}/expires", 3600, minimum=1),
    )


def _pyvoip(r: Reader) -> PyvoipConfig:
    ptr = "/pyvoip"
    if not r.section(ptr, _PYVOIP):
        return PyvoipConfig()
    port = r.integer(f"{ptr}/port", 5060, 1, 65535)
    server = r.text(f"{ptr}/server", "")
    if server:
        try:
            server, server_port = parse_host_port(server)
            port = server_port if server_port is not None else port
        except SipParseError:
            r.problem(f"{ptr}/server", "pyvoip.server must be host[:port], not "
                                       f"{r.show(f'{ptr}/server', r.get(f'{ptr}/server'))}")
            server = ""
    return PyvoipConfig(
        server=server,
        port=port,
        username=r.text(f"{ptr}/username", ""),
        password=r.text(f"{ptr}/password", ""),
        local_ip=r.text(f"{ptr}/local_ip", "127.0.0.1"),
        local_port=r.integer(f"{ptr}/local_port", 0, 0, 65535),
        rtp_ports=_ports(r, f"{ptr}/rtp_ports", PyvoipConfig.rtp_ports),
        register_timeout=r.number(f"{ptr}/register_timeout", 5.0, minimum=0.1),
        max_calls=r.integer(f"{ptr}/max_calls", 40, minimum=1),
    )
