"""``ivr serve``: answer SIP calls with the configured flows until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ivr.cli.serving import run_server
from ivr.config import Config
from ivr.host.signals import stop_on_signals
from ivr.serve.server import IvrServer, ServeOptions
from ivr.serve.workers import serve_workers, worker_count

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


def options_from(args: argparse.Namespace, config: Config) -> ServeOptions:
    """ivr.yaml ``sip:`` values, with command-line flags winning."""
    sip = dict(config.raw.get("sip") or {})
    listen = str(args.listen or sip.get("listen") or "127.0.0.1:5060")
    host, _, port = listen.rpartition(":")
    rtp = str(args.rtp_ports or sip.get("rtp_ports") or "20000-30000")
    low, _, high = rtp.partition("-")
    ringing = sip.get("ringing", ["180"])
    return ServeOptions(
        host=host or "127.0.0.1",
        port=int(port),
        rtp_host=sip.get("rtp_host"),
        rtp_ports=(int(low), int(high)),
        max_calls=int(args.max_calls or sip.get("max_calls") or 200),
        ringing=tuple(str(r) for r in (ringing or [])),
        build_prompts=not args.no_build,
        drain_timeout=float(sip.get("drain_timeout", 30.0)),
        test_headers=bool(sip.get("test_headers", False)),
        workers=int(args.workers if args.workers is not None else sip.get("workers", 1)),
    )


async def serve(server: IvrServer) -> None:
    """Run until SIGTERM or SIGINT, then drain."""
    stop = stop_on_signals()
    await server.start()
    host, port = server.address
    print(f"ivr: answering SIP on {host}:{port} (Ctrl-C or SIGTERM drains and stops)",
          flush=True)
    await stop.wait()
    print("ivr: draining", flush=True)
    await server.drain()


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        options = options_from(args, config)
    except ValueError as exc:
        print(f"ivr serve: bad --listen/--rtp-ports: {exc}", file=sys.stderr)
        return 2
    return run_server(NAME, lambda: _serve_with_workers(args, config, options))


def _serve_with_workers(args: argparse.Namespace, config: Config, options: ServeOptions) -> int:
    workers = worker_count(options.workers)
    if workers > 1:
        return serve_workers(config, options, workers, args.log_level, args.log_file)
    asyncio.run(serve(IvrServer(config, options)))
    return 0
