"""`ivr serve`: the hotline service (HTTP, WebRTC softphone, SIP).

Embedded defaults: the SQLite shop (the demo shop seeded into an empty one only with ``--demo``), the installed
speech model for the language (``--fetch-model`` downloads the default one first; else keypad/DTMF mode, with a
log line saying how to fetch a model), espeak-ng speech. Ctrl-C / SIGTERM shut down
gracefully: no new calls are taken, callers on the line hear a goodbye, then the process exits. A cluster node
(``redis_url``) drains on SIGTERM instead: its calls go on to their end first (docs/deploy-cluster.md).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the hotline service (web phone, WebRTC, SIP, agent desktop, dashboard)")
    p.add_argument("--host", help="bind address (IVR_HOST)")
    p.add_argument("--port", type=int, help="HTTP port (IVR_PORT)")
    p.add_argument("--sip-port", type=int, help="SIP port, 0 disables (IVR_SIP_PORT)")
    p.add_argument("--max-calls", type=int, help="concurrent calls before new ones are refused (IVR_MAX_CALLS)")
    p.add_argument("--public-ip", help="address(es) offered as WebRTC ICE candidates, comma-separated (IVR_PUBLIC_IP)")
    p.add_argument("--fetch-model", action="store_true",
                   help="first start: download the default speech model when none is installed (./run serve)")
    p.add_argument("--demo", action="store_true",
                   help="seed the demo shop when the shop database has no orders (./run serve; IVR_DEMO_DATA)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ivr.call.recorder import purge_recordings
    from ivr.cli import UserError
    from ivr.cluster.drain import serve
    from ivr.config import load_settings, secret_key_problem
    from ivr.web.app import create_app

    settings = load_settings({"host": args.host, "port": args.port, "sip_port": args.sip_port,
                              "max_calls": args.max_calls, "public_ip": args.public_ip,
                              "demo_data": True if args.demo else None})
    weak = secret_key_problem(settings.secret_key)  # it signs logins and record tokens: no published value
    if weak:
        raise UserError(weak)
    if args.fetch_model:
        _fetch_model(settings)
    _load_overrides(settings)
    removed = purge_recordings(settings.data_dir / "recordings", settings.retention_days)
    if removed:
        logging.getLogger("ivr.serve").info("removed %d recordings older than %d days", removed, settings.retention_days)
    if settings.sip_port:
        _check_sip_port(settings.sip_host or settings.host, settings.sip_port)
    app = create_app(settings)
    try:
        # proxy_headers off: X-Forwarded-* are believed only from `trusted_proxies` (ivr.web.security);
        # uvicorn.run, except that a cluster node's SIGTERM drains first (ivr.cluster.drain)
        serve(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
              timeout_graceful_shutdown=30, proxy_headers=False, server_header=False)
    except OSError as e:
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}") from None
    return 0


def _load_overrides(settings) -> None:
    """Check <data_dir>/custom/ (one clear line per problem) and reload it on SIGHUP (ivr.lang.custom)."""
    import logging
    import signal
    import threading

    from ivr.cli import UserError
    from ivr.dialog.kb import check_files
    from ivr.lang import get_pack
    from ivr.lang.custom import check, kb_files, set_custom_dir

    folder = settings.data_dir / "custom"
    set_custom_dir(folder)
    pack = get_pack(settings.language)
    problems = check(pack, folder) + check_files(kb_files())
    if problems:
        raise UserError(f"{len(problems)} problem(s) in the override folder {folder}:\n  " + "\n  ".join(problems))

    def reload() -> None:
        from ivr.dialog.nlu import _shared_nlu, get_nlu

        bad = check(pack, folder) + check_files(kb_files())
        if bad:
            logging.getLogger("ivr.serve").error("SIGHUP: overrides not reloaded: %s", "; ".join(bad))
            return
        set_custom_dir(folder)
        pack.reload()
        _shared_nlu.cache_clear()
        get_nlu(settings.language)  # retrain with the new phrasings now, not on the next caller
        logging.getLogger("ivr.serve").warning("SIGHUP: overrides in %s reloaded", folder)

    signal.signal(signal.SIGHUP, lambda _s, _f: threading.Thread(target=reload, daemon=True).start())


def _fetch_model(settings) -> None:
    """Download the default model for the language when none is installed (progress bar on stderr)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from ivr.asr.download import ensure_default_model

    err = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=err)

    def factory(description: str, total: int | None):
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    with progress:
        ensure_default_model(settings, factory, lambda m: err.print(f"ivr serve: {m}", highlight=False,
                                                                    soft_wrap=True))


def _check_sip_port(host: str, port: int) -> None:
    """Fail with one clear line before start-up when the SIP UDP port is taken (TCP is optional)."""
    import socket

    from ivr.cli import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen for SIP on {host}:{port}: {e.strerror or e} "
                            "(choose another --sip-port, or --sip-port 0 to disable SIP)") from None
