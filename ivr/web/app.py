"""FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from ivr import __version__
from ivr.config import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="ivr", version=__version__)
    app.state.settings = settings

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
