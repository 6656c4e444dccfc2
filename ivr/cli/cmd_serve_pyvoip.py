"""``ivr serve-pyvoip``: register to a PBX as an extension (pyVoIP) and answer its calls.

Settings come from ivr.yaml's ``pyvoip:`` section, flags win::

    pyvoip:
      server: 127.0.0.1:5060          # the registrar/proxy (pyVoIP sends everything there)
      username: "1001"                # the extension, also the digest user
      password: "${IVR_PYVOIP_PASSWORD}"
      local_ip: 127.0.0.1             # pyVoIP's address in Contact and SDP
      local_port: 5062                # pyVoIP's SIP port (0: any free port)
      rtp_ports: 10000-20000
      max_calls: 40                   # beyond: 486 (pyVoIP degrades past ~50, see README)

The called number (the To user of the INVITE) picks the flow through ``numbers:`` as for SIP.

pyVoIP (and so :mod:`ivr.pyvoip`) is imported only when this command runs: it needs the stdlib
``audioop``, gone in Python 3.13 (the ``audioop-lts`` package brings it back), and every other
command must work without it. Without ``audioop`` this command exits 2 with one line saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

from ivr.cli.serving import run_server
from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.host.signals import stop_on_signals
from ivr.sip.errors import SipParseError
from ivr.sip.uri import parse_host_port

if TYPE_CHECKING:  # imported when the command runs: pyVoIP needs audioop (see above)
    from ivr.pyvoip.server import PyVoipServeOptions, PyVoipServer

NAME = "serve-pyvoip"
HELP = "register to a PBX as an extension with pyVoIP and answer its calls with the flows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="registrar HOST:PORT (default: ivr.yaml pyvoip.server)")
    parser.add_argument("--username", help="extension to register (default: pyvoip.username)")
    parser.add_argument("--local-port", type=int, help="pyVoIP's SIP port (default: any free)")
    parser.add_argument("--no-build", action="store_true", help="do not render prompts first")


def options_from(args: argparse.Namespace, config: Config) -> PyVoipServeOptions:
    """ivr.yaml ``pyvoip:`` with flags winning; the password may also come from
    ``$IVR_PYVOIP_PASSWORD``.

    Raises:
        ValueError: a required value is missing or a flag is malformed.
    """
    from ivr.pyvoip.phone import PhoneOptions
    from ivr.pyvoip.server import PyVoipServeOptions

    section = config.pyvoip
    server, port = section.server, section.port
    if args.server:
        try:
            server, flag_port = parse_host_port(args.server)
        except SipParseError as exc:
            raise ValueError(f"--server: {exc}") from None
        port = flag_port if flag_port is not None else port
    if not server:
        raise ValueError("pyvoip.server is required (the registrar's host or host:port)")
    username = args.username or section.username
    if not username:
        raise ValueError("pyvoip.username is required (the extension to register)")
    phone = PhoneOptions(
        server=server,
        port=port,
        username=username,
        password=section.password or os.environ.get("IVR_PYVOIP_PASSWORD", ""),
        local_ip=section.local_ip,
        local_port=args.local_port if args.local_port is not None else section.local_port,
        rtp_ports=section.rtp_ports,
        register_timeout=section.register_timeout,
        max_calls=section.max_calls,
    )
    return PyVoipServeOptions(phone, build_prompts=not args.no_build)


async def serve(server: PyVoipServer) -> None:
    """Run until SIGTERM or SIGINT, then hang up and de-register."""
    stop = stop_on_signals()
    await server.start()
    phone = server.options.phone
    print(f"ivr: registered {phone.username} at {phone.server}:{phone.port} with pyVoIP "
          "(Ctrl-C or SIGTERM stops)", flush=True)  # fmt: skip
    try:
        await stop.wait()
    finally:
        print("ivr: stopping", flush=True)
        await server.stop()


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        from ivr.pyvoip.server import PyVoipServer, RegistrationFailed
    except ModuleNotFoundError as exc:
        if exc.name != "audioop":
            raise
        print("ivr serve-pyvoip: pyVoIP needs audioop; on Python 3.13+ install audioop-lts",
              file=sys.stderr)  # fmt: skip
        return ExitStatus.USAGE
    try:
        options = options_from(args, config)
    except ValueError as exc:
        print(f"ivr serve-pyvoip: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    return run_server(NAME, lambda: asyncio.run(serve(PyVoipServer(config, options))),
                      {RegistrationFailed: "registration failed"})  # fmt: skip
