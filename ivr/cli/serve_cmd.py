"""`ivr serve`: the hotline service (HTTP, WebRTC, SIP)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the hotline service (web phone, WebRTC, SIP, agent desktop, dashboard)")
    p.add_argument("--host", help="bind address (IVR_HOST)")
    p.add_argument("--port", type=int, help="HTTP port (IVR_PORT)")
    p.add_argument("--sip-port", type=int, help="SIP port, 0 disables (IVR_SIP_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ivr.config import load_settings
    from ivr.web.app import create_app

    settings = load_settings({"host": args.host, "port": args.port, "sip_port": args.sip_port})
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())
    return 0
