"""A/B run reports: metrics with bootstrap CIs, paired tests against the baseline (Holm-corrected),
confusion matrices, calibration plots and per-item disagreements, as Markdown and as one
self-contained HTML file (plots inlined as PNG data URIs, no external assets). The HTML page is a
Jinja2 template (``templates/ab_report.html.j2``, package data) rendered with autoescape."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import jinja2
import numpy as np

from claimflow.evals.ab import ABSpec, gold_and_predictions
from claimflow.evals.metrics import (
    MetricFn,
    accuracy,
    calibration_metrics,
    check_worthiness_metrics,
    classification_metrics,
    macro_f1,
    positive_f1,
)
from claimflow.evals.stats import bootstrap_ci, holm_correction, mcnemar_test, paired_bootstrap, permutation_test
from claimflow.evals.store import PredictionRow, RunStore
from claimflow.io import html_templates

STAGE_LABELS = {
    "check_worthiness": ("Yes", "No"),
    "evidence_stance": ("SUPPORT", "REFUTE", "NEUTRAL"),
    "veracity": ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"),
}


@dataclass
class VariantReport:
    name: str
    n: int
    metric: float
    ci: tuple[float, float]
    metrics: dict[str, Any]
    confusion: list[list[int]]
    ece: float
    brier: float
    calibration_png: str
    seconds_per_item: float
    calls_per_item: float
    tokens_per_item: float
    unparsed: int
    prompt_ref: str


@dataclass
class Comparison:
    variant: str
    difference: float
    ci: tuple[float, float]
    p_permutation: float
    p_mcnemar: float
    p_holm: float
    reject: bool


@dataclass
class Report:
    spec: ABSpec
    run_ids: list[str]
    labels: tuple[str, ...]
    metric_name: str
    variants: list[VariantReport]
    comparisons: list[Comparison]
    disagreements: list[tuple[str, str, dict[str, str | None]]]


def _metric_fn(name: str, labels: tuple[str, ...]) -> MetricFn:
    if name == "positive_f1":
        return positive_f1(labels[0])
    if name == "macro_f1":
        return macro_f1(labels)
    return accuracy


def _calibration_png(bins: list[Any], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=100)
    centers = [(b.lower + b.upper) / 2 for b in bins if b.count]
    accs = [b.accuracy for b in bins if b.count]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.bar(centers, accs, width=1 / max(len(bins), 1), edgecolor="black", alpha=0.7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.2, bottom=0.16, right=0.96, top=0.9)  # fixed: tight_layout costs 0.1 s a plot
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def build_report(store: RunStore, run_ids: list[str]) -> Report:
    """Metrics and tests over the items every variant of the run(s) predicted."""
    specs = [ABSpec.model_validate(store.spec(r)) for r in run_ids]
    spec = specs[0]
    labels = STAGE_LABELS[spec.stage]
    metric_name = spec.main_metric
    metric = _metric_fn(metric_name, labels)
    rows_by_variant: dict[str, dict[str, PredictionRow]] = {}
    for run_id, run_spec in zip(run_ids, specs, strict=True):
        names = [v.name for v in run_spec.variants]
        _, run_rows = gold_and_predictions(store, run_id, names)
        for name in names:
            key = name if len(run_ids) == 1 else f"{run_id}/{name}"
            rows_by_variant[key] = {r.item_id: r for r in run_rows[name]}
    common = sorted(set.intersection(*(set(r) for r in rows_by_variant.values())))
    names = list(rows_by_variant)
    aligned = {v: [rows_by_variant[v][i] for i in common] for v in names}
    gold = [aligned[names[0]][k].gold or "" for k in range(len(common))]
    preds = {v: [r.label for r in aligned[v]] for v in names}

    variants = []
    for v in names:
        rows = aligned[v]
        cls = classification_metrics(gold, preds[v], labels)
        extra: dict[str, Any] = {"accuracy": cls.accuracy, "macro_f1": cls.macro_f1}
        if spec.stage == "check_worthiness":
            cw = check_worthiness_metrics(gold, preds[v], positive=labels[0], negative=labels[1])
            extra.update(f1_yes=cw.f1, precision_yes=cw.precision, recall_yes=cw.recall)
        cal = calibration_metrics(gold, [r.probabilities or None for r in rows], labels, n_bins=10)
        variants.append(
            VariantReport(
                name=v,
                n=len(rows),
                metric=metric(gold, preds[v]),
                ci=bootstrap_ci(gold, preds[v], metric, n_resamples=spec.bootstrap_resamples, seed=spec.seed),
                metrics=extra,
                confusion=cls.confusion_matrix,
                ece=cal.ece,
                brier=cal.brier,
                calibration_png=_calibration_png(cal.bins, v),
                seconds_per_item=float(np.mean([r.seconds for r in rows])) if rows else 0.0,
                calls_per_item=float(np.mean([r.model_calls for r in rows])) if rows else 0.0,
                tokens_per_item=float(np.mean([r.prompt_tokens for r in rows])) if rows else 0.0,
                unparsed=cls.n_unparsed,
                prompt_ref=rows[0].prompt_ref if rows else "",
            )
        )

    baseline = spec.baseline_name if spec.baseline_name in names else names[0]
    raw = []
    for v in names:
        if v == baseline:
            continue
        boot = paired_bootstrap(
            gold, preds[v], preds[baseline], metric, n_resamples=spec.bootstrap_resamples, seed=spec.seed
        )
        perm = permutation_test(
            gold, preds[v], preds[baseline], metric, n_resamples=spec.bootstrap_resamples, seed=spec.seed
        )
        mcn = mcnemar_test(gold, preds[v], preds[baseline])
        raw.append((v, boot, perm, mcn))
    holm = holm_correction({v: perm.p_value for v, _, perm, _ in raw}) if raw else None
    comparisons = [
        Comparison(
            variant=v,
            difference=boot.difference,
            ci=(boot.ci_low, boot.ci_high),
            p_permutation=perm.p_value,
            p_mcnemar=mcn.p_value,
            p_holm=holm.adjusted[k] if holm else 1.0,
            reject=holm.reject[k] if holm else False,
        )
        for k, (v, boot, perm, mcn) in enumerate(raw)
    ]
    disagreements = []
    for k, item_id in enumerate(common):
        answers = {v: preds[v][k] for v in names}
        if len(set(answers.values())) > 1:
            disagreements.append((item_id, gold[k], answers))
    return Report(spec, run_ids, labels, metric_name, variants, comparisons, disagreements)


def to_markdown(report: Report, max_disagreements: int = 30) -> str:
    m = report.metric_name
    lines = [
        f"# A/B report: {', '.join(report.run_ids)}",
        "",
        f"Stage `{report.spec.stage}`; {report.variants[0].n if report.variants else 0} items predicted by every"
        " variant;"
        f" main metric **{m}** with a {report.spec.bootstrap_resamples}-resample percentile bootstrap 95% CI"
        f" (seed {report.spec.seed}).",
        "",
        f"| variant | prompt | {m} | 95% CI | accuracy | macro-F1 | ECE | Brier | unparsed | s/item | calls/item |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report.variants:
        lines.append(
            f"| {v.name} | `{v.prompt_ref}` | {v.metric:.4f} | [{v.ci[0]:.4f}, {v.ci[1]:.4f}] | "
            f"{v.metrics['accuracy']:.4f} | {v.metrics['macro_f1']:.4f} | {v.ece:.4f} | {v.brier:.4f} | {v.unparsed} | "
            f"{v.seconds_per_item:.3f} | {v.calls_per_item:.2f} |"
        )
    if report.comparisons:
        lines += [
            "",
            f"Paired comparisons against **{report.spec.baseline_name}** (difference = variant − baseline; "
            "p-values: approximate randomization on the main metric, McNemar on accuracy; Holm across variants):",
            "",
            f"| variant | Δ {m} | 95% CI (paired bootstrap) | p (perm.) | p (McNemar) | p (Holm) | "
            "significant at 0.05 |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in report.comparisons:
            lines.append(
                f"| {c.variant} | {c.difference:+.4f} | [{c.ci[0]:+.4f}, {c.ci[1]:+.4f}] | {c.p_permutation:.4f} | "
                f"{c.p_mcnemar:.4f} | {c.p_holm:.4f} | {'yes' if c.reject else 'no'} |"
            )
    lines += ["", "## Confusion matrices (rows: gold, columns: predicted)", ""]
    for v in report.variants:
        lines += [f"**{v.name}**", "", "| gold \\ pred | " + " | ".join(report.labels) + " |"]
        lines.append("|---" * (len(report.labels) + 1) + "|")
        lines += [
            f"| {g} | " + " | ".join(str(x) for x in row) + " |"
            for g, row in zip(report.labels, v.confusion, strict=True)
        ]
        lines.append("")
    lines += [f"## Disagreements ({len(report.disagreements)} items; first {max_disagreements})", ""]
    names = [v.name for v in report.variants]
    lines += ["| item | gold | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for item_id, gold, answers in report.disagreements[:max_disagreements]:
        lines.append(f"| {item_id} | {gold} | " + " | ".join(str(answers[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


@cache
def _templates() -> jinja2.Environment:
    env = html_templates("claimflow.evals")
    env.globals["zip"] = partial(zip, strict=True)
    return env


def to_html(report: Report, max_disagreements: int = 100) -> str:
    """One self-contained page: the Markdown content as HTML tables plus the calibration plots."""
    return (
        _templates()
        .get_template("ab_report.html.j2")
        .render(report=report, names=[v.name for v in report.variants], max_disagreements=max_disagreements)
    )
