"""The HTML reports are Jinja2 templates shipped as package data and rendered with autoescape: text a
user controls (claims, evidence, model outputs, item ids) is escaped in both the run report and the
A/B report; the markup the package builds itself (the graph's SVG, the plots) is kept."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from importlib import resources
from pathlib import Path

from tests.conftest import PROMPT_ONLY, keyword_scorer
from tests.unit.test_evals_ab import smart_or_dumb, spec

from claimflow import Verifier
from claimflow.debug.history import report_for_traced
from claimflow.evals.ab import run_ab
from claimflow.evals.report import build_report, to_html
from claimflow.evals.store import RunStore
from claimflow.llm.fake import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_the_run_report_escapes_a_script_in_the_claim_evidence_and_outputs() -> None:
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: f"Because {SCRIPT} said so.")
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    run = verifier.run(f"{SCRIPT} Vitamin D cures colds.", [f"A trial {SCRIPT} found no benefit.", "It helps."])
    page = report_for_traced(verifier, run)
    assert "<script" not in page
    assert f'<p class="claim" id="claim">{ESCAPED} Vitamin D cures colds.</p>' in page
    assert f"<td>A trial {ESCAPED} found no benefit.</td>" in page  # the evidence table
    assert f'<pre class="output">Because {ESCAPED} said so.</pre>' in page  # a raw model output
    assert page.count(ESCAPED) > 5  # prompts, stances, justifications too
    # the package's own markup is not escaped: the SVG graph, the stance rows, the CSP
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'class="node taken" id="g-node-veracity"' in page
    assert 'class="evidence stance-refute" data-index="0" data-label="REFUTE"' in page
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page


def test_the_ab_report_escapes_a_script_in_claims_and_item_ids(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"item{i}{SCRIPT}",
            "claim": f"{SCRIPT} The deficit grew by {i} billion." if i % 3 == 0 else f"{SCRIPT} Thank you {i}.",
            "evidence": [],
            "label": "Yes" if i % 3 == 0 else "No",
            "split": "dev",
            "source": "test",
        }
        for i in range(12)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    store = RunStore(tmp_path / "runs.sqlite")
    run_ab(spec(data, baseline="short"), store, backends={"default": FakeBackend(score_fn=smart_or_dumb)})
    page = to_html(build_report(store, ["t"]))
    assert "<script" not in page
    assert f"<tr><td>item0{ESCAPED}</td><td>Yes</td>" in page  # a disagreement row
    assert page.startswith("<!doctype html>") and "id='metrics'" in page and "id='comparisons'" in page
    assert page.count("src='data:image/png;base64,") == 2  # the plots, inlined


def _package_data() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: list[str] = config["tool"]["setuptools"]["package-data"]["claimflow"]
    return patterns


def test_the_templates_are_package_data() -> None:
    """Every template file is shipped in the wheel and the sdist (setuptools package-data), and is
    found through the package, as an installed copy finds it."""
    patterns = _package_data()
    for package in ("debug", "evals"):
        folder = resources.files(f"claimflow.{package}") / "templates"
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert any(n.endswith(".html.j2") for n in names), package
        for name in names:
            path = f"{package}/templates/{name}"
            assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), f"{path} is not package data"
