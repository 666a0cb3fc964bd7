"""``claimflow serve`` as a command: its help, its options reaching the app, loopback by default, the
warning off loopback, the token in the printed address, a port in use (uvicorn's loop is replaced
here; tests/integration/test_serve_uvicorn.py runs the real one)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="needs the [serve] extra (pip install 'claimflow[serve]')")

import uvicorn
from fastapi import FastAPI
from tests.conftest import FIXTURES
from typer.testing import CliRunner

from claimflow.cli.main import app
from claimflow.cli.serve import _url, is_loopback

FAKE = str(FIXTURES / "fake.yaml")
runner = CliRunner()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """What ``uvicorn.Server.run`` was handed, instead of serving (in a fresh folder: the default runs
    database is runs/trace.sqlite under the current one)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLAIMFLOW_RUNS_DB", raising=False)
    calls: list[dict[str, Any]] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        calls.append({"config": self.config, "sockets": sockets, "address": sockets[0].getsockname()})

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return calls


def test_serve_help_lists_its_options() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for option in ("--host", "--port", "--config", "--token", "--db", "--no-record", "--concurrency", "--queue"):
        assert option in text
    assert "serve" in runner.invoke(app, ["--help"]).stdout


def test_serve_listens_on_loopback_by_default_and_prints_the_address(
    served: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = runner.invoke(app, ["serve", "--port", "0", "-c", FAKE, "--db", str(tmp_path / "runs.sqlite")])
    assert result.exit_code == 0, result.output
    (call,) = served
    host, port = call["address"][:2]
    assert host == "127.0.0.1" and port > 0
    assert isinstance(call["config"].app, FastAPI)
    stderr = " ".join(result.stderr.split())
    assert f"claimflow serve: http://127.0.0.1:{port}/" in stderr and f"http://127.0.0.1:{port}/docs" in stderr
    assert "warning" not in stderr
    assert (tmp_path / "runs.sqlite").exists()


def test_serve_on_every_interface_warns_and_a_token_goes_in_the_address(served: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "-c", FAKE, "--no-record"])
    assert result.exit_code == 0, result.output
    stderr = " ".join(result.stderr.split())
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine" in stderr
    assert "pass --token auto" in stderr
    protected = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "-c", FAKE, "--token", "auto"])
    stderr = " ".join(protected.stderr.split())
    assert "?token=" in stderr and "pass --token" not in stderr
    env = runner.invoke(app, ["serve", "--port", "0", "-c", FAKE], env={"CLAIMFLOW_SERVE_TOKEN": "from-the-env"})
    assert "?token=from-the-env" in " ".join(env.stderr.split())


def test_a_port_in_use_is_one_clear_error(served: list[dict[str, Any]]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "-c", FAKE])
    assert result.exit_code == 2
    assert f"error: InputError: cannot listen on 127.0.0.1:{port}" in " ".join(result.stderr.split())


def test_a_bad_token_or_config_is_refused_before_serving(served: list[dict[str, Any]]) -> None:
    short = runner.invoke(app, ["serve", "--port", "0", "-c", FAKE, "--token", "abc"])
    assert short.exit_code == 2 and "the token must be 8 or more" in " ".join(short.stderr.split())
    missing = runner.invoke(app, ["serve", "--port", "0", "-c", "/no/such.yaml"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert served == []


@pytest.mark.parametrize(
    ("host", "loopback", "url"),
    [
        ("127.0.0.1", True, "http://127.0.0.1:8000"),
        ("localhost", True, "http://localhost:8000"),
        ("::1", True, "http://[::1]:8000"),
        ("0.0.0.0", False, "http://127.0.0.1:8000"),
        ("192.168.1.20", False, "http://192.168.1.20:8000"),
    ],
)
def test_loopback_and_the_printed_address(host: str, loopback: bool, url: str) -> None:
    assert is_loopback(host) is loopback
    assert _url(host, 8000) == url
