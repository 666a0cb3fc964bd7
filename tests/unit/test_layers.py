"""Layers point one way (docs/architecture.md): a static check of every import in ``src/claimflow``,
including imports inside functions and under ``if TYPE_CHECKING:``.

A *unit* is a top-level module or subpackage of ``claimflow`` (``graphs`` is ``claimflow.graphs``
with everything under it). The ``cli`` package and the package's ``__init__`` (the public facade)
form one unit, ``entry``. The layers, lowest first, as the code has them:

    0  _version  types  errors        value types (and their strict base model) and the exception tree
    1  io  torch_scope                reading input and YAML files, writing outputs: clear errors naming the file;
                                      torch's thread count and seed, set around a component's own work only
    2  config  provenance             typed config (read through io), the version / git-commit stamp
    3  models                         the model store: named local models -> verified files
    4  llm                            backends behind one protocol (the factory resolves models)
    5  prompts  verbalizers           templates and demos; label words -> distributions
    6  predictors                     the classifiers and generators a node calls
    7  graphs                         state, trace channel, trace store, nodes, build
    8  verifier                       the public runtime: Verifier, verify()
    9  batch  evals  debug            over the runtime: JSONL batches, A/B evaluation, tools over recorded runs
   10  finetune  batch_ray  serve     trainers: evals' data and metrics; distill runs the Verifier with batch's resume;
                                      batch and A/B runs on a Ray cluster (their resume rules, ray imported lazily);
                                      the local app and HTTP API (FastAPI) over the runtime, debug and evals
   11  entry                          cli/ (typer apps) and claimflow/__init__.py (nothing inside imports it)

A unit may import its own modules and the units of *lower* layers, never a unit of its own layer or
above: units on one layer are independent of each other. ``evals`` needs nothing above
``predictors`` today; it sits above the runtime so that the core can never come to depend on
evaluation code. A new top-level module must be given a layer here.

Private names (one leading underscore, not dunder) stay inside the unit that defines them: a private
module or name of ``claimflow.graphs.nodes`` may be used anywhere in ``claimflow.graphs``, one of
``claimflow.verifier`` only there. Private modules of the root package (``claimflow._version``) belong
to the whole package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "claimflow"
SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "types", "errors"),
    ("io", "torch_scope"),
    ("config", "provenance"),
    ("models",),
    ("llm",),
    ("prompts", "verbalizers"),
    ("predictors",),
    ("graphs",),
    ("verifier",),
    ("batch", "evals", "debug"),
    ("finetune", "batch_ray", "serve"),
    ("entry",),
)
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}

CORE = ("_version", "types", "errors", "config", "io", "torch_scope", "provenance")
CORE += ("models", "llm", "prompts", "verbalizers", "predictors", "graphs", "verifier")
ABOVE_CORE = ("batch", "evals", "debug", "finetune", "batch_ray", "serve", "entry")

LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(importing module, imported module) -> why this upward import is allowed. None today; an entry
that no longer matches an upward import fails the test, so the list cannot go stale."""

PRIVATE_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(importing module, imported private path) -> why. None today; stale entries fail the test."""

PUBLIC_API_ONLY = ("debug", "serve", "entry")
"""Units that use the runtime through its public API only: no ``obj._name`` on anything but
``self`` / ``cls`` (a module-level private import is caught by the import rule)."""


@dataclass(frozen=True)
class Import:
    importer: str
    path: str
    """The dotted path imported: a module, or ``module.name`` for ``from module import name``."""
    target: str
    """The claimflow module that path lies in (the longest prefix that is a module)."""
    line: int

    def where(self) -> str:
        return f"{self.importer}:{self.line} imports {self.path}"


@cache
def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def unit(module: str) -> str:
    if module == PACKAGE:
        return "entry"
    top = module.split(".")[1]
    return "entry" if top == "cli" else top


def _target(path: str) -> str:
    parts = path.split(".")
    while ".".join(parts) not in modules():
        parts.pop()
    return ".".join(parts)


def _imports_of(module: str, file: Path) -> list[Import]:
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            paths = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base += [node.module] if node.module else []
                module_name = ".".join(base)
            else:
                module_name = node.module or ""
            paths = [module_name if alias.name == "*" else f"{module_name}.{alias.name}" for alias in node.names]
        else:
            continue
        for path in paths:
            if path == PACKAGE or path.startswith(PACKAGE + "."):
                out.append(Import(module, path, _target(path), node.lineno))
    return out


@cache
def imports() -> tuple[Import, ...]:
    return tuple(imp for module, file in modules().items() for imp in _imports_of(module, file))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_scope(path: str) -> str | None:
    """The package or module a private path belongs to: ``claimflow.X`` for a private part under
    ``claimflow.X``, ``claimflow`` itself for a private module of the root package; None if public."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[: min(i, 2)])
    return None


def _inside(module: str, scope: str) -> bool:
    return module == scope or module.startswith(scope + ".")


# --- the checks ------------------------------------------------------------------------------------


def test_the_scan_sees_the_package() -> None:
    found = {(imp.importer, imp.path) for imp in imports()}
    assert ("claimflow.verifier", "claimflow.graphs.build.build_graph") in found
    assert ("claimflow.cli.eval", "claimflow.provenance.git_commit") in found  # inside a function
    assert ("claimflow.cli.debug", "claimflow.verifier.TracedRun") in found  # under TYPE_CHECKING
    assert unit("claimflow.cli.finetune") == unit("claimflow.cli") == unit("claimflow") == "entry"


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in modules()}
    assert sorted(units - RANK.keys()) == [], "give each new top-level module or subpackage a layer in LAYERS"
    assert sorted(RANK.keys() - units) == [], "LAYERS names units that no longer exist"


def test_imports_point_down_only() -> None:
    upward = [
        imp
        for imp in imports()
        if unit(imp.importer) != unit(imp.target) and RANK[unit(imp.target)] >= RANK[unit(imp.importer)]
    ]
    bad = [
        f"{imp.where()} ({unit(imp.importer)}, layer {RANK[unit(imp.importer)]} -> "
        f"{unit(imp.target)}, layer {RANK[unit(imp.target)]})"
        for imp in upward
        if (imp.importer, imp.target) not in LAYER_EXCEPTIONS
    ]
    assert bad == []
    stale = set(LAYER_EXCEPTIONS) - {(imp.importer, imp.target) for imp in upward}
    assert sorted(stale) == []


def test_the_core_never_imports_the_tools_above_it() -> None:
    assert max(RANK[u] for u in CORE) < min(RANK[u] for u in ABOVE_CORE)
    bad = [imp.where() for imp in imports() if unit(imp.importer) in CORE and unit(imp.target) in ABOVE_CORE]
    assert bad == []


def test_private_names_stay_inside_their_unit() -> None:
    crossing = []
    for imp in imports():
        scope = _private_scope(imp.path)
        if scope is not None and not _inside(imp.importer, scope):
            crossing.append(imp)
    bad = [imp.where() for imp in crossing if (imp.importer, imp.path) not in PRIVATE_EXCEPTIONS]
    assert bad == []
    stale = set(PRIVATE_EXCEPTIONS) - {(imp.importer, imp.path) for imp in crossing}
    assert sorted(stale) == []


def test_the_tools_over_the_runtime_use_its_public_api() -> None:
    bad = []
    for module, file in modules().items():
        if unit(module) not in PUBLIC_API_ONLY:
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            bad.append(f"{module}:{node.lineno} uses {ast.unparse(node)}")
    assert bad == []


def test_the_private_rule_itself() -> None:
    assert _private_scope("claimflow.verifier.Verifier") is None
    assert _private_scope("claimflow._version.__version__") == "claimflow"
    assert _private_scope("claimflow.verifier._git_commit") == "claimflow.verifier"
    assert _private_scope("claimflow.graphs.nodes._instrument.instrumented") == "claimflow.graphs"
    assert _inside("claimflow.graphs.build", "claimflow.graphs")
    assert not _inside("claimflow.finetune.lora", "claimflow.verifier")
    assert not _inside("claimflow.graphsx", "claimflow.graphs")
