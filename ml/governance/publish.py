"""Publish the report site from what the cluster has: registry, model cards, drift, audit log.

``mlops docs publish`` (the governance Job) runs in a read-only-root pod: everything is written
under ``settings.build`` (``/tmp/mlops`` there). Inputs:

* the model registry at ``MLOPS_MLFLOW_TRACKING_URI``: every version's governance status, and
  the model cards logged on the versions' runs (downloaded into ``build/model_cards/``);
* the reports bucket: the drift monitor's verdicts (``DRIFT_PREFIX``) and the audit log;

then :func:`ml.governance.site.build_site` renders the site and every file of it is uploaded
under ``SITE_PREFIX`` (stale files of an earlier site are removed).
"""

from __future__ import annotations

import html
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from contract.objectstore import DRIFT_PREFIX, SITE_PREFIX

if TYPE_CHECKING:
    from ml.governance.site import Site
    from ml.objectstore import Bucket
    from ml.settings import Settings

_MAX_VERDICTS = 100


@dataclass
class Published:
    site: Site
    uploaded: int
    removed: int
    warnings: list[str] = field(default_factory=list)


def publish(settings: Settings, reports: Bucket) -> Published:
    """Gather the cluster's governance facts, build the site, upload it to ``reports``."""
    from ml.governance import audit
    from ml.governance.site import build_site

    folder = settings.build / "cluster"
    folder.mkdir(parents=True, exist_ok=True)
    warnings = _registry_page(settings, folder / "registry.html")
    _drift_page(reports, folder / "drift.html")
    audit.fetch(settings.audit_log)  # the audit page reads this copy of the log of record
    site = build_site(settings)
    uploaded, removed = upload(site.out_dir, reports)
    return Published(site, uploaded, removed, warnings)


def upload(out_dir: Path, reports: Bucket, prefix: str = SITE_PREFIX) -> tuple[int, int]:
    """Put every file of ``out_dir`` under ``prefix``; delete keys the new site no longer has."""
    wanted = set()
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(out_dir).as_posix()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        reports.put_bytes(key, path.read_bytes(), kind)
        wanted.add(key)
    stale = [key for key in reports.keys(prefix) if key not in wanted]
    for key in stale:
        reports.delete(key)
    return len(wanted), len(stale)


def _registry_page(settings: Settings, page: Path) -> list[str]:
    """Status of every version, and each version's model card copied where the site finds it."""
    from ml.governance import approvals

    rows = approvals.status(settings.model_name)
    warnings = []
    for row in rows:
        warning = _download_card(settings, row.version)
        if warning:
            warnings.append(warning)
    cells = [
        (r.version, r.status, r.owner, r.approved_by, r.fairness_gate, ", ".join(r.aliases))
        for r in rows
    ]
    header = ("version", "status", "owner", "approved by", "fairness gate", "aliases")
    _write_table(page, f"Model registry: {settings.model_name}", header, cells)
    return warnings


def _download_card(settings: Settings, version: str) -> str | None:
    """Copy the card logged for ``version`` into ``build/model_cards``; a warning if it fails."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    from ml.governance.approvals import CARD_TAG

    client = MlflowClient()
    model = client.get_model_version(settings.model_name, version)
    uri = model.tags.get(CARD_TAG)
    if not uri:
        return None  # no card yet: the registry page shows the version without one
    target = settings.model_card_dir(version)
    target.mkdir(parents=True, exist_ok=True)
    try:
        download_artifacts(artifact_uri=uri.rsplit("/", 1)[0], dst_path=str(target))
    except Exception as error:  # any store error: publish the rest, say which card is missing
        return f"model card of v{version} not downloaded: {str(error).splitlines()[0][:200]}"
    folder = next((p.parent for p in target.rglob("card.json")), None)
    return None if folder else f"model card of v{version} has no card.json"


def _drift_page(reports: Bucket, page: Path) -> None:
    """The drift monitor's dated verdicts, newest first."""
    keys = sorted(
        (k for k in reports.keys(DRIFT_PREFIX) if not k.endswith("latest.json")), reverse=True
    )
    cells = []
    for key in keys[:_MAX_VERDICTS]:
        try:
            doc = json.loads(reports.get_bytes(key))
        except ValueError:
            continue
        cells.append((doc.get("at", ""), doc.get("verdict", ""), doc.get("rows", "")))
    _write_table(page, "Drift verdicts", ("time (UTC)", "verdict", "rows"), cells)


def _write_table(page: Path, title: str, header: tuple, rows: list[tuple]) -> None:
    def row(cells, tag):
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    body = "\n".join(row(r, "td") for r in rows) or '<tr><td colspan="9">none yet</td></tr>'
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><table>{row(header, 'th')}\n{body}"
        "</table></body></html>\n"
    )
