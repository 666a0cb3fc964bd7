"""``create_app(config, ...)``: the FastAPI app of ``claimflow serve``, the HTTP API under ``/v1`` and
the browser UI around it.

The app loads the pipeline once (:class:`~claimflow.serve.runner.Runner`) and answers:

- ``POST /v1/verify``, ``POST /v1/verify:batch``, ``POST /v1/verify:stream`` (server-sent events, one
  per finished node), ``GET /v1/health``, ``/v1/config``, ``/v1/graph``;
- ``GET /v1/runs``, ``/v1/runs/{id}``, ``/v1/runs/{id}/report`` and ``POST /v1/runs/{id}/replay``
  over the runs database (``claimflow runs / trace / replay / report``);
- ``GET /v1/ab`` and ``/v1/ab/report`` over the A/B evaluation store (``claimflow eval``);
- the pages (:mod:`claimflow.serve.ui`) and ``/docs``, the API reference read from the OpenAPI schema.

Errors are one JSON body, ``{"error": class, "message": ...}``: what the request got wrong is 4xx
(422 input, 400 config, 413 too large, 404 no such run), the server's own failures 5xx (503 busy or
a backend unreachable, 504 a backend timeout, 500 the rest).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException as StarletteHTTPException

from claimflow._version import __version__
from claimflow.config import PipelineConfig
from claimflow.debug import render
from claimflow.debug.history import load_run, report_for_stored
from claimflow.debug.text import format_update
from claimflow.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    ClaimflowError,
    ConfigError,
    InputError,
    TemplateError,
)
from claimflow.evals.store import RunStore
from claimflow.graphs.trace_store import RunInfo, TraceStore
from claimflow.llm.base import Backend
from claimflow.serve.guard import Guard
from claimflow.serve.runner import NotFoundError, RequestTooLargeError, Runner, ServerBusyError
from claimflow.serve.schemas import (
    ABRunSummary,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    Health,
    NodeEvent,
    ReplayRequest,
    ReplayResponse,
    RunDetail,
    RunSummary,
    StartEvent,
    VerifyRequest,
)
from claimflow.types import VerificationResult
from claimflow.verifier import NodeUpdate

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
"""A comment line is sent on a quiet event stream this often, so proxies keep it open."""
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,}")


@dataclass(frozen=True)
class ServeLimits:
    """The server's bounds on one request and on the work in flight."""

    max_body_bytes: int = 2_000_000
    max_evidence: int = 500
    """Evidence sentences per claim (the config's ``limits.max_evidence`` applies too)."""
    max_batch: int = 64
    """Claims per ``/v1/verify:batch`` request."""
    concurrency: int = 1
    """Verifications that run at once; each slot loads its own models."""
    queue: int = 8
    """Requests that may wait for a slot; beyond them the server answers 503."""


def http_status(exc: BaseException) -> int:
    """The HTTP status a claimflow error is answered with."""
    if isinstance(exc, ServerBusyError | BackendUnavailableError):
        return 503
    if isinstance(exc, BackendTimeoutError):
        return 504
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, ConfigError | TemplateError):
        return 400
    return 500


def error_body(exc: BaseException) -> dict[str, str]:
    return {"error": type(exc).__name__, "message": str(exc) or type(exc).__name__}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses an endpoint documents (every one answers an :class:`ErrorBody`)."""
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in codes}


ERROR_MEANINGS = {
    400: "the request's stages or gate make no valid pipeline",
    404: "no such run",
    413: "over a size limit (body bytes, evidence sentences, batch items)",
    422: "the claim, evidence or edits cannot be used as given, or a malformed body",
    500: "a model or backend failed",
    503: "every slot is busy and the queue is full (retry after a few seconds), or a backend is down",
    504: "a backend did not answer in time",
}
VERIFY_ERRORS = _errors(400, 413, 422, 500, 503, 504)
RUN_ERRORS = _errors(404, 422)
REPLAY_ERRORS = _errors(404, 422, 500, 503, 504)
AB_ERRORS = _errors(404, 422)


class Service:
    """What the routes share: the runner, the stores, the limits and the graph drawing."""

    def __init__(
        self,
        runner: Runner,
        *,
        trace_store: TraceStore | None,
        owns_trace_store: bool,
        evals_store: Path | None,
        limits: ServeLimits,
    ) -> None:
        self.runner = runner
        self.trace_store = trace_store
        self.owns_trace_store = owns_trace_store
        self.evals_store = evals_store
        self.limits = limits
        self.report_lock = threading.Lock()  # A/B reports draw with matplotlib's pyplot (not thread-safe)

    @property
    def config(self) -> PipelineConfig:
        return self.runner.config

    def drawable(self) -> Any:
        return self.runner.first.graph.get_graph()

    def check_size(self, request: VerifyRequest, where: str = "") -> None:
        n = len(request.evidence)
        if n > self.limits.max_evidence:
            raise RequestTooLargeError(
                f"{where}{n} evidence sentences, more than this server's limit of {self.limits.max_evidence}: "
                "keep the most relevant ones, or start the server with a larger --max-evidence"
            )

    def health(self) -> Health:
        return Health(
            version=__version__,
            stages=list(self.config.stages),
            gate=self.config.check_worthiness.gate,
            recording=self.runner.recording,
            runs_db=str(self.trace_store.path) if self.trace_store is not None else None,
            evals_store=str(self.evals_store) if self.evals_store is not None else None,
            concurrency=self.runner.concurrency,
            queue=self.runner.queue,
            in_flight=self.runner.in_flight,
        )

    # --- recorded runs -----------------------------------------------------------------------

    def runs(self, limit: int) -> list[RunSummary]:
        if self.trace_store is None:
            return []
        return [run_summary(info) for info in self.trace_store.runs(limit)]

    def run_detail(self, run_id: str) -> RunDetail:
        info = self.runner.stored(run_id)
        stored = self._load(info.run_id)
        return RunDetail(
            run=run_summary(info),
            result=info.result,
            config_yaml=info.config_yaml,
            trace=list(stored.state.get("trace", [])),
        )

    def run_report(self, run_id: str) -> str:
        info = self.runner.stored(run_id)
        return report_for_stored(self._load(info.run_id))

    def _load(self, run_id: str) -> Any:
        assert self.trace_store is not None  # stored() found the run in it
        return load_run(self.trace_store, run_id)

    # --- A/B runs ----------------------------------------------------------------------------

    @contextmanager
    def _ab_store(self) -> Iterator[RunStore | None]:
        """The A/B store, opened for one request (None when its file does not exist)."""
        if self.evals_store is None or not self.evals_store.is_file():
            yield None
            return
        store = RunStore(self.evals_store)
        try:
            yield store
        finally:
            store.close()

    def ab_runs(self) -> list[ABRunSummary]:
        from claimflow.evals.ab import ABSpec

        with self._ab_store() as store:
            if store is None:
                return []
            out = []
            for run_id, created in store.runs():
                spec = ABSpec.model_validate(store.spec(run_id))
                out.append(
                    ABRunSummary(
                        run_id=run_id,
                        created=created,
                        stage=spec.stage,
                        dataset=spec.dataset.model_dump(mode="json"),
                        variants=[v.name for v in spec.variants],
                        baseline=spec.baseline_name,
                        metric=spec.main_metric,
                        predictions={v.name: len(store.done(run_id, v.name)) for v in spec.variants},
                    )
                )
            return sorted(out, key=lambda r: r.created, reverse=True)

    def ab_report(self, run_ids: Sequence[str], fmt: Literal["html", "markdown"]) -> str:
        from claimflow.evals.report import build_report, to_html, to_markdown

        if not run_ids:
            raise InputError("name at least one A/B run: ?run=NAME (GET /v1/ab lists them)")
        with self._ab_store() as store:
            if store is None:
                raise NotFoundError(f"no A/B store at {self.evals_store}: run `claimflow eval run SPEC` first")
            known = {r for r, _ in store.runs()}
            missing = [r for r in run_ids if r not in known]
            if missing:
                raise NotFoundError(f"no A/B run {missing[0]!r} in {self.evals_store}; runs: {sorted(known) or 'none'}")
            with self.report_lock:
                report = build_report(store, list(run_ids))
                return to_html(report) if fmt == "html" else to_markdown(report)

    def close(self) -> None:
        self.runner.close()
        if self.owns_trace_store and self.trace_store is not None:
            self.trace_store.close()


def run_summary(info: RunInfo) -> RunSummary:
    result = info.result
    verdict = result.veracity if result is not None else None
    return RunSummary(
        run_id=info.run_id,
        created=info.created,
        finished=info.finished,
        status=info.status,
        claim=info.claim,
        parent_run=info.parent_run,
        from_node=info.from_node,
        changes=list(info.changes),
        result_status=result.status if result is not None else None,
        verdict=verdict.label if verdict is not None else None,
        confidence=verdict.confidence if verdict is not None else None,
        error=info.error,
    )


def node_event(update: NodeUpdate) -> dict[str, Any]:
    written = {k: v for k, v in update.update.items() if k != "trace"}
    event = NodeEvent(
        node=update.node,
        seconds=update.seconds,
        run_id=update.run_id,
        summary=format_update(update.node, update.update),
        update=to_jsonable_python(written),
    )
    return event.model_dump(mode="json")


def _sse(kind: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


STREAM_DESCRIPTION = """Like `POST /v1/verify`, answered as server-sent events (`text/event-stream`) as the graph runs:

- `event: start`, data `StartEvent`: the run's id (when runs are recorded) and its stages;
- `event: node`, data `NodeEvent`: one per finished node (its name, seconds, a one-line summary and what it wrote);
- `event: result`, data `VerificationResult`: the result, last;
- `event: error`, data `ErrorBody` plus `status`: the run failed after the stream began.

Input errors found before the run starts are answered as plain JSON errors (4xx), like `/v1/verify`.
A comment line (`: keep-alive`) is sent every 15 s while a node runs."""


EVENT_MODELS: dict[str, type[BaseModel]] = {"StartEvent": StartEvent, "NodeEvent": NodeEvent}
"""The stream's event bodies that no JSON endpoint answers: added to the schema's components."""
EVENT_SCHEMA = {
    "description": "each event's data, by its name: start, node (one per node), result, error",
    "oneOf": [
        {"$ref": f"#/components/schemas/{name}"}
        for name in ("StartEvent", "NodeEvent", "VerificationResult", "ErrorBody")
    ],
}


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": EVENT_SCHEMA}}, "description": "the events"},
    **VERIFY_ERRORS,
}


def _with_event_models(app: FastAPI) -> None:
    """``app.openapi()`` also documents the stream's event models."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in EVENT_MODELS.items():
                components.setdefault(name, model.model_json_schema(ref_template="#/components/schemas/{model}"))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def api_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1")
    runner = service.runner

    @router.get("/health", tags=["server"], summary="Is the server up, and what does it serve?")
    def health() -> Health:
        return service.health()

    @router.get("/config", tags=["server"], summary="The served pipeline config (as `claimflow config` prints it)")
    def config() -> dict[str, Any]:
        data: dict[str, Any] = service.config.model_dump(mode="json")
        return data

    @router.get(
        "/graph",
        tags=["server"],
        summary="The compiled graph: SVG, Mermaid or Graphviz DOT",
        response_class=PlainTextResponse,
    )
    def graph(fmt: Annotated[Literal["svg", "mermaid", "dot"], Query(alias="format")] = "svg") -> Response:
        drawable = service.drawable()
        if fmt == "svg":
            return Response(render.to_svg(render.layout(drawable)), media_type="image/svg+xml")
        text = drawable.draw_mermaid() if fmt == "mermaid" else render.to_dot(drawable)
        return PlainTextResponse(text)

    @router.post(
        "/verify",
        tags=["verify"],
        responses=VERIFY_ERRORS,
        summary="Verify one claim against its evidence",
        description="Runs the pipeline (check-worthiness, evidence stance, justifications, veracity) and answers "
        "the `VerificationResult`. With runs recorded, its `run_id` opens the run's trace (`/v1/runs/{run_id}`).",
    )
    def verify(body: VerifyRequest) -> VerificationResult:
        service.check_size(body)
        return runner.run(body.claim, body.evidence, force=body.force, stages=body.stages, gate=body.gate).result

    @router.post(
        "/verify:batch",
        tags=["verify"],
        responses=VERIFY_ERRORS,
        summary="Verify several claims",
        description="Every item is checked first (an invalid one fails the request, naming it, and nothing runs); "
        "then the items run in order on one model slot.",
    )
    def verify_batch(body: BatchRequest) -> BatchResponse:
        if len(body.items) > service.limits.max_batch:
            raise RequestTooLargeError(
                f"{len(body.items)} items, more than this server's limit of {service.limits.max_batch} a request: "
                "split the batch (or use `claimflow batch` for files)"
            )
        for i, item in enumerate(body.items):
            service.check_size(item, f"items[{i}]: ")
        return BatchResponse(results=runner.verify_many([item.model_dump() for item in body.items]))

    @router.post(
        "/verify:stream",
        tags=["verify"],
        summary="Verify one claim, streaming each node as it finishes (server-sent events)",
        description=STREAM_DESCRIPTION,
        response_class=StreamingResponse,
        responses=STREAM_RESPONSES,
    )
    async def verify_stream(body: VerifyRequest) -> StreamingResponse:
        service.check_size(body)
        ticket = runner.admit()
        try:
            runner.check(body.claim, body.evidence, force=body.force, stages=body.stages, gate=body.gate)
        except BaseException:
            ticket.release()
            raise
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

        def put(item: tuple[str, dict[str, Any]] | None) -> None:
            with suppress(RuntimeError):  # the loop is gone (server shutting down): nobody is listening
                loop.call_soon_threadsafe(events.put_nowait, item)

        def work() -> None:
            try:
                run = runner.run(
                    body.claim,
                    body.evidence,
                    force=body.force,
                    stages=body.stages,
                    gate=body.gate,
                    ticket=ticket,
                    on_start=lambda run_id, stages: put(
                        ("start", StartEvent(run_id=run_id, stages=stages).model_dump(mode="json"))
                    ),
                    on_update=lambda update: put(("node", node_event(update))),
                )
                put(("result", run.result.model_dump(mode="json")))
            except Exception as exc:
                if http_status(exc) >= 500:
                    log.exception("streamed verification failed")
                put(("error", {**error_body(exc), "status": http_status(exc)}))
            finally:
                ticket.release()
                put(None)

        threading.Thread(target=work, name="claimflow-stream", daemon=True).start()

        async def stream() -> AsyncIterator[bytes]:
            while True:
                try:
                    item = await asyncio.wait_for(events.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return
                yield _sse(*item)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @router.get("/runs", tags=["runs"], summary="Recorded runs, newest first")
    def runs(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[RunSummary]:
        return service.runs(limit)

    @router.get(
        "/runs/{run_id}",
        tags=["runs"],
        summary="A recorded run: result, config and per-node trace",
        responses=RUN_ERRORS,
    )
    def run(run_id: str) -> RunDetail:
        return service.run_detail(run_id)

    @router.get(
        "/runs/{run_id}/report",
        tags=["runs"],
        summary="A recorded run as its self-contained HTML report (`claimflow report`)",
        response_class=HTMLResponse,
        responses=RUN_ERRORS,
    )
    def run_report(run_id: str) -> HTMLResponse:
        return HTMLResponse(service.run_report(run_id))

    @router.post(
        "/runs/{run_id}/replay",
        tags=["runs"],
        summary="Fork a recorded run just before a node, with edits or other prompts (`claimflow replay`)",
        responses=REPLAY_ERRORS,
    )
    def replay(run_id: str, body: ReplayRequest) -> ReplayResponse:
        outcome = runner.replay(run_id, from_node=body.from_node, edits=body.edits, prompts=body.prompts)
        return ReplayResponse(
            run_id=outcome.run_id,
            parent_run=outcome.parent.run_id,
            from_node=outcome.from_node,
            changes=list(outcome.changes),
            diff=list(outcome.diff),
            result=outcome.after,
        )

    @router.get("/ab", tags=["A/B runs"], summary="The A/B runs of the evaluation store (`claimflow eval runs`)")
    def ab_runs() -> list[ABRunSummary]:
        return service.ab_runs()

    @router.get(
        "/ab/report",
        tags=["A/B runs"],
        summary="The report of one or more A/B runs (`claimflow eval report`)",
        description="Metrics with bootstrap CIs, paired tests against the baseline with p-values, confusion "
        "matrices, calibration plots and disagreements; `format=html` is the self-contained page.",
        response_class=HTMLResponse,
        responses=AB_ERRORS,
    )
    def ab_report(
        run: Annotated[list[str], Query(description="A/B run name(s) in the store")],
        fmt: Annotated[Literal["html", "markdown"], Query(alias="format")] = "html",
    ) -> Response:
        text = service.ab_report(run, fmt)
        return HTMLResponse(text) if fmt == "html" else PlainTextResponse(text, media_type="text/markdown")

    return router


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith(("/v1/", "/openapi.json", "/static/")))


def _install_error_handlers(app: FastAPI, pages: Any) -> None:
    def answer(request: Request, status: int, body: dict[str, str]) -> Response:
        headers = {"Retry-After": "5"} if status == 503 else None
        if _wants_html(request):
            return pages.error_page(request, status, body, headers)
        return JSONResponse(body, status_code=status, headers=headers)

    async def claimflow_error(request: Request, exc: Exception) -> Response:
        status = http_status(exc)
        if status >= 500:
            log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return answer(request, status, error_body(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return answer(request, 422, {"error": "RequestValidationError", "message": problems})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        return answer(
            request, exc.status_code, {"error": names.get(exc.status_code, "HTTPError"), "message": str(exc.detail)}
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, error_body(exc))

    app.add_exception_handler(ClaimflowError, claimflow_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def create_app(
    config: PipelineConfig | str | Path | None = None,
    *,
    backends: Mapping[str, Backend] | None = None,
    runs_db: TraceStore | str | Path | None = None,
    record: bool = True,
    evals_store: str | Path | None = None,
    token: str | None = None,
    limits: ServeLimits | None = None,
    preload: bool = True,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The app, with the pipeline built and (``preload``) its models loaded.

    ``config``: a :class:`PipelineConfig` or a YAML file (default: the shipped pipeline).
    ``backends`` injects ready backends by key (e.g. fakes in tests). ``runs_db``: the runs database
    (a path or an open :class:`TraceStore`) the run pages read and, with ``record``, every
    verification is recorded into; None: no runs. ``evals_store``: the A/B store ``claimflow eval``
    writes (read only when it exists). ``token``: every request then needs it (bearer header, or the
    cookie a ``?token=`` URL sets). ``allowed_hosts``: the ``Host`` headers accepted (a loopback
    server accepts only loopback names, so another site cannot reach it through DNS rebinding).
    """
    from claimflow.serve import ui

    limits = limits or ServeLimits()
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        raise InputError("the token must be 8 or more letters, digits or '._~-' (e.g. `python -m secrets`)")
    if isinstance(config, str | Path):
        config = PipelineConfig.from_yaml(config)
    config = config or PipelineConfig()
    owns = isinstance(runs_db, str | Path)
    trace_store = TraceStore(runs_db) if isinstance(runs_db, str | Path) else runs_db
    try:
        runner = Runner(
            config,
            backends=backends,
            trace_store=trace_store,
            record=record,
            concurrency=limits.concurrency,
            queue=limits.queue,
            preload=preload,
        )
    except BaseException:
        if owns and trace_store is not None:
            trace_store.close()
        raise
    service = Service(
        runner,
        trace_store=trace_store,
        owns_trace_store=owns,
        evals_store=Path(evals_store) if evals_store is not None else None,
        limits=limits,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="claimflow",
        version=__version__,
        summary="Automated fact-checking on local models: verify claims, inspect recorded runs, compare prompts.",
        description="The HTTP API of `claimflow serve`. Request and response bodies are claimflow's own pydantic "
        "types (`VerificationResult`, `NodeTrace`, ...). The browser UI lives at `/`.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    _with_event_models(app)
    app.include_router(api_router(service))
    pages = ui.Pages(service, app)
    app.include_router(pages.router())
    app.mount("/static", ui.static_files(), name="static")
    _install_error_handlers(app, pages)
    app.add_middleware(Guard, token=token, max_body_bytes=limits.max_body_bytes)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
