"""The browser UI: server-rendered Jinja2 pages (``templates/``, through the one HTML environment set-up
:func:`claimflow.io.html_templates`) and one small script (``static/app.js``), no build step.

Pages: ``/`` (the verify form: its result streams in node by node, then the verdict, the evidence
with stance and relevance bars, the justifications and the graph with the path taken), ``/graph``,
``/runs`` and ``/runs/{id}`` (a recorded run: its trace node by node, from its HTML report, and
replay from any node), ``/ab`` and ``/ab/report`` (the A/B evaluation store and its reports), and
``/docs`` (the API reference, read from the OpenAPI schema; no asset from the network).
Every value is escaped; the graph's SVG, which :mod:`claimflow.debug.render` escapes itself, is the
one piece of markup passed through.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from starlette.staticfiles import StaticFiles

from claimflow._version import __version__
from claimflow.debug import render
from claimflow.debug.replay import PROMPT_KEYS, diff_results
from claimflow.debug.report_html import stance_class
from claimflow.graphs.nodes.check_worthiness import is_check_worthy
from claimflow.io import bundled_example, html_templates
from claimflow.prompts.registry import TemplateRegistry
from claimflow.types import VerificationResult

if TYPE_CHECKING:
    from claimflow.serve.app import Service

NAV = (("/", "Verify"), ("/graph", "Graph"), ("/runs", "Runs"), ("/ab", "A/B runs"), ("/docs", "API"))


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t is not None else "-"


def _inline_md(text: str | None) -> Markup:
    """Escaped text with `code` spans (the API descriptions' only markup)."""
    escaped = str(escape(text or ""))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


@cache
def templates() -> jinja2.Environment:
    env = html_templates("claimflow.serve")
    env.filters.update(when=_when, md=_inline_md, pct=lambda p: f"{max(0.0, min(1.0, float(p))) * 100:.1f}%")
    env.globals.update(nav=NAV, version=__version__, stance_class=stance_class)
    return env


def static_files() -> StaticFiles:
    return StaticFiles(directory=Path(str(resources.files("claimflow.serve") / "static")))


# --- views --------------------------------------------------------------------------------------


def path_svg(drawable: Any, stages_run: list[str] | None, title: str) -> Markup:
    """The graph's SVG (render.py escapes its own text), with ``stages_run`` highlighted when given."""
    path = [render.START, *stages_run, render.END] if stages_run is not None else None
    return Markup(render.to_svg(render.layout(drawable), path=path, title=title))


def stance_segments(probabilities: dict[str, float], support: str, refute: str) -> list[tuple[str, str, float]]:
    """(label, css class, probability) in the order support, refute, the rest."""
    order = [support, refute, *sorted(k for k in probabilities if k not in (support, refute))]
    present = [label for label in order if label in probabilities]
    return [(label, stance_class(label, support, refute), probabilities[label]) for label in present]


def result_view(result: VerificationResult, service: Service) -> dict[str, Any]:
    config = service.config
    support, refute = config.evidence_stance.support_label, config.evidence_stance.refute_label
    cw = result.check_worthiness
    positive = config.check_worthiness.positive_label
    worthy = cw is not None and is_check_worthy(cw, config.check_worthiness)
    ran_on = cw is not None and not worthy and "evidence_stance" in result.stages_run
    used_by: dict[int, list[str]] = {}
    if result.justifications is not None:
        for j in (result.justifications.support, result.justifications.refute):
            for i in j.evidence_indices:
                used_by.setdefault(i, []).append(j.side)
    stances = {s.index: s for s in result.evidence_stances}
    rows = []
    for i, sentence in enumerate(result.evidence):
        s = stances.get(i)
        rows.append(
            {
                "index": i,
                "text": sentence,
                "stance": s,
                "css": stance_class(s.label, support, refute) if s is not None else "stance-none",
                "segments": stance_segments(s.probabilities, support, refute) if s is not None else [],
                "used_by": used_by.get(i, []),
            }
        )
    verdict = result.veracity
    distribution = sorted(verdict.probabilities.items(), key=lambda kv: -kv[1]) if verdict is not None else []
    return {
        "result": result,
        "verdict": verdict,
        "distribution": distribution,
        "cw": cw,
        "cw_positive": positive,
        "cw_p": cw.probabilities.get(positive, 0.0) if cw is not None else None,
        "worthy": worthy,
        "ran_on": ran_on,
        "rows": rows,
        "svg": path_svg(service.drawable(), list(result.stages_run), "path taken"),
    }


# --- the API reference, from the OpenAPI schema ---------------------------------------------------


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def schema_type(schema: dict[str, Any]) -> Markup:
    """A schema's type as short markup: names link to their section below."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return Markup('<a href="#schema-{0}">{0}</a>').format(name)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return Markup(" | ").join(schema_type(s) for s in schema[key])
    if "enum" in schema:
        return Markup(" | ").join(Markup("<code>{}</code>").format(json.dumps(v)) for v in schema["enum"])
    if "const" in schema:
        return Markup("<code>{}</code>").format(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return Markup("{}[]").format(schema_type(schema.get("items", {})))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return Markup("map of {}").format(schema_type(schema["additionalProperties"]))
    return Markup("{}").format(kind)


def api_reference(openapi: dict[str, Any]) -> dict[str, Any]:
    endpoints = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            responses = []
            for code, response in op.get("responses", {}).items():
                content = response.get("content", {})
                typed = [
                    (media, schema_type(c["schema"]) if "schema" in c else Markup("")) for media, c in content.items()
                ]
                responses.append({"code": code, "description": response.get("description", ""), "content": typed})
            endpoints.append(
                {
                    "id": re.sub(r"[^\w]+", "-", f"{method}-{path}").strip("-"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tags": op.get("tags", []),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": schema_type(p.get("schema", {})),
                            "description": p.get("description", p.get("schema", {}).get("description", "")),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": schema_type(body) if body else None,
                    "responses": responses,
                }
            )
    schemas: list[dict[str, Any]] = []
    for name, schema in sorted(openapi.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [
            {
                "name": field,
                "type": schema_type(spec),
                "required": field in required,
                "default": json.dumps(spec["default"]) if "default" in spec else None,
                "description": spec.get("description", ""),
            }
            for field, spec in schema.get("properties", {}).items()
        ]
        schemas.append({"name": name, "description": schema.get("description", ""), "fields": fields})
    return {"info": openapi.get("info", {}), "endpoints": endpoints, "schemas": schemas}


# --- the pages ------------------------------------------------------------------------------------


class Pages:
    def __init__(self, service: Service, app: FastAPI) -> None:
        self.service = service
        self.app = app

    def render(
        self, request: Request, name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        page = templates().get_template(name)
        root = request.scope.get("root_path", "")
        html = page.render(root=root, current=request.url.path, **context)
        return HTMLResponse(html, status_code=status, headers=headers)

    def error_page(
        self, request: Request, status: int, body: dict[str, str], headers: dict[str, str] | None
    ) -> HTMLResponse:
        return self.render(
            request, "error.html.j2", status=status, headers=headers, title=f"{status} {body['error']}", body=body
        )

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        service = self.service

        @router.get("/", response_class=HTMLResponse)
        def verify_page(request: Request) -> HTMLResponse:
            example = bundled_example()
            return self.render(
                request,
                "verify.html.j2",
                title="Verify a claim",
                example=json.dumps({"claim": example["claim"], "evidence": example["evidence"]}),
                stages=list(service.config.stages),
                gate=service.config.check_worthiness.gate,
                limits=service.limits,
                recording=service.runner.recording,
                svg=path_svg(service.drawable(), None, "claimflow graph"),
            )

        @router.post("/ui/result", response_class=HTMLResponse)
        def result_fragment(request: Request, result: VerificationResult) -> HTMLResponse:
            view = result_view(result, service)
            fragment = templates().get_template("result.html.j2")
            return HTMLResponse(fragment.render(root=request.scope.get("root_path", ""), **view))

        @router.get("/graph", response_class=HTMLResponse)
        def graph_page(request: Request) -> HTMLResponse:
            drawable = service.drawable()
            return self.render(
                request,
                "graph.html.j2",
                title="The compiled graph",
                svg=path_svg(drawable, None, "claimflow graph"),
                mermaid=drawable.draw_mermaid(),
                dot=render.to_dot(drawable),
                config_yaml=service.config.to_yaml(),
            )

        @router.get("/runs", response_class=HTMLResponse)
        def runs_page(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> HTMLResponse:
            return self.render(
                request,
                "runs.html.j2",
                title="Recorded runs",
                runs=service.runs(limit),
                limit=limit,
                db=str(service.trace_store.path) if service.trace_store is not None else None,
                recording=service.runner.recording,
            )

        @router.get("/runs/{run_id}", response_class=HTMLResponse)
        def run_page(request: Request, run_id: str) -> HTMLResponse:
            info = service.runner.stored(run_id)
            diff: list[str] | None = None
            parent = None
            if info.parent_run:
                try:
                    parent = service.runner.stored(info.parent_run)
                except Exception:  # the parent may have been deleted: the page still shows this run
                    parent = None
                if parent is not None and parent.result is not None and info.result is not None:
                    diff = diff_results(parent.result, info.result)
            children = [r for r in service.runs(500) if r.parent_run == info.run_id]
            registry = TemplateRegistry(service.config.template_dirs)
            refs = sorted(t.ref for t in registry.all())
            return self.render(
                request,
                "run.html.j2",
                title=f"Run {info.run_id}",
                info=info,
                result=info.result,
                stages=list(info.config.stages),
                diff=diff,
                children=children,
                prompt_keys=sorted(PROMPT_KEYS),
                template_refs=refs,
                recording=service.runner.recording,
            )

        @router.get("/ab", response_class=HTMLResponse)
        def ab_page(request: Request) -> HTMLResponse:
            return self.render(
                request,
                "ab.html.j2",
                title="A/B runs",
                runs=service.ab_runs(),
                store=str(service.evals_store) if service.evals_store is not None else None,
            )

        @router.get("/ab/report", response_class=HTMLResponse)
        def ab_report_page(request: Request, run: Annotated[list[str] | None, Query()] = None) -> HTMLResponse:
            runs = run or []
            known = {r.run_id for r in service.ab_runs()}
            missing = [r for r in runs if r not in known]
            if not runs or missing:
                from claimflow.serve.runner import NotFoundError

                raise NotFoundError(
                    f"no A/B run {missing[0]!r} in the store" if missing else "choose one or more A/B runs on /ab"
                )
            query = urlencode([("run", r) for r in runs])
            title = f"A/B report: {', '.join(runs)}"
            return self.render(request, "ab_report.html.j2", title=title, runs=runs, query=query)

        @router.get("/favicon.ico")
        def favicon(request: Request) -> Response:
            return RedirectResponse(f"{request.scope.get('root_path', '')}/static/favicon.svg", status_code=301)

        @router.get("/docs", response_class=HTMLResponse)
        def docs_page(request: Request) -> HTMLResponse:
            return self.render(request, "docs.html.j2", title="API reference", api=api_reference(self.app.openapi()))

        @router.get("/docs/swagger", response_class=HTMLResponse)
        def swagger_page(request: Request) -> Response:
            root = request.scope.get("root_path", "")
            return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="claimflow API: Swagger UI")

        return router
