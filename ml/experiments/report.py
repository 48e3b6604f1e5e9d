"""The comparison report: ROC overlays, an interval plot, a table; written and logged to MLflow.

The HTML page lands under ``build/experiments/compare/``, where ``mlops docs build`` picks it up
for the report site; the same folder is logged as the artifacts of a run in the
``run-comparisons`` experiment, tagged with the compared run ids.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ml.experiments.compare import COMPARISONS_EXPERIMENT, Comparison

_METRIC_SIGN = {"roc_auc": 1, "pr_auc": 1, "accuracy": 1, "brier": -1, "log_loss": -1}


def write_report(comparison: Comparison, out_dir: Path) -> Path:
    """Write ``compare.html``, ``roc.png``, ``intervals.png`` and ``compare.json``; return the
    HTML page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(comparison, out_dir / "roc.png")
    plot_intervals(comparison, out_dir / "intervals.png")
    (out_dir / "compare.json").write_text(json.dumps(comparison.to_dict(), indent=1) + "\n")
    page = out_dir / "compare.html"
    page.write_text(_html(comparison))
    return page


def log_report(comparison: Comparison, out_dir: Path) -> str:
    """Log the report folder as a run of the comparisons experiment; return its run id."""
    import mlflow

    names = [r.name for r in comparison.runs]
    mlflow.set_experiment(COMPARISONS_EXPERIMENT)
    tags = {
        "comparison.runs": ",".join(r.run_id for r in comparison.runs),
        "comparison.training_set_sha256": comparison.runs[0].training_set_sha256,
    }
    with mlflow.start_run(run_name=" vs ".join(names)[:250], tags=tags) as run:
        mlflow.log_params({"threshold": comparison.threshold, "alpha": comparison.alpha})
        for pair in comparison.pairs:
            for test in pair.tests:
                key = f"{pair.challenger[:8]}.{test.metric}"
                mlflow.log_metrics({f"{key}.difference": test.difference,
                                    f"{key}.p_adjusted": test.p_adjusted})  # fmt: skip
        mlflow.log_artifacts(str(out_dir), artifact_path="comparison")
    return run.info.run_id


def plot_roc(comparison: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figure, axis = plt.subplots(figsize=(5, 5))
    for run, score in zip(comparison.runs, comparison.scores, strict=True):
        fpr, tpr, _ = roc_curve(comparison.labels, score)
        axis.plot(fpr, tpr, label=run.name)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on holdout")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_intervals(comparison: Comparison, path: Path) -> None:
    """Each difference (challenger - baseline) with its interval, signed so right is better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {r.run_id: r.name for r in comparison.runs}
    rows = [(f"{names[p.challenger]}: {t.metric}", t) for p in comparison.pairs for t in p.tests]
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for i, (_, t) in enumerate(rows):
        sign = _METRIC_SIGN.get(t.metric, 1)
        low, high = sorted((sign * t.ci_low, sign * t.ci_high))
        color = "tab:green" if t.significant and sign * t.difference > 0 else (
            "tab:red" if t.significant else "tab:grey")  # fmt: skip
        axis.plot([low, high], [i, i], color=color, linewidth=2)
        axis.plot(sign * t.difference, i, "o", color=color)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(rows)), [label for label, _ in rows])
    axis.set_xlabel(f"improvement over {names[comparison.pairs[0].baseline]} (right is better)")
    axis.set_title(f"{1 - comparison.alpha:.0%} intervals; colour = significant after Holm")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _html(comparison: Comparison) -> str:
    names = {r.run_id: r.name for r in comparison.runs}
    rows = []
    for pair in comparison.pairs:
        for t in pair.tests:
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                    names[pair.challenger], t.metric, t.method, f"{t.a:.4f}", f"{t.b:.4f}",
                    f"{t.difference:+.4f}", f"[{t.ci_low:+.4f}, {t.ci_high:+.4f}]",
                    f"{t.p_value:.4g}", f"{t.p_adjusted:.4g}", "yes" if t.significant else "no",
                )) + "</tr>"
            )  # fmt: skip
    runs = "".join(
        f"<li><code>{r.run_id}</code> {html.escape(r.name)}</li>" for r in comparison.runs
    )
    header = "".join(
        f"<th>{h}</th>"
        for h in ("run", "metric", "test", "baseline", "run", "difference", "interval",
                  "p", "p (Holm)", "significant")
    )  # fmt: skip
    sha = comparison.runs[0].training_set_sha256
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Run comparison</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}}
td,th{{padding:.2rem .5rem;border-bottom:1px solid #ddd;text-align:left}}</style></head>
<body><h1>Run comparison</h1>
<p>Baseline first; each other run is compared with it on the same {len(comparison.labels)}
holdout rows (training set <code>{sha[:16]}</code>). Decision threshold {comparison.threshold};
Holm-corrected at family-wise alpha {comparison.alpha}.</p>
<ul>{runs}</ul>
<img src="roc.png" alt="ROC curves"> <img src="intervals.png" alt="Difference intervals">
<table><tr>{header}</tr>{"".join(rows)}</table>
<p>Positive rate on holdout: {float(np.mean(comparison.labels)):.3f}.</p>
</body></html>
"""
