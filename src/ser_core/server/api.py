"""The HTTP API (`ser serve`, or any ASGI server: `uvicorn ser_core.server:app`).

    POST   /v1/analyses              multipart upload (part "file"; fields profile, transcript,
                                     language, speakers) -> 202 {"id", "status"}
    GET    /v1/analyses              the analyses kept, newest first
    GET    /v1/analyses/{id}         status, progress and, when done, the result
    GET    /v1/analyses/{id}.{fmt}   the result as json, csv, srt, vtt, html, table, ...
    GET    /v1/analyses/{id}/events  progress as Server-Sent Events
    DELETE /v1/analyses/{id}         forget it (204)
    GET    /v1/health, /v1/profiles

Results are the library's pydantic models, so `/openapi.json` documents them. The interactive
docs pages are left out: they load their scripts from a CDN, and the server must work offline.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ser_core import __version__
from ser_core.contract.results import AnalysisResult
from ser_core.errors import AudioError, SerError
from ser_core.pipeline.exports import COLOURS
from ser_core.server.jobs import Full, Jobs
from ser_core.server.store import ID, Record, Store
from ser_core.server.uploads import BadUpload, TooLarge, receive, suffix_of
from ser_core.settings import Settings, get_settings

MEDIA = {".json": "application/json", ".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8"}
RETRY_AFTER_SECONDS = 30
STATIC = Path(__file__).parent / "static"
EVENT_POLL_SECONDS = 0.25


class Accepted(BaseModel):
    id: str
    status: str


class Analysis(BaseModel):
    """An analysis: its state and, once done, its result (the same model `ser_core.analyze` returns)."""

    id: str
    name: str
    status: str
    created: float
    finished: float | None = None
    options: dict[str, Any]
    error: str | None = None
    pieces_done: int = 0
    pieces_total: int | None = None
    result: AnalysisResult | None = None
    envelope: list[float] | None = Field(default=None, description="loudness 0..1 for pictures, when done")
    envelope_rate: float | None = None


def create_app(
    settings: Settings | None = None,
    *,
    token: str | None = None,
    jobs: int = 1,
    profile: str | None = None,
    allow_paths: Path | None = None,
    cors_origins: list[str] | None = None,
) -> FastAPI:
    """The API over a store in `settings.serve_dir`; `token`: every request must carry
    `Authorization: Bearer TOKEN`; `profile`: the default profile of requests that name none;
    `allow_paths`: a folder whose files a JSON request may name instead of uploading them;
    `cors_origins`: web origins whose pages may call the API (none: no CORS headers at all)."""
    settings = settings or get_settings()
    store = Store(settings.serve_dir)
    store.recover(settings.serve_retention_hours * 3600)
    pool = Jobs(store, jobs, settings.serve_queue)
    limit = int(settings.serve_max_upload_mb * 1024 * 1024)

    def authorised(request: Request) -> None:
        if token is not None and request.headers.get("authorization") != f"Bearer {token}":
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="ser_core", version=__version__, docs_url=None, redoc_url=None)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization"]
        )
    app.state.store, app.state.jobs = store, pool
    app.router.on_shutdown.append(pool.close)
    page = (STATIC / "index.html").read_text().replace("{{COLOURS}}", json.dumps(COLOURS))

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        """The page: static, holds no data (every analysis comes through the API and its token)."""
        return HTMLResponse(page)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    api = APIRouter(dependencies=[Depends(authorised)])

    @api.get("/v1/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "workers": pool.jobs,
            "capacity": pool.capacity,
            "in_work": pool.waiting,
        }

    @api.get("/v1/profiles")
    def profiles() -> list[dict[str, Any]]:
        from ser_core.plugins import registries
        from ser_core.plugins.lookup import all_profiles

        installed = registries.backends()
        return [
            {
                "name": p.name,
                "description": p.description,
                "installed": p.backend_id in installed,
                "restricted": p.restricted,
                "default": p.name == (profile or settings.default_profile),
            }
            for p in all_profiles().values()
        ]

    @api.post("/v1/analyses", status_code=202, response_model=Accepted)
    async def create(request: Request) -> Any:
        if request.headers.get("content-type", "").startswith("application/json"):
            return await _from_path(request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise HTTPException(413, f"upload larger than {settings.serve_max_upload_mb:g} MB")
        take_place()
        analysis_id = store.new_id()
        submitted = False
        try:
            target: dict[str, Path] = {}

            def open_target(name: str):
                target["path"] = store.upload_path(analysis_id, suffix_of(name))
                return target["path"].open("wb")

            try:
                upload = await receive(
                    request.stream(), request.headers.get("content-type", ""), open_target, limit
                )
            except TooLarge:
                raise HTTPException(413, f"upload larger than {settings.serve_max_upload_mb:g} MB") from None
            except BadUpload as exc:
                raise HTTPException(400, str(exc)) from None
            options = _options(upload.fields, profile or settings.default_profile)
            _probe(target["path"], upload.name)
            record = Record(id=analysis_id, name=upload.name, options=options)
            pool.submit(record, target["path"])
            submitted = True
            return {"id": analysis_id, "status": "queued"}
        finally:
            if not submitted:
                store.delete(analysis_id)
                pool.release()

    def take_place() -> None:
        """A place in the pool for one more analysis, or 429; old results go as new work comes in."""
        try:
            pool.reserve()
        except Full:
            raise HTTPException(
                429,
                "every worker is busy and the queue is full; try again later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        store.sweep(settings.serve_retention_hours * 3600)

    async def _from_path(request: Request) -> Any:
        """{"path": ..., options}: a file already on the server, only under `allow_paths`."""
        if allow_paths is None:
            raise HTTPException(
                403, "this server takes uploads only (start it with --allow-paths DIR for paths)"
            )
        try:
            body = json.loads(await request.body())
            given = Path(str(body.pop("path")))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HTTPException(400, 'send {"path": "...", ...options}') from None
        root = allow_paths.resolve()
        path = (root / given).resolve()
        if not path.is_relative_to(root):
            raise HTTPException(403, f"{given}: outside the allowed folder")
        name = str(path.relative_to(root))
        options = _options(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in body.items()},
            profile or settings.default_profile,
        )
        _probe(path, name)
        take_place()
        record = Record(id=store.new_id(), name=name, options=options)
        store.folder(record.id).mkdir(parents=True, exist_ok=True)
        pool.submit(record, path)
        return {"id": record.id, "status": "queued"}

    @api.get("/v1/analyses", response_model=list[Analysis], response_model_exclude_none=True)
    def listing() -> Any:
        return [Analysis(**vars(record)) for record in store.records()]

    @api.get(
        "/v1/analyses/{ref}",
        responses={200: {"model": Analysis, "description": "the analysis; `ID.FORMAT` gives the result as text"}},
    )
    def read(ref: str) -> Response:
        analysis_id, _, fmt = ref.partition(".")
        record = _record(store, analysis_id)
        if not fmt:
            body = Analysis(**vars(record))
            if record.status == "done":
                body.result = AnalysisResult.model_validate_json(store.result_text(analysis_id))
                found = store.envelope(analysis_id)
                body.envelope, body.envelope_rate = found.get("envelope"), found.get("envelope_rate")
            data = body.model_dump(mode="json")  # None inside the result is part of it (a label of no speech)
            return JSONResponse({k: v for k, v in data.items() if v is not None})
        return _rendered(store, record, fmt)

    @api.get("/v1/analyses/{analysis_id}/events")
    async def events(analysis_id: str) -> StreamingResponse:
        """Server-Sent Events: `progress` whenever the status or the pieces done change, then one
        `done` or `failed` (or `deleted`) and the end of the stream."""
        _record(store, analysis_id)

        async def stream():
            last = None
            while True:
                try:
                    record = store.get(analysis_id)
                except KeyError:
                    yield "event: deleted\ndata: {}\n\n"
                    return
                state = {k: getattr(record, k) for k in ("status", "pieces_done", "pieces_total", "error")}
                if state != last:
                    last = state
                    yield f"event: progress\ndata: {json.dumps(state)}\n\n"
                if record.status in ("done", "failed"):
                    yield f"event: {record.status}\ndata: {json.dumps(state)}\n\n"
                    return
                await asyncio.sleep(EVENT_POLL_SECONDS)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @api.delete("/v1/analyses/{analysis_id}", status_code=204)
    def delete(analysis_id: str) -> Response:
        record = _record(store, analysis_id)
        if record.status in ("queued", "running"):
            raise HTTPException(409, "the analysis is still in work; delete it once it is done")
        store.delete(analysis_id)
        return Response(status_code=204)

    app.include_router(api)
    return app


def _record(store: Store, analysis_id: str) -> Record:
    if not ID.match(analysis_id):
        raise HTTPException(404, "no such analysis")
    try:
        return store.get(analysis_id)
    except KeyError:
        raise HTTPException(404, "no such analysis") from None


def _rendered(store: Store, record: Record, fmt: str) -> Response:
    from ser_core.errors import OutputError
    from ser_core.pipeline.exports import exporter

    try:
        found = exporter(fmt)
    except OutputError as exc:
        raise HTTPException(404, str(exc)) from None
    if record.status != "done":
        raise HTTPException(
            409, f"the analysis is {record.status}" + (f": {record.error}" if record.error else "")
        )
    result = AnalysisResult.model_validate_json(store.result_text(record.id))
    text = found.render([result], [])
    return PlainTextResponse(text, media_type=MEDIA.get(found.extension, "text/plain; charset=utf-8"))


def _options(fields: dict[str, str], default_profile: str) -> dict[str, Any]:
    """The analysis options of a request, checked (422 with the reason)."""
    from ser_core.pipeline.speakers import parse_speakers
    from ser_core.plugins.lookup import all_profiles

    unknown = set(fields) - {"profile", "transcript", "language", "speakers"}
    if unknown:
        raise HTTPException(422, f"unknown option(s): {', '.join(sorted(unknown))}")
    chosen = fields.get("profile") or default_profile
    if chosen not in all_profiles():
        raise HTTPException(422, f"unknown profile {chosen!r}; choose one of: {', '.join(all_profiles())}")
    options: dict[str, Any] = {"profile": chosen}
    if "transcript" in fields:
        value = fields["transcript"].lower()
        if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise HTTPException(422, "transcript must be true or false")
        options["transcript"] = value in ("true", "1", "yes", "on")
    if fields.get("language"):
        options["language"] = fields["language"]
    if fields.get("speakers"):
        try:
            parse_speakers(fields["speakers"])
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        options["speakers"] = fields["speakers"]
    return options


def _probe(path: Path, name: str) -> None:
    """Decode the first seconds now, so a file that is not audio is refused at once (422)."""
    from ser_core.pipeline.audio import stream_audio

    try:
        next(iter(stream_audio(path)), None)
    except AudioError as exc:
        raise HTTPException(422, f"{name}: {exc.cause}") from None
    except SerError as exc:
        raise HTTPException(422, f"{name}: {exc}".replace(str(path), name)) from None
