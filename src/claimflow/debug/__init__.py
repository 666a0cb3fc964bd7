"""Tools over recorded runs: reading them back, replay (time travel), terminal views, offline graph
rendering and the HTML run report.

This package sits above the public runtime: it uses :class:`~claimflow.verifier.Verifier`'s public
API (``Verifier``, ``TracedRun``, ``Verifier.run_recorded``, ``graph``) and the core's trace channel
(:mod:`claimflow.graphs.trace`) and runs database (:mod:`claimflow.graphs.trace_store`); nothing in
the core imports it.

Modules: ``history`` (a stored run's checkpoints, final state and report page), ``replay`` (fork a
stored run with edited state or other prompt versions), ``render`` (graph layout → SVG / PNG / DOT /
HTML, no web service), ``text`` (terminal views), ``report_html`` (one self-contained page per run)
and ``studio`` (the factory ``langgraph.json`` points at).
"""
