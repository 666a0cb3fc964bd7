"""Seeing inside a verification: per-node traces, run storage (SQLite checkpoints), replay,
offline graph rendering and the HTML run report.

Modules: ``trace`` (what each node sent to its models and got back), ``store`` (runs database:
LangGraph SQLite checkpointer + a runs index), ``replay`` (time travel: fork a stored run with
edited state or other prompt versions), ``render`` (graph layout → SVG / PNG / DOT / HTML, no web
service), ``text`` (terminal views), ``report_html`` (one self-contained page per run) and
``studio`` (the factory ``langgraph.json`` points at).
"""
