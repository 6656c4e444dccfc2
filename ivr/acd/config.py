"""``acd:`` in ivr.yaml: the agents and queues ops define (docs/ACD.md, "Configuration").

The section is read by ivr.yaml's own :class:`~ivr.configread.Reader`, so a mistake is reported
like any other, ``ivr.yaml:LINE:COL: reason`` with "did you mean". ``acd: {file: queues.yaml}``
keeps the definitions in a file of their own beside ivr.yaml, read the same way and reported as
``queues.yaml:LINE:COL: reason``; that file must lie inside ivr.yaml's folder.

Passwords and PINs are secrets: they normally come from ``${ENV}`` references, are kept out of
every ``repr`` (:class:`AgentAccount`) and no message ever shows them, not even a value written
in the file itself.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ivr.acd.asterisk import AsteriskManager, AsteriskQueue, read_manager, read_queue
from ivr.acd.model import STRATEGIES, TIERS, AgentSpec, QueueSpec
from ivr.configread import MISSING, Reader, syntax_problem
from ivr.flow.errors import YamlError
from ivr.flow.yamlload import child, load_yaml

__all__ = ["DEFAULT_LEVEL", "AcdConfig", "AgentAccount", "AgentLineConfig", "CallbackConfig",
           "read_acd"]

DEFAULT_LEVEL = 5  # the level of a skill given in a list (``skills: [accounts]``)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # agent ids and queue names
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # a SIP user part without escapes
_PIN = re.compile(r"[0-9]{4,8}")
_NUMBER = re.compile(r"\+?[0-9]{2,20}")  # a caller's number fit to call back
_T = TypeVar("_T")
_ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit"

_ACD = ("file", "realm", "control", "agents", "queues", "callback", "asterisk",
        "agent_line")  # fmt: skip
_CALLBACK = ("trunk", "ring_timeout", "retries", "retry_delay")
_AGENT_LINE = ("attempts", "lockout", "reasons")
_AGENT = ("name", "username", "password", "pin", "skills", "tier", "languages", "wrap_up",
          "max_misses")  # fmt: skip
_QUEUE = ("strategy", "ring_timeout", "retry_delay", "max_wait", "max_callers", "service_level",
          "members", "skills", "tier", "hold_music", "asterisk")  # fmt: skip


@dataclass(frozen=True)
class AgentAccount:
    """How an agent signs in: the SIP digest user name and password, and the PIN of the phone
    agent line (None: the agent cannot use it). The secrets stay out of ``repr``."""

    username: str
    password: str = field(repr=False)
    pin: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CallbackConfig:
    """How the queue calls back a caller who kept their place (``acd.callback``).

    Attributes:
        trunk: The outbound route: a SIP URI template with ``{number}`` (the caller's number,
            digits and a leading + only), e.g. ``sip:{number}@127.0.0.1:5090``.
        ring_timeout: Seconds the caller's phone rings.
        retries: Further attempts when the caller does not answer.
        retry_delay: Seconds between attempts.
    """

    trunk: str
    ring_timeout: float = 30.0
    retries: int = 1
    retry_delay: float = 120.0

    def uri(self, number: str) -> str | None:
        """The URI to call ``number`` at (None: not a phone number: never put into a URI)."""
        if not _NUMBER.fullmatch(number):
            return None
        return self.trunk.replace("{number}", number)


@dataclass(frozen=True)
class AgentLineConfig:
    """The phone agent line's guard (``acd.agent_line``).

    Attributes:
        attempts: Wrong PINs in a row after which an agent id is locked out of the line.
        lockout: Seconds the lock lasts (a right PIN meanwhile is refused too).
        reasons: The pause reasons a flow may give (empty: any).
    """

    attempts: int = 3
    lockout: float = 300.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcdConfig:
    """The agent queue as configured.

    Attributes:
        agents: every agent, in the order written (the strategies' last tie-break).
        queues: every queue, in the order written.
        accounts: agent id -> how that agent signs in.
        realm: the digest realm agents authenticate in.
        control: the control socket of the queue authority (``ivr agents ...``).
        asterisk: Asterisk's manager, when some queues are Asterisk's (docs/ASTERISK.md).
        asterisk_queues: queue name -> where Asterisk takes its callers.
        file: the file the definitions were read from, as messages name it.
        prefix: where they sit in it (``acd.`` in ivr.yaml, nothing in a file of their own).
    """

    agents: tuple[AgentSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    accounts: dict[str, AgentAccount] = field(default_factory=dict)
    realm: str = "ivr"
    control: Path = Path("var/acd.sock")
    callback: CallbackConfig | None = None
    asterisk: AsteriskManager | None = None
    asterisk_queues: dict[str, AsteriskQueue] = field(default_factory=dict)
    agent_line: AgentLineConfig = field(default_factory=AgentLineConfig)
    file: str = "ivr.yaml"
    prefix: str = "acd."

    def agent(self, agent_id: str) -> AgentSpec | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def queue(self, name: str) -> QueueSpec | None:
        return next((q for q in self.queues if q.name == name), None)

    def agent_for_username(self, username: str) -> str | None:
        """The id of the agent who signs in as ``username`` (for the registrar)."""
        return next((a for a, acc in self.accounts.items() if acc.username == username), None)

    def where(self, key: str) -> str:
        """``ivr.yaml acd.queues`` or ``queues.yaml queues``: where ``key`` is defined."""
        return f"{self.file} {self.prefix}{key}"


def read_acd(r: Reader, root: Path, display: str) -> AcdConfig | None:
    """The ``acd:`` section of the document ``r`` reads (None when there is none); problems,
    those of a file it names included, go to ``r.problems``.

    Args:
        r: ivr.yaml's reader.
        root: ivr.yaml's folder (paths are relative to it; a named file must lie inside it).
        display: ivr.yaml as messages name it.
    """
    if not r.section("/acd", _ACD):
        return None
    if r.get("/acd/file") is MISSING:
        return _definitions(r, "/acd", root, display, "acd.")
    named = r.text("/acd/file", "")
    for key in r.get("/acd"):
        if key != "file":
            r.problem(child("/acd", key), f"acd.{key} cannot stand beside acd.file: write it "
                                          f"in {named or 'that file'}", at_key=True)  # fmt: skip
    path = _inside(r, "/acd/file", named, root, display)
    if path is None:
        return None
    sub_display = _display_beside(display, named)
    sub = _open(r, "/acd/file", path, sub_display)
    if sub is None:
        return None
    acd = None
    if sub.section("", _ACD[1:]):
        acd = _definitions(sub, "", root, sub_display, "")
    elif sub.get("") is MISSING:
        acd = AcdConfig(control=root / AcdConfig.control, file=sub_display, prefix="")
    r.problems.extend(sub.problems)
    return acd


# --- the file of its own ---------------------------------------------------------------------


def _inside(r: Reader, ptr: str, named: str, root: Path, display: str) -> Path | None:
    """The file ``named`` if it lies inside ``root`` (symbolic links followed), else a problem."""
    if not named:
        r.wrong(ptr, r.get(ptr), f"the name of a file beside {Path(display).name}")
        return None
    path = (root / named).resolve()
    if not path.is_relative_to(root.resolve()):
        r.problem(ptr, f"acd.file must be a file inside the folder of {Path(display).name}, not "
                       f"{r.show(ptr, named)}")  # fmt: skip
        return None
    return path


def _display_beside(display: str, named: str) -> str:
    """The named file as messages name it: beside ivr.yaml as ivr.yaml is named."""
    if not os.path.isabs(named):
        return os.path.normpath(os.path.join(os.path.dirname(display), named))
    try:
        return str(Path(named).relative_to(Path.cwd()))
    except ValueError:
        return os.path.normpath(named)


def _open(r: Reader, ptr: str, path: Path, display: str) -> Reader | None:
    """A reader of the named file, or a problem (at ``acd.file``, or inside the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        r.problem(ptr, f"acd.file: there is no file {r.show(ptr, r.get(ptr))}")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        r.problem(ptr, f"acd.file: cannot read {r.show(ptr, r.get(ptr))}: {reason}")
        return None
    try:
        doc = load_yaml(text, display)
    except YamlError as exc:
        r.problems.extend(syntax_problem(d.pos, d.message, text) for d in exc.diagnostics)
        return None
    return Reader(doc, r.environ)


# --- the definitions ---------------------------------------------------------------------------


def _definitions(r: Reader, base: str, root: Path, display: str, prefix: str) -> AcdConfig:
    realm = r.text(f"{base}/realm", "ivr")
    if not realm or '"' in realm or "\\" in realm:
        r.wrong(f"{base}/realm", r.get(f"{base}/realm"), 'text without " or \\')
        realm = "ivr"
    control = Path(r.text(f"{base}/control", "") or AcdConfig.control)
    agents: list[AgentSpec] = []
    accounts: dict[str, AgentAccount] = {}
    users: dict[str, str] = {}  # username -> agent id
    written = list(r.mapping(f"{base}/agents"))
    for agent_id in written:
        ptr = child(f"{base}/agents", agent_id)
        found = _agent(r, ptr, agent_id)
        if found is None:
            continue
        spec, account = found
        agents.append(spec)
        accounts[agent_id] = account
        if account.username in users:
            at = f"{ptr}/username" if r.get(f"{ptr}/username") is not MISSING else ptr
            r.problem(at, f"{r.name(ptr)}: username {r.show(at, account.username)} is taken "
                          f"already, by agent '{users[account.username]}'",
                      at_key=at == ptr)  # fmt: skip
        users.setdefault(account.username, agent_id)
    known = (written, r.name(f"{base}/agents"))  # a broken agent is reported once, as itself
    queues = [_queue(r, child(f"{base}/queues", name), name, known)
              for name in r.mapping(f"{base}/queues")]  # fmt: skip
    manager, asterisk_queues = _asterisk(r, base)
    return AcdConfig(agents=tuple(agents), queues=tuple(q for q in queues if q is not None),
                     accounts=accounts, realm=realm,
                     control=control if control.is_absolute() else root / control,
                     file=display, prefix=prefix,
                     callback=_callback(r, f"{base}/callback"), asterisk=manager,
                     asterisk_queues=asterisk_queues,
                     agent_line=_agent_line(r, f"{base}/agent_line"))  # fmt: skip


def _asterisk(r: Reader, base: str) -> tuple[AsteriskManager | None, dict[str, AsteriskQueue]]:
    """``asterisk:`` (the manager) and the queues marked as Asterisk's."""
    ptr = f"{base}/asterisk"
    manager = read_manager(r, ptr, _secret(r, f"{ptr}/secret", required=True))
    marked: dict[str, AsteriskQueue] = {}
    for name in r.mapping(f"{base}/queues"):
        at = f"{child(f'{base}/queues', name)}/asterisk"
        if not isinstance(r.get(child(f"{base}/queues", name)), dict) or r.get(at) is MISSING:
            continue
        queue = read_queue(r, at, name)
        if queue is not None:
            marked[name] = queue
        if r.get(ptr) is MISSING:
            r.problem(at, f"{r.name(at)}: an Asterisk queue needs {r.name(ptr) or 'asterisk'} "
                          "(host, port, username, secret of its manager)", at_key=True)
    return manager, marked


def _agent_line(r: Reader, ptr: str) -> AgentLineConfig:
    if not r.section(ptr, _AGENT_LINE):
        return AgentLineConfig()
    reasons = r.text_list(f"{ptr}/reasons", ())
    value = r.get(f"{ptr}/reasons")
    for index, reason in enumerate(value if isinstance(value, list) else []):
        if isinstance(reason, str) and not _ID.fullmatch(reason):
            r.problem(child(f"{ptr}/reasons", index),
                      f"{r.name(child(f'{ptr}/reasons', index))}: a pause reason is {_ID_RULE}")
    return AgentLineConfig(r.integer(f"{ptr}/attempts", 3, 1, 20),
                           _positive(r, f"{ptr}/lockout", 300.0),
                           tuple(dict.fromkeys(x for x in reasons if _ID.fullmatch(x))))


def _callback(r: Reader, ptr: str) -> CallbackConfig | None:
    if not r.section(ptr, _CALLBACK):
        return None
    trunk = r.text(f"{ptr}/trunk", "")
    if not trunk.startswith(("sip:", "sips:")) or "{number}" not in trunk:
        r.wrong(f"{ptr}/trunk", r.get(f"{ptr}/trunk"),
                "a sip: URI with {number}, e.g. sip:{number}@127.0.0.1:5090")  # fmt: skip
        return None
    return CallbackConfig(trunk, r.number(f"{ptr}/ring_timeout", 30.0, 1.0),
                          r.integer(f"{ptr}/retries", 1, 0),
                          r.number(f"{ptr}/retry_delay", 120.0, 1.0))  # fmt: skip


def _check_id(r: Reader, ptr: str, what: str) -> None:
    name = ptr.rsplit("/", 1)[-1]
    if not _ID.fullmatch(name):
        r.problem(ptr, f"{r.name(ptr)}: {what} is {_ID_RULE}", at_key=True)


def _agent(r: Reader, ptr: str, agent_id: str) -> tuple[AgentSpec, AgentAccount] | None:
    _check_id(r, ptr, "an agent id")
    if r.get(ptr) is MISSING:
        _no_password(r, ptr, agent_id)
        return None
    if not r.section(ptr, _AGENT):
        return None
    username = r.text(f"{ptr}/username", agent_id)
    given = r.get(f"{ptr}/username") is not MISSING and f"{ptr}/username" not in r.written
    if given and not _USERNAME.fullmatch(username):
        r.wrong(f"{ptr}/username", username, "a SIP user name (letters, digits, '.', '_', '+', "
                                             "'-')")  # fmt: skip
    password = _secret(r, f"{ptr}/password", required=True)
    if r.get(f"{ptr}/password") is MISSING:
        _no_password(r, ptr, agent_id)
    pin = _secret(r, f"{ptr}/pin", required=False)
    if pin is not None and not _PIN.fullmatch(pin):
        where = f" (the value of {r.written[f'{ptr}/pin']})" if f"{ptr}/pin" in r.written else ""
        r.problem(f"{ptr}/pin", f"{r.name(f'{ptr}/pin')} must be 4 to 8 digits{where}")
        pin = None
    spec = AgentSpec(
        id=agent_id,
        name=r.text(f"{ptr}/name", "") or agent_id,
        skills=_skills(r, f"{ptr}/skills"),
        tier=r.choice(f"{ptr}/tier", "general", TIERS),
        languages=r.text_list(f"{ptr}/languages", ()),
        wrap_up=r.number(f"{ptr}/wrap_up", AgentSpec.wrap_up),
        max_misses=r.integer(f"{ptr}/max_misses", AgentSpec.max_misses, minimum=1),
    )
    return spec, AgentAccount(username, password or "", pin)


def _no_password(r: Reader, ptr: str, agent_id: str) -> None:
    env = "IVR_AGENT_" + re.sub(r"[^A-Za-z0-9]", "_", agent_id).upper()
    r.problem(ptr, f"{r.name(ptr)} needs a password (password: \"${{{env}}}\", set in the "
                   "environment)", at_key=True)  # fmt: skip


def _secret(r: Reader, ptr: str, *, required: bool) -> str | None:
    """A password or PIN: text, never shown in a message (only the ``${...}`` it came from)."""
    value = r.get(ptr)
    name = r.name(ptr)
    if value is MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        kinds = {list: "a list", dict: "a mapping", bool: "true or false"}
        kind = kinds.get(type(value), "a number")
        r.problem(ptr, f"{name} must be text in quotes, not {kind}")
        return None
    if value:
        return value
    if required and ptr in r.written:
        r.problem(ptr, f"{name} is empty: {r.written[ptr]} is not set in the environment")
    elif required:
        r.problem(ptr, f"{name} must not be empty")
    return None


def _skills(r: Reader, ptr: str) -> dict[str, int]:
    """``{accounts: 7, general: 5}`` or ``[accounts, general]`` (each at level 5)."""
    value = r.get(ptr)
    if value is MISSING:
        return {}
    if isinstance(value, list):
        return dict.fromkeys(r.text_list(ptr, ()), DEFAULT_LEVEL)
    if isinstance(value, dict):
        return {skill: r.integer(child(ptr, skill), DEFAULT_LEVEL, 1, 10) for skill in value}
    r.wrong(ptr, value, "skill: level pairs (1 to 10) or a list of skills")
    return {}


def _queue(r: Reader, ptr: str, name: str, agents: tuple[list[str], str]) -> QueueSpec | None:
    _check_id(r, ptr, "a queue name")
    if r.get(ptr) is MISSING:
        return QueueSpec(name)
    if not r.section(ptr, _QUEUE):
        return None
    return QueueSpec(
        name=name,
        strategy=r.choice(f"{ptr}/strategy", QueueSpec.strategy, STRATEGIES),
        ring_timeout=_positive(r, f"{ptr}/ring_timeout", QueueSpec.ring_timeout),
        retry_delay=r.number(f"{ptr}/retry_delay", QueueSpec.retry_delay),
        max_wait=_optional(r, f"{ptr}/max_wait", lambda p: _positive(r, p, 0.0)),
        max_callers=_optional(r, f"{ptr}/max_callers", lambda p: r.integer(p, 0, minimum=1)),
        service_level=_positive(r, f"{ptr}/service_level", QueueSpec.service_level),
        members=_members(r, f"{ptr}/members", agents),
        skills=r.text_list(f"{ptr}/skills", ()),
        tier=r.choice(f"{ptr}/tier", QueueSpec.tier, TIERS),
        hold_music=r.optional_text(f"{ptr}/hold_music") or None,
    )


def _positive(r: Reader, ptr: str, default: float) -> float:
    value = r.number(ptr, default, minimum=float("-inf"))
    if value <= 0 and r.get(ptr) is not MISSING:
        r.wrong(ptr, r.get(ptr), "more than 0")
        return default
    return value


def _optional(r: Reader, ptr: str, read: Callable[[str], _T]) -> _T | None:
    """``read(ptr)`` when the key is given, else None (no limit); a wrong value gives None."""
    if r.get(ptr) is MISSING:
        return None
    before = len(r.problems)
    value = read(ptr)
    return value if len(r.problems) == before else None


def _members(r: Reader, ptr: str, known: tuple[list[str], str]) -> tuple[str, ...] | None:
    """The agents of ``known`` (ids, where they are defined) a queue is limited to."""
    if r.get(ptr) is MISSING:
        return None
    agents, where = known
    members = r.text_list(ptr, ())
    value = r.get(ptr)
    for index, member in enumerate(value if isinstance(value, list) else []):
        if isinstance(member, str) and member not in agents:
            close = difflib.get_close_matches(member, agents, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            at = child(ptr, index)
            r.problem(at, f"{r.name(at)}: no agent {r.show(at, member)} in {where}{hint}")
    return tuple(dict.fromkeys(m for m in members if m in agents))

