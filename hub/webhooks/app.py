"""The HTTP face of the webhook receiver: FastAPI routes over :class:`WebhookService`.

``POST /webhooks/{connector}`` (events), ``GET /webhooks/{connector}`` (vendors' URL
verification), ``GET /healthz``. The routes only read the raw body (bounded), hand it to the
receiver in a worker thread (verification and the inbox commit are blocking), and answer; the
sync runs happen in the service's background worker, after the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.webhooks.service import WebhookService
from hub.webhooks.verifier import Reply, WebhookRequest

#: larger bodies are refused (413) before anything reads them whole; vendors send kilobytes
MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _webhook_request(request: Request, body: bytes) -> WebhookRequest:
    """The request as verifiers see it: a repeated header or query parameter counts once, the first."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), value)
    query: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        query.setdefault(name, value)
    return WebhookRequest(
        method=request.method,
        headers=headers,
        query=query,
        body=body,
        received_at=datetime.now(UTC),
        remote=request.client.host if request.client else "",
    )


def _response(reply: Reply) -> Response:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type)


def create_app(service: WebhookService, *, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the service's worker."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(title="hub webhooks", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/{connector}")
    async def receive(connector: str, request: Request) -> Response:
        try:
            body = await _read_body(request, max_body)
        except BodyTooLarge:
            return JSONResponse({"error": "body too large"}, status_code=413)
        reply = await run_in_threadpool(service.receiver.receive, connector, _webhook_request(request, body))
        return _response(reply)

    @app.get("/webhooks/{connector}")
    async def handshake(connector: str, request: Request) -> Response:
        reply = await run_in_threadpool(service.receiver.handshake, connector, _webhook_request(request, b""))
        return _response(reply)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse(await run_in_threadpool(service.health))

    return app
