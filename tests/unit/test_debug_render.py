"""Offline graph rendering: SVG (snapshot), PNG, DOT, text and HTML, with the path taken
highlighted; the `graph` command never opens a network connection."""

from __future__ import annotations

import operator
import socket
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from tests.conftest import FIXTURES, PROMPT_ONLY
from typer.testing import CliRunner

from claimflow import PipelineConfig, Verifier
from claimflow.cli.main import app
from claimflow.debug import render
from claimflow.llm.fake import FakeBackend

SVG = "{http://www.w3.org/2000/svg}"
SNAPSHOT = FIXTURES / "debug" / "graph_default.svg"
FAKE = str(FIXTURES / "fake.yaml")


def drawable(config: PipelineConfig | None = None) -> Any:
    return Verifier(config, backends={"default": FakeBackend()}).graph.get_graph()


def groups(svg: str, kind: str) -> dict[str, set[str]]:
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(f"{SVG}g"):
        classes = set(g.get("class", "").split())
        if kind in classes:
            out[g.get("id", "")] = classes
    return out


def test_svg_snapshot_of_the_default_graph() -> None:
    svg = render.to_svg(render.layout(drawable()))
    assert svg == SNAPSHOT.read_text(encoding="utf-8")


def test_svg_has_every_node_and_edge_and_dashes_the_conditional_ones() -> None:
    svg = render.to_svg(render.layout(drawable()))
    nodes = groups(svg, "node")
    assert set(nodes) == {
        f"g-node-{n}" for n in ("__start__", "check_worthiness", "evidence_stance", "justify", "veracity", "__end__")
    }
    edges = groups(svg, "edge")
    assert len(edges) == 6
    assert "conditional" in edges["g-edge-check_worthiness--__end__"]
    assert "conditional" in edges["g-edge-check_worthiness--evidence_stance"]
    assert "conditional" not in edges["g-edge-justify--veracity"]


def test_the_path_taken_is_highlighted_and_the_rest_greyed() -> None:
    path = ["__start__", "check_worthiness", "__end__"]
    svg = render.to_svg(render.layout(drawable()), path=path, links=True)
    nodes, edges = groups(svg, "node"), groups(svg, "edge")
    assert {k for k, v in nodes.items() if "taken" in v} == {f"g-node-{n}" for n in path}
    assert "skipped" in nodes["g-node-veracity"]
    assert {k for k, v in edges.items() if "taken" in v} == {
        "g-edge-__start__--check_worthiness",
        "g-edge-check_worthiness--__end__",
    }
    assert 'href="#node-veracity"' in svg and 'href="#node-__start__"' not in svg


def test_layout_handles_stage_subsets_and_cycles() -> None:
    subset = drawable(PROMPT_ONLY.with_stages(("check_worthiness",)))
    assert len(render.layout(subset).boxes) == 3

    class S(TypedDict, total=False):
        n: Annotated[list[int], operator.add]

    g: Any = StateGraph(S)
    g.add_node("a", lambda s: {"n": [1]})
    g.add_node("b", lambda s: {"n": [2]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: "a" if len(s["n"]) < 4 else END, {"a": "a", END: END})
    lay = render.layout(g.compile().get_graph())
    back = next(r for r in lay.routes if (r.source, r.target) == ("b", "a"))
    assert back.points[1][0] < lay.boxes["b"].x  # a back edge goes round the left side
    assert all(x >= 0 for r in lay.routes for x, _ in r.points)
    ET.fromstring(render.to_svg(lay))


def test_png_is_a_real_image_of_the_layout_size() -> None:
    lay = render.layout(drawable())
    png = render.to_png(lay, path=["__start__", "check_worthiness", "evidence_stance"], scale=2.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert abs(width - lay.width * 2) <= 2 and abs(height - lay.height * 2) <= 2


def test_dot_text_and_html_formats() -> None:
    graph = drawable()
    dot = render.to_dot(graph)
    assert dot.startswith('digraph "claimflow" {') and '"check_worthiness" -> "__end__" [style=dashed];' in dot
    text = render.to_text(graph)
    assert "check_worthiness\n  ├┄> evidence_stance  (conditional)\n  └┄> __end__  (conditional)" in text
    page = render.to_html(graph)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert (
        "<svg" in page
        and "graph TD;" in page
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("fmt", ["mermaid", "ascii", "dot", "svg", "png", "html"])
def test_graph_command_renders_every_format_offline(fmt: str, tmp_path: Path, no_network: None) -> None:
    out = tmp_path / f"graph.{fmt}"
    result = CliRunner().invoke(app, ["graph", "--format", fmt, "-c", FAKE, "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    expected = {
        "mermaid": b"graph TD;",
        "ascii": b"check_worthiness",
        "dot": b"digraph",
        "svg": b"<svg",
        "png": b"\x89PNG",
        "html": b"<!DOCTYPE html>",
    }[fmt]
    assert expected in data[:4000]


def test_graph_command_prints_text_formats_to_stdout() -> None:
    result = CliRunner().invoke(app, ["graph", "--format", "svg", "-c", FAKE])
    assert result.exit_code == 0 and result.stdout.startswith("<svg")
    mermaid = CliRunner().invoke(app, ["graph", "-c", FAKE])
    assert mermaid.stdout == (FIXTURES / "graph_default.mmd").read_text(encoding="utf-8")
