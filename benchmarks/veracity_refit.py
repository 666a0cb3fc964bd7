"""Refitting the stance-features verdict on stance outputs without the stacking bias (issue #13).

    .venv/bin/python benchmarks/veracity_stances.py --out runs/bench/veracity-train score --name b \\
        --split train --only covidfact --multitask src/claimflow/artifacts/evidence-multitask --threads 1
    .venv/bin/python benchmarks/veracity_refit.py --covid-train runs/bench/veracity-train/b.json

The shipped fit (``claimflow.finetune.stance_features``) reads the stance model's outputs on SciFact
train and the Climate-FEVER train part, the very sentences that model was trained on, so their
outputs are more confident than on new claims. The unbiased data at hand: COVID-Fact train (no
COVID-Fact sentence is in the stance training) and the dev sets themselves. Each variant below is
the same standardized, class-balanced logistic regression, scored on the dev claims as ``verify``
ranks their evidence (``runs/ranked/``, see veracity_predictors.py) by 5-fold cross-validation over
the pooled dev claims (a dev claim is scored by a fit that did not see it; folds stratified by set
and label; mean over ``--seeds`` fold draws). ``+lex`` adds three lexical features (share of the
claim's content words found in its evidence, how many are not, log claim length). No gold label
reaches a feature; no test split is read.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from claimflow.config import DEFAULT_MIN_RELEVANCE
from claimflow.finetune.ranked_evidence import claims_of
from claimflow.graphs.components import shipped_artifact
from claimflow.predictors.stance_aggregate import StanceFeatureClassifier, scored_stances, stance_features

sys.path.insert(0, str(Path(__file__).parent))
from veracity_predictors import SETS, ranked_claims

STOP_WORDS = (
    "a an the of to in on for and or is are was were be been by with from at as that this it its into than then "
    "has have had not no do does did can could may might will would should their there these those which who whom "
    "what when where how about over after before between during under up out more most less such"
)
STOP = frozenset(STOP_WORDS.split())


def lexical(claim: str, evidence: list[str]) -> list[float]:
    words = [w[:6] for w in re.findall(r"[a-z0-9]+", claim.lower()) if w not in STOP]
    seen = {w[:6] for w in re.findall(r"[a-z0-9]+", " ".join(evidence).lower())}
    if not words:
        return [1.0, 0.0, 0.0]
    missing = sum(w not in seen for w in words)
    return [1 - missing / len(words), float(missing), math.log1p(len(words))]


def features(claim: dict[str, Any], text: str, evidence: list[str], lex: bool) -> list[float]:
    x = stance_features(scored_stances(claim["stance"], claim["relevance"]), "SUPPORT", "REFUTE")
    return x + lexical(text, evidence) if lex else x


def pick(p: dict[str, float], two_way: bool) -> str:
    labels = ("SUPPORTED", "REFUTED") if two_way else tuple(p)
    return max(labels, key=lambda label: p.get(label, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covid-train", type=Path, required=True, help="veracity_stances.py train scores (covidfact)")
    parser.add_argument("--ranked", type=Path, default=Path("runs/ranked"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    sets = [s for s in SETS if not (s[0] == "scifact" and s[2])]  # COVID-Fact two-way, SciFact and Climate three-way
    dev: list[tuple[int, dict[str, Any]]] = [
        (k, c) for k, (name, split, _, _) in enumerate(sets) for c in ranked_claims(args.ranked, name, split, None)
    ]
    group = np.array([k for k, _ in dev])
    gold = np.array([c["gold"] for _, c in dev])
    two_way = [sets[k][2] for k in group]
    texts = {e.id: e for e in claims_of("covidfact", "train", None)}
    train = json.loads(args.covid_train.read_text(encoding="utf-8"))["covidfact"]["claims"]
    train_gold = np.array([c["gold"] for c in train])

    def report(name: str, predictions: list[np.ndarray]) -> None:
        scores = [
            np.mean([f1_score(gold[group == k], p[group == k], average="macro") for p in predictions])
            for k in range(len(sets))
        ]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in scores) + " |")

    print(f"| fit | {' | '.join(s[3] for s in sets)} |")
    print("|---|" + "---|" * len(sets))
    shipped = StanceFeatureClassifier(shipped_artifact("veracity-stance-features"), min_relevance=DEFAULT_MIN_RELEVANCE)
    report(
        "shipped (train splits, biased; not cross-validated: no dev claim in it)",
        [
            np.array(
                [
                    pick(shipped.score(scored_stances(c["stance"], c["relevance"])).probabilities, two)
                    for (_, c), two in zip(dev, two_way, strict=True)
                ]
            )
        ],
    )
    strata = np.array([f"{k}-{y}" for k, y in zip(group, gold, strict=True)])
    for lex in (False, True):
        x = np.array([features(c, c["claim"], c["evidence"], lex) for _, c in dev])
        x_train = np.array([features(c, texts[c["id"]].claim, texts[c["id"]].evidence, lex) for c in train])
        for with_covid in (False, True):
            predictions = []
            for seed in range(args.seeds):
                pred = np.empty(len(gold), dtype=object)
                for fit, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, strata):
                    xf, yf = (
                        (np.vstack([x_train, x[fit]]), np.concatenate([train_gold, gold[fit]]))
                        if with_covid
                        else (x[fit], gold[fit])
                    )
                    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000))
                    model.fit(xf, yf)
                    for i, p in zip(held, model.predict_proba(x[held]), strict=True):
                        pred[i] = pick(dict(zip(model.classes_, p, strict=True)), two_way[i])
                predictions.append(pred)
            name = ("COVID-Fact train + " if with_covid else "") + "dev folds" + (" +lex" if lex else "")
            report(name, predictions)


if __name__ == "__main__":
    main()
