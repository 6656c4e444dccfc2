"""``ivr serve``: answer SIP calls with the configured flows until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client.multiprocess import mark_process_dead

from ivr.acd.service import ServiceError
from ivr.cli.console_run import console_for, worker_metrics
from ivr.cli.serving import run_server
from ivr.config import Config, parse_listen, parse_port_range
from ivr.console.server import ConsoleError
from ivr.console.source import ServerState, multiprocess_registry
from ivr.core.priority import PRIORITIES, raise_priority
from ivr.host.signals import stop_on_signals
from ivr.serve.server import IvrServer, RegisterOptions, ServeOptions
from ivr.serve.workers import SupervisorHooks, serve_workers, worker_count
from ivr.sip.portlock import hold_port

log = logging.getLogger("ivr.serve")

NAME = "serve"
HELP = "answer SIP calls with the flows in flows/ (reloads changed flows; drains on SIGTERM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", help="HOST:PORT for SIP (default: ivr.yaml sip.listen or "
                        "127.0.0.1:5060)")
    parser.add_argument("--rtp-ports", help="LOW-HIGH UDP ports for RTP (default 20000-30000)")
    parser.add_argument("--max-calls", type=int, help="calls beyond this get 503 (default 200)")
    parser.add_argument("--no-build", action="store_true", help="do not render prompts first")
    parser.add_argument("--workers", type=int, help="engine processes sharing the SIP port "
                        "(default: ivr.yaml sip.workers or 1; 0: one per core)")
    parser.add_argument("--priority", choices=PRIORITIES, help="scheduling priority of the "
                        "engine processes (default: ivr.yaml sip.priority or high)")
    parser.add_argument("--no-console", action="store_true",
                        help="do not serve the web console of ivr.yaml console:")


def options_from(args: argparse.Namespace, config: Config) -> ServeOptions:
    """ivr.yaml ``sip:`` values, with command-line flags winning.

    Raises:
        ValueError: a malformed ``--listen`` or ``--rtp-ports``.
    """
    sip = config.sip
    host, port = parse_listen(args.listen) if args.listen else (sip.host, sip.port)
    return ServeOptions(
        host=host,
        port=port,
        rtp_host=sip.rtp_host,
        rtp_ports=parse_port_range(args.rtp_ports) if args.rtp_ports else sip.rtp_ports,
        max_calls=args.max_calls or sip.max_calls,
        ringing=sip.ringing,
        build_prompts=not args.no_build,
        drain_timeout=sip.drain_timeout,
        test_headers=sip.test_headers,
        workers=args.workers if args.workers is not None else sip.workers,
        register=_register(config),
        priority=args.priority or sip.priority,
        per_source=sip.per_source,
        refuse_without_store=sip.refuse_without_store,
        media_timeout=sip.media_timeout,
    )


def _register(config: Config) -> RegisterOptions | None:
    """ivr.yaml ``sip.register``: sign in to a PBX as an extension."""
    spec = config.sip.register
    if spec is None:
        return None
    return RegisterOptions(spec.registrar_uri, spec.aor, spec.username, spec.password,
                           spec.expires)


async def serve(server: IvrServer, state: ServerState | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain (``state``: what /healthz says)."""
    stop = stop_on_signals()
    log.info("engine priority %s", raise_priority(server.options.priority))
    await server.start()
    if state is not None:
        state.up()
    host, port = server.address
    print(f"ivr: answering SIP on {host}:{port} (Ctrl-C or SIGTERM drains and stops)",
          flush=True)
    await stop.wait()
    print("ivr: draining", flush=True)
    if state is not None:
        state.draining = True
    await server.drain()


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        options = options_from(args, config)
    except ValueError as exc:
        print(f"ivr serve: bad --listen/--rtp-ports: {exc}", file=sys.stderr)
        return 2
    return run_server(NAME, lambda: _serve_with_workers(args, config, options),
                      {ServiceError: "the agent queue cannot start",
                       ConsoleError: "the console cannot start"})  # fmt: skip


def _serve_with_workers(args: argparse.Namespace, config: Config, options: ServeOptions) -> int:
    # Held until the server has stopped, by the supervisor when there are workers: a second
    # server on this port is refused (PortInUse) instead of sharing it through SO_REUSEPORT.
    with hold_port(options.host, options.port):
        workers = worker_count(options.workers)
        state = ServerState()
        console = not getattr(args, "no_console", False)
        if workers > 1:
            with worker_metrics() as folder, \
                    console_for(config, multiprocess_registry(folder), state, console):
                hooks = SupervisorHooks(on_ready=state.up,
                                        on_draining=lambda: setattr(state, "draining", True),
                                        on_worker_exit=lambda pid: mark_process_dead(pid, folder))
                return serve_workers(config, options, workers, args.log_level, args.log_file,
                                     args.log_format, hooks)  # fmt: skip
        server = IvrServer(config, options)
        with console_for(config, server.host.metrics.registry, state, console):
            asyncio.run(serve(server, state))
        return 0
