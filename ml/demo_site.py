"""The demo's ``index.html``: what happened, as a page people look at.

A timeline of the stages with their timings, the headline plots inline (drift, the A/B result,
fairness, the retraining decision), the champion's card summary, and links to every output.
Everything is local (relative links, no web fonts or scripts), so the page works offline and
from a copied folder; ``tests/integration/test_demo.py`` loads it in headless Chromium.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; color: #222;
       padding: 0 1rem }
h1 { margin-bottom: .2rem } .sub { color: #666; margin-top: 0 }
.facts { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0 }
.fact { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; min-width: 9rem }
.fact b { display: block; font-size: 1.4rem } .fact span { color: #666; font-size: .85rem }
.timeline td { padding: .15rem .5rem; white-space: nowrap }
.bar { background: #3b7dd8; height: .9rem; border-radius: 3px }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap: 1rem }
figure { margin: 0; border: 1px solid #eee; border-radius: 6px; padding: .5rem }
figure img { width: 100%; height: auto } figcaption { color: #444; font-size: .9rem }
table.kv td, table.kv th { padding: .2rem .6rem; border-bottom: 1px solid #eee; text-align: left }
.ok { color: #1a7f37 } .bad { color: #b42318 }
"""


def write_index(path: Path, outputs: list[tuple[str, Path]], summary: dict[str, Any]) -> Path:
    """Write ``index.html`` at ``path``: facts, timeline, plots, champion card, links."""
    folder = path.parent
    sections = [
        _facts(summary),
        _timeline(summary.get("timings_s", {})),
        _figures(folder, summary, outputs),
        _champion(folder, summary, outputs),
        _retraining(summary.get("retraining", {})),
        _links(folder, outputs),
    ]
    dataset = summary.get("dataset", {})
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>MLOps blueprint — demo run</title><style>{_STYLE}</style></head><body>"
        "<h1>MLOps blueprint — demo run</h1>"
        f'<p class="sub">seed <code>{dataset.get("seed", "?")}</code>, dataset snapshot '
        f"<code>{str(dataset.get('snapshot_sha256', '?'))[:16]}</code></p>"
        + "".join(sections)
        + "</body></html>\n"
    )
    path.write_text(page)
    return path


def _facts(summary: dict[str, Any]) -> str:
    dataset, serving = summary.get("dataset", {}), summary.get("serving", {})
    registry, retraining = summary.get("registry", {}), summary.get("retraining", {})
    monitoring = summary.get("monitoring", {})
    champion_after = retraining.get("champion_after") or retraining.get("champion_before")
    facts = [
        (f"{dataset.get('rows', 0):,}", f"rows ingested, {dataset.get('quarantined', 0)} bad"),
        (str(summary.get("training", {}).get("runs", "?")), "candidates trained"),
        (
            f"v{registry.get('champion_version', '?')}",
            f"first champion ({registry.get('champion_candidate', '?')})",
        ),
        (
            f"{serving.get('ok_2xx', 0)}/{serving.get('requests', 0)}",
            f"requests answered, {serving.get('errors_5xx', 0)} server errors",
        ),
        ("drift" if monitoring.get("drift_detected") else "no drift", "in live traffic"),
        (f"v{champion_after or '?'}", "champion after retraining"),
    ]
    cells = "".join(
        f'<div class="fact"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'
        for value, label in facts
    )
    return f'<div class="facts">{cells}</div>'


def _timeline(timings: dict[str, float]) -> str:
    if not timings:
        return ""
    longest = max(timings.values()) or 1.0
    rows = "".join(
        f"<tr><td>{html.escape(stage)}</td><td style='width:100%'>"
        f"<div class='bar' style='width:{100 * seconds / longest:.1f}%'></div></td>"
        f"<td>{seconds:.1f} s</td></tr>"
        for stage, seconds in timings.items()
    )
    total = sum(timings.values())
    return (
        f"<h2>Timeline ({total:.0f} s)</h2>"
        f"<table class='timeline' style='width:100%'>{rows}</table>"
    )


def _figures(folder: Path, summary: dict[str, Any], outputs: list) -> str:
    demo = folder
    champion = str(summary.get("registry", {}).get("champion_version", ""))
    card = _output(outputs, f"Model card v{champion} ")
    plots = [
        (demo / "monitoring" / "pvalues.png", "Drift: each feature's p-value vs the threshold"),
        (demo / "monitoring" / "score.png", "Drift: predicted scores, reference vs live"),
        (demo / "experiment" / "experiment.png", "A/B: champion vs challenger, labelled traffic"),
    ]
    if card is not None:
        fairness = card.parent / "plots" / "fairness_age_band.png"
        plots.append((fairness, f"Fairness of v{champion} by age band"))
    figures = "".join(
        f'<figure><img src="{html.escape(os.path.relpath(p, folder))}" alt="{html.escape(c)}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for p, c in plots
        if p.exists()
    )
    return f'<h2>What happened</h2><div class="grid">{figures}</div>' if figures else ""


def _champion(folder: Path, summary: dict[str, Any], outputs: list) -> str:
    registry = summary.get("registry", {})
    version = str(registry.get("champion_version", ""))
    card = _output(outputs, f"Model card v{version} ")
    metrics = registry.get("champion_metrics", {})
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>"
        for k, v in metrics.items()
        if k in ("roc_auc", "pr_auc", "brier", "log_loss", "precision", "recall")
    )
    facts = json.loads((card.parent / "card.json").read_text()) if card else {}
    gate = facts.get("fairness_gate") or {}
    verdict = (
        "<span class='ok'>passed</span>"
        if gate.get("passed")
        else "<span class='bad'>failed</span>: " + html.escape("; ".join(gate.get("reasons", [])))
    )
    link = (
        f' — <a href="{html.escape(os.path.relpath(card, folder))}">full model card</a>'
        if card
        else ""
    )
    return (
        f"<h2>First champion: v{html.escape(version)} "
        f"({html.escape(str(registry.get('champion_candidate', '?')))}){link}</h2>"
        f"<p>Fairness gate {verdict}. Approvals: "
        f"{html.escape(json.dumps(summary.get('governance', {}).get('approval_status', {})))}; "
        f"the pipeline's own approval: "
        f"{html.escape(str(summary.get('governance', {}).get('self_approval', '?')))}.</p>"
        f"<table class='kv'>{rows}</table>"
    )


def _retraining(retraining: dict[str, Any]) -> str:
    if not retraining:
        return ""
    auc = retraining.get("roc_auc", {})
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{value:.4f}</td><td>"
        f"{html.escape(str(retraining.get('gate', {}).get(name, '')))}</td></tr>"
        for name, value in auc.items()
        if value is not None
    )
    outcome = (
        f"v{retraining['new_version']} reviewed, approved and promoted; the running server "
        f"answered with it without a restart"
        if retraining.get("promoted")
        else "the champion stays"
    )
    return (
        "<h2>Retraining decision</h2>"
        f"<p>{html.escape(str(retraining.get('reason', '')))}</p><p><b>{outcome}</b></p>"
        f"<table class='kv'><tr><th>model</th><th>ROC AUC on the recent holdout</th>"
        f"<th>gate</th></tr>{rows}</table>"
    )


def _links(folder: Path, outputs: list[tuple[str, Path]]) -> str:
    links = "".join(
        f'<li><a href="{html.escape(os.path.relpath(target, folder))}">'
        f"{html.escape(label)}</a></li>"
        for label, target in outputs
    )
    return f"<h2>Every output</h2><ul>{links}</ul>"


def _output(outputs: list[tuple[str, Path]], prefix: str) -> Path | None:
    return next((path for label, path in outputs if label.startswith(prefix)), None)
