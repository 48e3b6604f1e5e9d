"""The demo's ``index.html``: one page linking every report and plot the demo produced."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLOps blueprint — demo run</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222 }}
table {{ border-collapse: collapse }}
td, th {{ padding: .25rem .75rem; border-bottom: 1px solid #ddd; text-align: left }}
code {{ background: #f4f4f4; padding: 0 .25rem }}
</style></head><body>
<h1>MLOps blueprint — demo run</h1>
<p>Seed <code>{seed}</code>, dataset snapshot <code>{snapshot}</code>.</p>
<h2>Outputs</h2><ul>{links}</ul>
<h2>Headline figures</h2><table>{rows}</table>
</body></html>
"""


def write_index(path: Path, outputs: list[tuple[str, Path]], summary: dict[str, Any]) -> Path:
    """Write ``index.html`` at ``path`` linking ``outputs`` (relative links) and key figures."""
    links = "".join(
        f'<li><a href="{html.escape(os.path.relpath(target, path.parent))}">'
        f"{html.escape(label)}</a></li>"
        for label, target in outputs
    )
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in _headline(summary)
    )
    dataset = summary.get("dataset", {})
    page = _PAGE.format(
        seed=dataset.get("seed", "?"),
        snapshot=dataset.get("snapshot_sha256", "?")[:16],
        links=links,
        rows=rows,
    )
    path.write_text(page)
    return path


def _headline(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    wanted = [
        ("dataset", "rows"), ("dataset", "quarantined"), ("training", "runs"),
        ("registry", "model_name"), ("registry", "champion_version"),
        ("registry", "champion_candidate"), ("serving", "requests"), ("serving", "errors_5xx"),
        ("serving", "rejected_4xx"), ("monitoring", "drift_detected"),
        ("retraining", "triggered"), ("retraining", "promoted"),
    ]  # fmt: skip
    return [
        (f"{section}.{key}", summary[section][key])
        for section, key in wanted
        if key in summary.get(section, {})
    ]
