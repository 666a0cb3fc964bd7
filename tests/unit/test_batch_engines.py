"""Cross-claim batching, worker processes and the Ray engine give the claim-at-a-time loop's lines.

Every engine is run on the fake backends here (a real local Ray instance, real worker processes);
the real encoders' batched scores are compared with the one-claim path in
``tests/integration/test_batch_real_models.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import PROMPT_ONLY, keyword_scorer

from claimflow.batch import ConfigVerifier, load_items, run_batch, run_batch_workers
from claimflow.config import PipelineConfig
from claimflow.errors import BackendError, InputError
from claimflow.llm.base import GenRequest
from claimflow.llm.fake import FakeBackend
from claimflow.verifier import Verifier

TIMINGS = ("node_seconds", "total_seconds")


def _justify(request: GenRequest) -> str:
    return "Justification written from: " + request.messages[-1].content.split("Evidence:")[-1].strip()


@dataclass(frozen=True)
class FakeVerifier:
    """A picklable factory: the prompted pipeline on a scripted backend (worker processes, Ray actors)."""

    fail_on: str | None = None

    def __call__(self) -> Verifier:
        def generate(request: GenRequest) -> str:
            if self.fail_on is not None and self.fail_on in request.messages[-1].content:
                raise BackendError("the server went away")
            return _justify(request)

        return Verifier(PROMPT_ONLY, backends={"default": FakeBackend(score_fn=keyword_scorer, generate_fn=generate)})


def write_claims(path: Path, n: int) -> Path:
    """``n`` claims: varied evidence (supporting, refuting, neutral, none), a few bad lines of input."""
    sentences = [
        "Trials show it works well.",
        "There is no sign that it works.",
        "Sunlight was measured.",
        "It is not safe.",
    ]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            record: dict[str, Any] = {"id": f"c{i}", "claim": f"Treatment {i} cures the disease.", "topic": i % 3}
            record["evidence"] = [sentences[(i + k) % 4] for k in range(i % 4)]
            if i % 50 == 7:
                record["claim"] = "   "  # an input error: an error line, the batch goes on
            out.write(json.dumps(record) + "\n")
    return path


def comparable(path: Path) -> list[dict[str, Any]]:
    """The lines of a result file without their timings."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        provenance = line.get("result", {}).get("provenance", {})
        for key in TIMINGS:
            provenance.pop(key, None)
    return lines


@pytest.fixture(scope="module")
def claims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_claims(tmp_path_factory.mktemp("claims") / "claims.jsonl", 210)


@pytest.fixture(scope="module")
def sequential(claims: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The claim-at-a-time loop's lines (``chunk_size=1``)."""
    out = tmp_path_factory.mktemp("sequential") / "out.jsonl"
    with FakeVerifier()() as verifier:
        run_batch(verifier, load_items(str(claims)), out, chunk_size=1)
    return comparable(out)


def test_verify_many_equals_verify_claim_by_claim(fake: FakeBackend) -> None:
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    items = [("Vaccines work.", ["Trials show it works well.", "It is not safe."]), ("", []), ("Masks help.", [])]
    many = verifier.verify_many(items)
    assert isinstance(many[1], InputError)
    for (claim, evidence), got in zip([items[0], items[2]], [many[0], many[2]], strict=True):
        alone = verifier.verify(claim, evidence)
        assert not isinstance(got, InputError)
        assert got.model_dump(exclude={"provenance"}) == alone.model_dump(exclude={"provenance"})


def test_chunked_batch_writes_the_sequential_lines(
    claims: Path, sequential: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    with FakeVerifier()() as verifier:
        summary = run_batch(verifier, load_items(str(claims)), out, chunk_size=16)
    assert comparable(out) == sequential
    assert (summary.written, summary.errors) == (210, 5)


def test_a_crash_mid_chunk_loses_at_most_that_chunk_and_a_rerun_completes(
    claims: Path, sequential: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    with FakeVerifier(fail_on="Treatment 37 ")() as verifier, pytest.raises(BackendError):
        run_batch(verifier, load_items(str(claims)), out, chunk_size=16)
    assert [line["id"] for line in comparable(out)] == [f"c{i}" for i in range(32)]  # chunks 0-1 kept
    with FakeVerifier()() as verifier:
        summary = run_batch(verifier, load_items(str(claims)), out, chunk_size=16)
    assert summary.skipped == 32 and comparable(out) == sequential


def test_worker_processes_write_the_sequential_lines(
    claims: Path, sequential: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    half = load_items(str(claims))[:100]
    run_batch(FakeVerifier()(), half, out, chunk_size=8)  # resumes what an earlier run left
    summary = run_batch_workers(FakeVerifier(), load_items(str(claims)), out, workers=2, chunk_size=16)
    assert (summary.skipped, summary.written) == (100, 110)
    assert comparable(out) == sequential


def test_config_verifier_caps_the_threads_of_backends_that_set_none() -> None:
    config = PipelineConfig.from_dict(
        {"backends": {"default": {"kind": "fake"}, "pinned": {"kind": "fake", "threads": 3}}}
    )
    verifier = ConfigVerifier(config, threads=1)()
    assert verifier.config.backends["default"].threads == 1
    assert verifier.config.backends["pinned"].threads == 3


def test_cli_batch_in_chunks_resumes_and_refuses_workers_with_ray(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from claimflow.cli.main import app

    config = tmp_path / "fake.yaml"
    config.write_text(
        "backends: {default: {kind: fake}}\ncheck_worthiness: {predictor: prompt}\n"
        "evidence_stance: {predictor: prompt}\nveracity: {predictor: prompt}\n",
        encoding="utf-8",
    )
    claims, out = write_claims(tmp_path / "claims.jsonl", 20), tmp_path / "out.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["batch", str(claims), "-o", str(out), "-c", str(config), "--chunk-size", "6"])
    assert result.exit_code == 0, result.output
    assert [line["id"] for line in comparable(out)] == [f"c{i}" for i in range(20)]
    again = runner.invoke(app, ["batch", str(claims), "-o", str(out), "-c", str(config), "--chunk-size", "6"])
    assert again.exit_code == 0 and "0 written, 20 already done" in again.output
    both = runner.invoke(app, ["batch", str(claims), "-o", str(out), "--engine", "ray", "--workers", "2"])
    assert both.exit_code == 2 and "--workers is for the local engine" in both.output
