"""``claimflow serve``: the local app and HTTP API (:mod:`claimflow.serve`) on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from claimflow.cli._console import err
from claimflow.cli._options import ConfigOpt, config_from
from claimflow.errors import ConfigError, InputError

app = typer.Typer()
"""Mounted without a name: ``serve`` is a top-level command."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (bound here, so a port in use is one clear error before any model loads)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r}: cannot resolve it ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "choose another --port (0: any free one)" if exc.errno in (98, 48, 10048) else "check --host"
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "localhost" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on. The default, loopback, is this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one; the address is printed).")] = 8000,
    config: ConfigOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="CLAIMFLOW_SERVE_TOKEN",
            help="Require this bearer token on every request ('auto': generate one). The printed address "
            "carries it, for the browser.",
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Runs database (default: $CLAIMFLOW_RUNS_DB, else runs/trace.sqlite)."),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Record every verification (trace and replay in the UI).")
    ] = True,
    evals_store: Annotated[
        Path, typer.Option("--evals-store", help="The A/B store `claimflow eval run` writes (read only).")
    ] = Path("runs/evals.sqlite"),
    concurrency: Annotated[
        int, typer.Option(min=1, help="Verifications at once; each slot loads its own copy of the models.")
    ] = 1,
    queue: Annotated[int, typer.Option(min=0, help="Requests that may wait for a slot; beyond them: 503.")] = 8,
    max_evidence: Annotated[int, typer.Option(min=0, help="Evidence sentences a claim, at most.")] = 500,
    max_batch: Annotated[int, typer.Option(min=1, help="Claims a /v1/verify:batch request, at most.")] = 64,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Request body size, at most.")] = 2_000_000,
) -> None:
    """Serve the local app and HTTP API: verify in the browser, inspect recorded runs and replay them,
    read A/B reports; the API is documented at /docs. No account, no network needed."""
    try:
        import uvicorn

        from claimflow.serve import ServeLimits, create_app
    except ImportError as exc:
        raise ConfigError(
            f"claimflow serve needs FastAPI and uvicorn ({exc.name} is missing): pip install 'claimflow[serve]'"
        ) from exc
    from claimflow.graphs.trace_store import default_db

    if token == "auto":
        token = secrets.token_urlsafe(24)
    if not is_loopback(host):
        err.print(
            f"warning: listening on {host}: anyone who can reach this machine can use the server and its models"
            + ("" if token else "; pass --token auto to require a token"),
            style="bold yellow",
            markup=False,
            highlight=False,
        )
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    base = _url(host, port)
    try:
        runs_db = db or default_db()
        with err.status("loading the pipeline (models load once, a few seconds)...", spinner="dots"):
            web = create_app(
                config_from(config),
                runs_db=runs_db if record or runs_db.exists() else None,
                record=record,
                evals_store=evals_store,
                token=token,
                limits=ServeLimits(
                    max_body_bytes=max_body_bytes,
                    max_evidence=max_evidence,
                    max_batch=max_batch,
                    concurrency=concurrency,
                    queue=queue,
                ),
                allowed_hosts=[*LOOPBACK_NAMES, host] if host in LOOPBACK_NAMES else None,
            )
        address = f"{base}/" + (f"?token={token}" if token else "")
        err.print(f"claimflow serve: {address}", markup=False, highlight=False, soft_wrap=True)
        err.print(
            f"  API: {base}/docs · runs: {runs_db if record else '(not recorded)'} · A/B store: {evals_store}"
            " · Ctrl+C stops it",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
        server = uvicorn.Server(
            uvicorn.Config(
                web,
                log_level="info" if verbose else "warning",
                access_log=verbose,
                timeout_graceful_shutdown=5,
            )
        )
        with suppress(KeyboardInterrupt):  # uvicorn shut down gracefully, then passed the Ctrl+C on
            server.run(sockets=[sock])
        err.print("claimflow serve: stopped", markup=False, highlight=False)
    finally:
        sock.close()
