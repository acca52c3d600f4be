"""Operations: /health (the process runs), /ready (models loaded), /metrics (Prometheus), model reload."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from myna.server.errors import public_message

router = APIRouter()


@router.get("/health")
async def health() -> dict:
    """Liveness: the server answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: loaded models are live and the server is not shutting down (a reload in progress keeps it ready)."""
    service = request.app.state.service
    pool = service.pool
    ok = pool.ready and not service.stopping
    body = {"status": "ready" if ok else "not ready", "workers": pool.size,
            "queue_depth": pool.depth, "busy": pool.busy, "generation": pool.generation,
            "reloading": pool.reloading, "last_reload_error": service.reload_error and public_message(service.reload_error, service.private_roots)}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this server's metrics."""
    registry = request.app.state.service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload")
async def reload_models(request: Request) -> dict:
    """Load the models again from the configured paths; they serve once all are loaded (5xx: the old ones still do)."""
    service = request.app.state.service
    await asyncio.to_thread(service.reload)
    return {"status": "reloaded", "generation": service.pool.generation}
