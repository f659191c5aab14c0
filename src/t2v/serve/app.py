"""The HTTP side of ``t2v serve``: a FastAPI app with the JSON API, the Gradio page mounted at ``/``.

    GET  /models           the models this server runs and what each takes
    POST /generate         {"prompt": ..., "model": ..., "seed": ...} -> JSON with /files/ URLs of mp4 + sheet
    GET  /files/<id>.mp4   a generated file (only names the server made; gone after --keep-minutes)

Every error is ``{"error": "<one line>"}``: 400 bad request, 404 no such file, 413 body too
large, 503 "busy, retry later" (queue full), 504 past the time limit.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from t2v.errors import T2VError
from t2v.serve.jobs import Busy
from t2v.serve.requests import MAX_BODY_BYTES, parse_request
from t2v.serve.service import ServeConfig, Service
from t2v.serve.ui import CSS, build_ui

MEDIA_TYPES = {".mp4": "video/mp4", ".png": "image/png"}
RETRY_AFTER_S = 2


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413) before any route reads them."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = error(413, f"the request body is larger than {self.max_bytes // 1024} kB")
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        body, more = b"", True
        while more:  # chunked bodies have no length: count as they arrive
            message = await receive()
            if message["type"] != "http.request":
                return
            body, more = body + message.get("body", b""), message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def add_api(app: FastAPI, service: Service) -> None:
    """The JSON routes and the one-line error answers."""

    @app.exception_handler(T2VError)
    async def user_error(request: Request, e: T2VError) -> JSONResponse:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(e, Busy) else None
        return error(getattr(e, "status", 400), " ".join(str(e).split()), headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return error(e.status_code, str(e.detail), e.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception) -> JSONResponse:
        # Starlette re-raises it after this answer, so the server's log gets the traceback
        return error(500, f"internal error: {type(e).__name__}; the server keeps running, see its log")

    @app.get("/models")
    def models() -> dict:
        return {"default": service.default_model, "models": [asdict(i) for i in service.model_infos()]}

    @app.post("/generate")
    async def generate(request: Request) -> dict:
        parsed = parse_request(await request.body())
        result = await run_in_threadpool(service.generate, parsed)
        return result.to_json()

    @app.get("/files/{name}")
    def files(name: str) -> FileResponse:
        path = service.store.find(name)
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], filename=path.name)


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The whole server: JSON API, page at ``/``, one ``Service`` shared by both (closed on shutdown)."""
    config = config or ServeConfig()
    service = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="t2v", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    add_api(app, service)
    keep_s = int(config.keep_minutes * 60)
    blocks = build_ui(service, delete_cache=(max(1, min(60, keep_s // 4)), max(1, keep_s)))
    return gr.mount_gradio_app(app, blocks, path="/", footer_links=[], ssr_mode=False, show_error=True,
                               allowed_paths=[str(service.store.root)], max_file_size=MAX_BODY_BYTES,
                               mcp_server=False, css=CSS)


def run(config: ServeConfig, echo=print) -> None:
    """Serve until Ctrl+C."""
    import uvicorn

    app = create_app(config)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"warning: listening on {config.host}: other machines can reach this server")
    echo(f"t2v serving {', '.join(app.state.service.models)} at http://{config.host}:{config.port} "
         f"(page; JSON API: GET /models, POST /generate); Ctrl+C stops")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
