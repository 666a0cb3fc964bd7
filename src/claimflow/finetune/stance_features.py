"""Fit the stance-features veracity classifier: a logistic regression over a claim's stance summary.

Input: JSON files of scored claims, ``{set_name: {"claims": [{"id", "gold", "stance": [P(label) per
sentence], "relevance": [P(relevant) per sentence] | null}]}, "meta": {"artifact": ...}}``, as
``benchmarks/veracity_stances.py score --split train`` writes them (the stance model's outputs on
train splits; the gold label is the target only, never a feature). Output: ``model.json`` (labels,
feature names, scaler, coefficients; read by
:class:`~claimflow.predictors.stance_aggregate.StanceFeatureClassifier`) and ``provenance.json``.

    python -m claimflow.finetune.stance_features --scored runs/bench/veracity-train/*.json \\
        --out src/claimflow/artifacts/veracity-stance-features
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from claimflow.errors import InputError
from claimflow.predictors.stance_aggregate import FEATURE_NAMES, scored_stances, stance_features
from claimflow.provenance import stamp

__all__ = ["fit_stance_features", "load_scored"]


def load_scored(paths: Sequence[Path]) -> tuple[list[list[float]], list[str], dict[str, Counter[str]], list[str]]:
    """Features, targets, label counts per set and the stance artifacts the files were scored with."""
    x: list[list[float]] = []
    y: list[str] = []
    counts: dict[str, Counter[str]] = {}
    artifacts: list[str] = []
    for path in paths:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read scored claims {path}: {exc}") from exc
        artifacts.append(str(data.get("meta", {}).get("artifact")))
        for set_name, record in data.items():
            if set_name == "meta":
                continue
            for claim in record["claims"]:
                stances = scored_stances(claim["stance"], claim.get("relevance"))
                x.append(stance_features(stances, "SUPPORT", "REFUTE"))
                y.append(str(claim["gold"]))
                counts.setdefault(set_name, Counter())[str(claim["gold"])] += 1
    if len(set(y)) < 2:
        raise InputError(f"the scored claims hold fewer than two labels: {sorted(set(y))}")
    return x, y, counts, artifacts


def _weights_digest(artifact: Path) -> str | None:
    """sha256 over the stance artifact's tensors (the features depend on exactly those weights)."""
    files = sorted(artifact.glob("*.safetensors")) if artifact.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fit_stance_features(scored: Sequence[Path], out: Path, *, c: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Fit (standardize + class-balanced multinomial logistic regression) and write the artifact."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y, counts, artifacts = load_scored(scored)
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(scaler.transform(x), y)
    labels = [str(label) for label in model.classes_]
    coef = model.coef_.tolist()
    intercept = model.intercept_.tolist()
    if len(labels) == 2:  # sklearn's binary form: one row for classes_[1]; write it as two softmax rows
        coef = [[-w / 2 for w in coef[0]], [w / 2 for w in coef[0]]]
        intercept = [-intercept[0] / 2, intercept[0] / 2]
    body = {
        "labels": labels,
        "features": list(FEATURE_NAMES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": coef,
        "intercept": intercept,
    }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(body, indent=1)
    (out / "model.json").write_text(text, encoding="utf-8")
    provenance = {
        "kind": "stance_features_classifier",
        "labels": labels,
        "features": list(FEATURE_NAMES),
        "model": f"StandardScaler + LogisticRegression(C={c}, class_weight='balanced', multinomial)",
        "stance_model": [{"artifact": a, "weights_sha256": _weights_digest(Path(a))} for a in artifacts],
        "train_claims": {name: dict(counter) for name, counter in counts.items()},
        "model_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "gold_labels_in_inputs": False,
        **stamp(),
        "reproduce": "python -m claimflow.finetune.stance_features --scored <the files above> --out <dir>",
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return provenance


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scored", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    args = parser.parse_args(argv)
    provenance = fit_stance_features(args.scored, args.out, c=args.c)
    print(json.dumps({k: provenance[k] for k in ("labels", "train_claims", "model_sha256")}, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
