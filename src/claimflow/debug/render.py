"""Draw the compiled graph offline: a small layered layout of our own, painted as SVG (text), PNG
(matplotlib, already a dependency), Graphviz DOT source, plain text, or one HTML page.

Why not the usual renderers: LangGraph's ``draw_mermaid_png`` sends the diagram to mermaid.ink by
default (a web service) or drives a downloaded Chromium through pyppeteer; ``draw_png`` needs
pygraphviz and the Graphviz C libraries; ``draw_ascii`` needs grandalf. Our graph is a chain with
two exits to ``__end__``, which a column layout draws cleanly, deterministically (snapshot-testable)
and with the run's path highlighted, with nothing to install. ``--format dot`` hands the same graph
to Graphviz for anyone who has it.
"""

from __future__ import annotations

import html
import io
import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

START, END = "__start__", "__end__"
NODE_H = 36.0
GAP = 34.0
TOP = 20.0
LEFT = 24.0
CHAR_W = 7.6
LANE = 26.0

COLORS = {
    "node_fill": "#f2f0ff",
    "node_stroke": "#7c6fd6",
    "terminal_fill": "#ffffff",
    "end_fill": "#bfb6fc",
    "edge": "#555566",
    "taken": "#1f9d55",
    "taken_fill": "#dff5e7",
    "skipped": "#b9b9c3",
    "text": "#1d1d2b",
}


@dataclass(frozen=True)
class Box:
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float

    @property
    def terminal(self) -> bool:
        return self.id in (START, END)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Route:
    """An edge as one cubic Bézier curve (start, control 1, control 2, end)."""

    source: str
    target: str
    conditional: bool
    points: tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
    label: str | None = None

    def arrowhead(self, size: float = 8.0) -> list[tuple[float, float]]:
        (ex, ey), (cx, cy) = self.points[3], self.points[2]
        dx, dy = ex - cx, ey - cy
        norm = math.hypot(dx, dy) or 1.0
        ux, uy = dx / norm, dy / norm
        bx, by = ex - ux * size, ey - uy * size
        return [(ex, ey), (bx - uy * size * 0.5, by + ux * size * 0.5), (bx + uy * size * 0.5, by - ux * size * 0.5)]


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    boxes: dict[str, Box]
    routes: list[Route]


def _order(node_ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Topological order (Kahn), ties broken by insertion order; nodes on cycles go last."""
    indegree = dict.fromkeys(node_ids, 0)
    for s, t in edges:
        if s != t and t in indegree:
            indegree[t] += 1
    order: list[str] = []
    ready = [n for n in node_ids if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        order.append(node)
        for s, t in edges:
            if s == node and s != t and t in indegree:
                indegree[t] -= 1
                if indegree[t] == 0:
                    ready.append(t)
        ready.sort(key=node_ids.index)
    return order + [n for n in node_ids if n not in order]


def layout(drawable: Any) -> Layout:
    """Lay a ``langchain_core`` drawable graph (``compiled.get_graph()``) out in one column."""
    names = {node_id: str(getattr(node, "name", node_id)) for node_id, node in drawable.nodes.items()}
    edges = [(e.source, e.target, bool(e.conditional), e.data) for e in drawable.edges]
    order = _order(list(names), [(s, t) for s, t, _, _ in edges])
    widest = max((len(names[n]) for n in order), default=4) * CHAR_W + 36
    boxes: dict[str, Box] = {}
    for i, node_id in enumerate(order):
        w = max(90.0, len(names[node_id]) * CHAR_W + 36)
        boxes[node_id] = Box(node_id, names[node_id], LEFT + (widest - w) / 2, TOP + i * (NODE_H + GAP), w, NODE_H)
    rank = {n: i for i, n in enumerate(order)}
    routes: list[Route] = []
    right_lanes = left_lanes = 0
    # longer spans get outer lanes so arcs do not cross
    for s, t, conditional, data in sorted(edges, key=lambda e: abs(rank[e[1]] - rank[e[0]])):
        a, b = boxes[s], boxes[t]
        label = str(data) if data is not None and str(data) != t else None
        if rank[t] == rank[s] + 1:
            points = ((a.cx, a.y + a.h), (a.cx, a.y + a.h + GAP / 3), (b.cx, b.y - GAP / 3), (b.cx, b.y))
        elif rank[t] > rank[s]:
            right_lanes += 1
            d = LANE * (right_lanes + 0.6)
            points = ((a.x + a.w, a.cy), (a.x + a.w + d, a.cy), (b.x + b.w + d, b.cy), (b.x + b.w, b.cy))
        else:
            left_lanes += 1
            d = LANE * (left_lanes + 0.6)
            points = ((a.x, a.cy), (a.x - d, a.cy), (b.x - d, b.cy), (b.x, b.cy))
        routes.append(Route(s, t, conditional, points, label))
    shift = LANE * (left_lanes + 1) if left_lanes else 0.0
    if shift:
        boxes = {k: Box(v.id, v.label, v.x + shift, v.y, v.w, v.h) for k, v in boxes.items()}
        routes = [
            Route(r.source, r.target, r.conditional, tuple((x + shift, y) for x, y in r.points), r.label)  # type: ignore[arg-type]
            for r in routes
        ]
    # a cubic's bulge reaches 3/4 of its control-point offset
    width = shift + LEFT * 2 + widest + (LANE * (right_lanes + 0.6) * 0.75 + 12 if right_lanes else 0)
    height = TOP * 2 + len(order) * NODE_H + max(0, len(order) - 1) * GAP
    return Layout(width=round(width, 1), height=round(height, 1), boxes=boxes, routes=routes)


def path_edges(path: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(path))


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


_SVG_STYLE = """
.node rect {{ fill: {node_fill}; stroke: {node_stroke}; stroke-width: 1.2; }}
.node.terminal rect {{ fill: {terminal_fill}; }}
.node.end rect {{ fill: {end_fill}; }}
.node text {{ font: 13px sans-serif; fill: {text}; text-anchor: middle; dominant-baseline: central; }}
.edge path {{ fill: none; stroke: {edge}; stroke-width: 1.4; }}
.edge polygon {{ fill: {edge}; }}
.edge.conditional path {{ stroke-dasharray: 5 4; }}
.edge text {{ font: 11px sans-serif; fill: {edge}; }}
.node.taken rect {{ stroke: {taken}; stroke-width: 2.6; fill: {taken_fill}; }}
.edge.taken path {{ stroke: {taken}; stroke-width: 2.6; }}
.edge.taken polygon {{ fill: {taken}; }}
.node.skipped rect {{ stroke: {skipped}; fill: #f7f7f9; }}
.node.skipped text {{ fill: {skipped}; }}
.edge.skipped path {{ stroke: {skipped}; }}
.edge.skipped polygon {{ fill: {skipped}; }}
""".format(**COLORS)


def to_svg(
    lay: Layout, *, path: Sequence[str] | None = None, links: bool = False, title: str = "claimflow graph"
) -> str:
    """SVG text. ``path`` (node ids in the order they ran) highlights the nodes and edges taken and
    greys the rest; ``links`` wraps each node in ``<a href="#node-ID">`` for the report."""
    taken_nodes: Collection[str] = set(path) if path else set()
    taken_edges = path_edges(path) if path else set()

    def state(taken: bool) -> str:
        if path is None:
            return ""
        return " taken" if taken else " skipped"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="claimflow-graph" width="{_f(lay.width)}" '
        f'height="{_f(lay.height)}" viewBox="0 0 {_f(lay.width)} {_f(lay.height)}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_SVG_STYLE}</style>",
    ]
    for r in lay.routes:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = r.points
        cls = "edge" + (" conditional" if r.conditional else "") + state((r.source, r.target) in taken_edges)
        arrow = " ".join(f"{_f(x)},{_f(y)}" for x, y in r.arrowhead())
        out.append(
            f'<g class="{cls}" id="g-edge-{html.escape(r.source)}--{html.escape(r.target)}" '
            f'data-source="{html.escape(r.source)}" data-target="{html.escape(r.target)}">'
            f'<path d="M{_f(x0)},{_f(y0)} C{_f(x1)},{_f(y1)} {_f(x2)},{_f(y2)} {_f(x3)},{_f(y3)}"/>'
            f'<polygon points="{arrow}"/>'
            + (f'<text x="{_f(x1 + 4)}" y="{_f((y1 + y2) / 2)}">{html.escape(r.label)}</text>' if r.label else "")
            + "</g>"
        )
    for box in lay.boxes.values():
        kind = " terminal" + (" end" if box.id == END else "") if box.terminal else ""
        cls = "node" + kind + state(box.id in taken_nodes)
        radius = box.h / 2 if box.terminal else 7
        group = (
            f'<g class="{cls}" id="g-node-{html.escape(box.id)}" data-node="{html.escape(box.id)}">'
            f'<rect x="{_f(box.x)}" y="{_f(box.y)}" width="{_f(box.w)}" height="{_f(box.h)}" '
            f'rx="{_f(radius)}" ry="{_f(radius)}"/>'
            f'<text x="{_f(box.cx)}" y="{_f(box.cy)}">{html.escape(box.label)}</text></g>'
        )
        if links and not box.terminal:
            group = f'<a href="#node-{html.escape(box.id)}">{group}</a>'
        out.append(group)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(lay: Layout, *, path: Sequence[str] | None = None, scale: float = 2.0) -> bytes:
    """PNG bytes painted by matplotlib's Agg canvas (no display, no network)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, PathPatch, Polygon
    from matplotlib.path import Path as MplPath

    taken_nodes = set(path) if path else set()
    taken_edges = path_edges(path) if path else set()
    dpi = 72.0 * scale
    fig = Figure(figsize=(lay.width / 72.0, lay.height / 72.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)
    ax.axis("off")

    def edge_color(r: Route) -> str:
        if path is None:
            return COLORS["edge"]
        return COLORS["taken"] if (r.source, r.target) in taken_edges else COLORS["skipped"]

    for r in lay.routes:
        color = edge_color(r)
        width = 2.6 if path is not None and (r.source, r.target) in taken_edges else 1.4
        curve = MplPath(list(r.points), [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
        ax.add_patch(
            PathPatch(curve, fill=False, edgecolor=color, linewidth=width, linestyle="--" if r.conditional else "-")
        )
        ax.add_patch(Polygon(r.arrowhead(), closed=True, facecolor=color, edgecolor=color))
    for box in lay.boxes.values():
        taken = box.id in taken_nodes
        if path is not None and taken:
            face, edge, lw = COLORS["taken_fill"], COLORS["taken"], 2.6
        elif path is not None:
            face, edge, lw = "#f7f7f9", COLORS["skipped"], 1.2
        else:
            face = (
                COLORS["end_fill"]
                if box.id == END
                else (COLORS["terminal_fill"] if box.terminal else COLORS["node_fill"])
            )
            edge, lw = COLORS["node_stroke"], 1.2
        pad = box.h / 2 if box.terminal else 7
        ax.add_patch(
            FancyBboxPatch(
                (box.x + pad, box.y + pad),
                box.w - 2 * pad,
                box.h - 2 * pad,
                boxstyle=f"round,pad={pad}",
                facecolor=face,
                edgecolor=edge,
                linewidth=lw,
            )
        )
        text_color = COLORS["skipped"] if path is not None and not taken else COLORS["text"]
        ax.text(box.cx, box.cy, box.label, ha="center", va="center", fontsize=10, color=text_color)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def to_dot(drawable: Any, *, name: str = "claimflow") -> str:
    """Graphviz DOT source (render with ``dot -Tsvg`` where Graphviz is installed)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {q(name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f2f0ff", color="#7c6fd6", fontname="Helvetica"];',
    ]
    for node_id, node in drawable.nodes.items():
        attrs = ' [shape=oval, fillcolor="#ffffff"]' if node_id == START else ""
        attrs = ' [shape=oval, fillcolor="#bfb6fc"]' if node_id == END else attrs
        lines.append(f"  {q(str(getattr(node, 'name', node_id)))}{attrs};")
    for e in drawable.edges:
        attrs = " [style=dashed]" if e.conditional else ""
        lines.append(f"  {q(e.source)} -> {q(e.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_text(drawable: Any) -> str:
    """Each node with its outgoing edges (┄> conditional), in topological order."""
    lay = layout(drawable)
    order = sorted(lay.boxes, key=lambda n: lay.boxes[n].y)
    lines = []
    for node in order:
        lines.append(node)
        outgoing = [r for r in lay.routes if r.source == node]
        outgoing.sort(key=lambda r: order.index(r.target))
        for i, r in enumerate(outgoing):
            branch = "└" if i == len(outgoing) - 1 else "├"
            arrow = "┄>" if r.conditional else "─>"
            lines.append(f"  {branch}{arrow} {r.target}" + ("  (conditional)" if r.conditional else ""))
    return "\n".join(lines) + "\n"


CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Content-Security-Policy of our HTML pages: nothing may be fetched from anywhere."""


def to_html(drawable: Any, *, title: str = "claimflow graph") -> str:
    """One self-contained page: the SVG, a legend, and the Mermaid and DOT sources."""
    svg = to_svg(layout(drawable), title=title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1d1d2b; }}
pre {{ background: #f6f6f9; padding: 0.8em; overflow-x: auto; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<figure id="graph">{svg}
<figcaption>solid: always taken · dashed: conditional (the gate, or no evidence)</figcaption></figure>
<details><summary>Mermaid source</summary><pre id="mermaid">{html.escape(drawable.draw_mermaid())}</pre></details>
<details><summary>Graphviz DOT source</summary><pre id="dot">{html.escape(to_dot(drawable))}</pre></details>
</body></html>
"""
