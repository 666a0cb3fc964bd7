"""``claimflow serve``: a local, login-free app and HTTP API over the pipeline (issue #17).

:func:`create_app` builds the FastAPI app: the pipeline loaded once behind a bounded pool of model
slots (:mod:`claimflow.serve.runner`), the JSON API under ``/v1`` with a server-sent-events variant
of ``verify`` (:mod:`claimflow.serve.app`), and the browser UI (:mod:`claimflow.serve.ui`: verify,
the graph, recorded runs with their traces and replay, A/B reports, the API reference at ``/docs``).
It sits above the runtime and the tools over it (``debug``, ``evals``), which it uses through their
public API; FastAPI and uvicorn come with the ``[serve]`` extra.
"""

from __future__ import annotations

from claimflow.serve.app import ServeLimits, create_app

__all__ = ["ServeLimits", "create_app"]
