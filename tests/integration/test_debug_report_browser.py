"""The HTML run report in headless Chromium (Debian's package): DOM and screenshot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.browser import chromium
from tests.conftest import PROMPT_ONLY, keyword_scorer

from claimflow import Verifier
from claimflow.debug.history import load_run, report_for_stored
from claimflow.debug.replay import Edit, replay
from claimflow.graphs.trace_store import TraceStore
from claimflow.llm.fake import FakeBackend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (CI installs it)"),
]

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]


def test_run_report_renders_with_path_panels_and_stance_colours(tmp_path: Path) -> None:
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "Because " + r.messages[-1].content[-60:])
    with TraceStore(tmp_path / "runs.sqlite") as store:
        run_id = Verifier(PROMPT_ONLY, backends={"default": fake}, trace_store=store).verify(CLAIM, EVIDENCE).run_id
        assert run_id is not None
        forked = replay(
            store, run_id, edits=[Edit.parse("evidence_stances.2.label=REFUTE")], backends={"default": fake}
        )
        page = tmp_path / "report.html"
        page.write_text(report_for_stored(load_run(store, forked.run_id)), encoding="utf-8")

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-1000:]
    html = dom.stdout
    assert html.count('class="node-panel inherited"') == 2 and html.count('class="node-panel"') == 2
    for node in ("check_worthiness", "evidence_stance", "justify", "veracity"):
        assert f'id="node-{node}"' in html
        assert f'class="node taken" id="g-node-{node}"' in html
    assert 'class="edge conditional skipped" id="g-edge-check_worthiness--__end__"' in html
    assert 'class="evidence stance-refute" data-index="0"' in html
    assert 'class="evidence stance-support" data-index="1"' in html
    assert 'class="evidence stance-refute" data-index="2"' in html  # the edited stance
    assert f"replay of run <code>{run_id}</code>" in html
    assert "Sentence to classify:" in html and "raw log-prob" in html

    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-1000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(str(shot))[..., :3]

    def share(rgb: tuple[int, int, int]) -> float:
        return float(np.mean(np.all(np.abs(pixels - np.array(rgb) / 255.0) < 0.06, axis=-1)))

    assert share((0x1F, 0x9D, 0x55)) > 0.0005  # the green path and support marks are painted
    assert share((0xD6, 0x45, 0x45)) > 0.0002  # the red refute marks
