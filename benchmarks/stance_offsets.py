"""Do per-label offsets on the stance head's log-probabilities transfer between dev sets? (issue #13)

    .venv/bin/python benchmarks/stance_offsets.py [--threads 1]

Scores every stance pair of the evidence model's three held-out dev sets (HealthVer and
Climate-FEVER dev parts, SciFact dev: the sets of benchmarks/evidence_model.py, all pairs), then for
each set picks the offsets (SUPPORT, REFUTE; NEUTRAL fixed at 0; a 0.25 grid over [-2, 2]) that
maximise the mean macro-F1 of the other two sets and scores the held-out set with them
(leave-one-set-out). A gain on the held-out sets would make calibrated labels worth shipping.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).parent))
from evidence_model import eval_sets

from claimflow.graphs.components import shipped_artifact
from claimflow.predictors.multitask import MultitaskEncoder

LABELS = ("SUPPORT", "REFUTE", "NEUTRAL")
SETS = ("healthver", "climate_fever", "scifact")


def macro(gold: np.ndarray, logp: np.ndarray, offsets: np.ndarray) -> float:
    return float(f1_score(gold, np.argmax(logp + offsets, axis=1), average="macro", labels=[0, 1, 2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    model = MultitaskEncoder(shipped_artifact("evidence-multitask"), runtime="onnx", threads=args.threads)
    sets = eval_sets(args.data)
    data = {}
    for name in SETS:
        items = sets[name]
        probs = model.probabilities(["stance"], [(x.text_a, x.text_b) for x in items])["stance"]
        gold = np.array([LABELS.index(x.label) for x in items])
        data[name] = (gold, np.log(np.clip(np.array(probs), 1e-9, 1.0)))
    grid = [np.array([a, b, 0.0]) for a in np.arange(-2, 2.01, 0.25) for b in np.arange(-2, 2.01, 0.25)]
    print("| held-out set | pairs | macro-F1 as shipped | offsets (S, R) tuned on the other two | macro-F1 with them |")
    print("|---|---|---|---|---|")
    for held in SETS:
        others = [n for n in SETS if n != held]
        best = max(grid, key=lambda o: float(np.mean([macro(*data[n], o) for n in others])))
        gold, logp = data[held]
        print(
            f"| {held} | {len(gold)} | {macro(gold, logp, np.zeros(3)):.3f} | ({best[0]:+.2f}, {best[1]:+.2f}) | "
            f"{macro(gold, logp, best):.3f} |"
        )


if __name__ == "__main__":
    main()
