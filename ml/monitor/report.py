"""The embedded-mode monitoring report: Evidently's page, our plots, one index page."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from ml.monitor.drift import DriftConfig, DriftResult, detect, evidently_report_html

TOP_FEATURES = 3


def write_monitoring_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: Path,
    config: DriftConfig | None = None,
    result: DriftResult | None = None,
) -> Path:
    """Write the drift report for one comparison into ``out_dir``.

    Writes ``evidently_drift.html`` (Evidently's own report, with our tests and corrected
    thresholds), ``pvalues.png`` (each column's p-value against the corrected threshold),
    ``histograms.png`` (reference vs current for the most drifted features), ``score.png`` (the
    predicted-score distributions, when a score is present) and ``index.html`` linking them.

    Args:
        reference: The reference window.
        current: The current window.
        out_dir: Folder to write into (created).
        config: Drift settings; defaults to :class:`DriftConfig`.
        result: A :func:`detect` result on the same frames, to avoid testing twice.

    Returns:
        The path of ``index.html``.
    """
    config = config or DriftConfig()
    result = result or detect(reference, current, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evidently_report_html(reference, current, out_dir / "evidently_drift.html", config, result)
    images = [_pvalue_plot(result, out_dir / "pvalues.png")]
    images.append(_histograms(reference, current, result, out_dir / "histograms.png"))
    if result.prediction is not None:
        column = result.prediction.column
        images.append(_score_plot(reference[column], current[column], out_dir / "score.png"))
    index = out_dir / "index.html"
    index.write_text(_index_html(result, [p.name for p in images]))
    return index


def _pvalue_plot(result: DriftResult, path: Path) -> Path:
    from matplotlib.figure import Figure  # the OO API needs no GUI backend

    columns = sorted(result.columns, key=lambda c: c.p_value)
    fig = Figure(figsize=(8, 0.35 * len(columns) + 1.5))
    ax = fig.subplots()
    pvalues = np.clip([c.p_value for c in columns], 1e-300, 1)
    colors = ["#c0392b" if c.drifted else "#7f8c8d" for c in columns]
    ax.barh([c.column for c in columns], -np.log10(pvalues), color=colors)
    ax.axvline(-np.log10(result.threshold), color="black", linestyle="--", label="corrected")
    ax.axvline(-np.log10(result.alpha), color="grey", linestyle=":", label=f"alpha={result.alpha}")
    ax.invert_yaxis()
    ax.set_xlabel("-log10(p-value); right of the dashed line = drifted")
    ax.set_title(f"Per-column drift tests ({result.correction} correction)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _histograms(
    reference: pd.DataFrame, current: pd.DataFrame, result: DriftResult, path: Path
) -> Path:
    from matplotlib.figure import Figure

    ranked = sorted(result.feature_pvalues, key=result.feature_pvalues.__getitem__)
    top = ranked[:TOP_FEATURES]
    fig = Figure(figsize=(4 * len(top), 3.2))
    for ax, column in zip(np.atleast_1d(fig.subplots(1, len(top))), top, strict=True):
        values = pd.concat([reference[column], current[column]]).dropna()
        bins = np.histogram_bin_edges(values.clip(*values.quantile([0.005, 0.995])), bins=30)
        for frame, label in ((reference, "reference"), (current, "current")):
            ax.hist(
                frame[column].dropna(), bins=bins.tolist(), density=True, alpha=0.5, label=label
            )
        ax.set_title(f"{column} (p={result.feature_pvalues[column]:.2g})", fontsize=9)
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _score_plot(reference: pd.Series, current: pd.Series, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41)
    ax.hist(reference, bins=bins.tolist(), density=True, alpha=0.5, label="reference")
    ax.hist(current, bins=bins.tolist(), density=True, alpha=0.5, label="current")
    ax.set_xlabel("predicted default probability")
    ax.set_title("Prediction score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _index_html(result: DriftResult, images: list[str]) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(c.column)}</td><td>{c.role}</td><td>{c.method}</td>"
        f"<td>{c.p_value:.3g}</td><td>{'drifted' if c.drifted else ''}</td></tr>"
        for c in result.columns
    )
    figures = "\n".join(f'<p><img src="{name}" alt="{name}"></p>' for name in images)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}
td,th{{padding:2px 10px;text-align:left}}</style></head>
<body><h1>Drift report</h1>
<p><b>{html.escape(result.verdict())}</b></p>
<p>{result.n_reference} reference rows, {result.n_current} current rows; corrected p-value
threshold {result.threshold:.3g} ({result.correction}, alpha={result.alpha}).
<a href="evidently_drift.html">Evidently's full report</a></p>
<table><tr><th>column</th><th>role</th><th>test</th><th>p-value</th><th></th></tr>
{rows}</table>
{figures}
</body></html>
"""
