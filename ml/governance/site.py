"""The static report site: model cards, reports, lineage, audit log, stack docs (MkDocs).

:func:`build_site` collects what exists under ``build/`` — model cards (folders with a
``card.json``), HTML reports (drift, experiments, the demo index, with the files they reference)
— plus the repository's ``docs/``, writes them into a generated MkDocs project
(``<build>/site_src``) and runs ``mkdocs build`` into ``<build>/site``. The site works offline and
from ``file://``: no web fonts (``theme.font: false``), no plugins that fetch assets, plain
``.html`` URLs. Links in the stack docs that point outside ``docs/`` (to code in the repository)
become plain text, since the site does not ship the repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ml.errors import UserError
from ml.governance import audit
from ml.settings import Settings

# Folders under build/ that hold state, not reports.
_SKIP_DIRS = {"site", "site_src", "mlflow", "feature_repo", "data", "artifacts", "mlruns", "infra"}
_MAX_REPORTS = 200
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_ASSET = re.compile(r"""(?:src|href)=["']([^"'#?]+)["']""")


@dataclass
class Site:
    out_dir: Path
    source_dir: Path
    cards: list[dict] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def build_site(
    settings: Settings, out_dir: Path | None = None, docs_dir: Path | None = None
) -> Site:
    """Render everything found under ``settings.build`` and ``docs/`` into a static site.

    Args:
        settings: where ``build/`` and the repository root are.
        out_dir: the site (default ``<build>/site``).
        docs_dir: the stack docs (default ``<root>/docs``).

    Returns:
        What went in, and MkDocs' warnings.
    """
    out_dir = (out_dir or settings.build / "site").resolve()
    source = settings.build / "site_src"
    shutil.rmtree(source, ignore_errors=True)
    pages = source / "docs"
    pages.mkdir(parents=True)
    site = Site(out_dir, source)
    skip = {out_dir, source.resolve()}
    site.cards = _copy_cards(settings.build, pages / "model-cards", skip)
    site.reports = _copy_reports(settings.build, pages / "reports", skip)
    site.docs = _copy_docs(docs_dir or settings.root / "docs", pages / "stack")
    _lineage_page(site.cards, pages)
    _audit_page(settings.build / "audit" / "audit.jsonl", pages)
    _index_pages(site, pages)
    _mkdocs_config(site, source)
    site.warnings = _run_mkdocs(source, out_dir)
    return site


# --- content -------------------------------------------------------------------------------


def _walk(build: Path, pattern: str, skip: set[Path]) -> list[Path]:
    found = []
    for path in sorted(build.rglob(pattern)):
        relative = path.relative_to(build)
        if any(part in _SKIP_DIRS for part in relative.parts[:-1]) or any(
            path.resolve().is_relative_to(s) for s in skip
        ):
            continue
        found.append(path)
    return found


def _copy_cards(build: Path, target: Path, skip: set[Path]) -> list[dict]:
    cards = []
    for card_json in _walk(build, "card.json", skip):
        card = json.loads(card_json.read_text())
        slug = f"{card['model_name']}-v{card['version']}"
        folder = target / slug
        if folder.exists():  # the same version written twice: keep the newest
            continue
        shutil.copytree(card_json.parent, folder)
        (folder / "model_card.md").rename(folder / "index.md")
        cards.append({**card, "slug": slug})
    return sorted(cards, key=lambda c: (c["model_name"], -int(c["version"])))


def _copy_reports(build: Path, target: Path, skip: set[Path]) -> list[str]:
    reports = [p for p in _walk(build, "*.html", skip) if p.name != "model_card.html"]
    copied = []
    for path in reports[:_MAX_REPORTS]:
        relative = path.relative_to(build)
        _copy_with_assets(path, build, target / relative)
        copied.append(relative.as_posix())
    return copied


def _copy_with_assets(path: Path, build: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, destination)
    for reference in _ASSET.findall(path.read_text(errors="ignore")):
        if "://" in reference or reference.startswith(("/", "data:", "mailto:")):
            continue
        asset = (path.parent / reference).resolve()
        if asset.is_file() and asset.is_relative_to(build.resolve()):
            copy = destination.parent / reference
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(asset, copy)


def _copy_docs(docs_dir: Path, target: Path) -> list[str]:
    if not docs_dir.is_dir():
        return []
    shutil.copytree(docs_dir, target)
    pages = []
    for page in sorted(target.rglob("*.md")):
        page.write_text(_localise_links(page.read_text(), page, target))
        pages.append(page.relative_to(target).as_posix())
    return pages


def _localise_links(text: str, page: Path, root: Path) -> str:
    """Keep links that resolve inside the copied docs; turn the others into plain text."""

    def replace(match: re.Match) -> str:
        bang, label, url = match.groups()
        if re.match(r"^[a-z]+:", url) or url.startswith("#"):
            return match.group(0)
        target = (page.parent / url.split("#")[0]).resolve()
        if target.exists() and target.is_relative_to(root.resolve()):
            return match.group(0)
        return f"{label} (`{url}`)" if not bang else f"*(image not in the site: `{url}`)*"

    return _LINK.sub(replace, text)


def _lineage_page(cards: list[dict], pages: Path) -> None:
    lines = [
        "# Lineage",
        "",
        "Every registered model version traced to its run, feature service, training set, "
        "source snapshot, code commit and locked environment (from the versions' "
        "`lineage.*` tags, as recorded in their model cards).",
        "",
    ]
    if cards:
        plot_lineage(cards, pages / "lineage.png")
        lines += ["![Lineage graph](lineage.png)", "", _lineage_table(cards)]
    else:
        lines.append("No model cards were found under `build/`: run `mlops demo` first.")
    (pages / "lineage.md").write_text("\n".join(lines) + "\n")


def _lineage_table(cards: list[dict]) -> str:
    rows = [
        "| model version | status | run | feature service | training set | snapshot | commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        lineage = c.get("lineage", {})
        rows.append(
            f"| [{c['model_name']} v{c['version']}](model-cards/{c['slug']}/index.md) "
            f"| {c.get('status', '-')} | `{c['run_id'][:12]}` "
            f"| {lineage.get('feature_service', '-')} "
            f"| `{lineage.get('training_set_sha256', '-')[:12]}` "
            f"| `{lineage.get('snapshot_sha256', '-')[:12]}` "
            f"| `{lineage.get('git_commit', '-')[:12]}` |"
        )
    return "\n".join(rows)


def plot_lineage(cards: list[dict], path: Path) -> Path:
    """Left to right: snapshot, feature service → training set, commit, lock → run → version."""
    from matplotlib.figure import Figure

    nodes, edges = _lineage_graph(cards)
    columns: dict[int, list[str]] = {}
    for node, (column, _) in nodes.items():
        columns.setdefault(column, []).append(node)
    height = max(len(v) for v in columns.values())
    figure = Figure(figsize=(13, 1.2 + 0.8 * height), layout="constrained")
    ax = figure.subplots()
    position = {
        node: (column * 3.2, height - row - (height - len(members)) / 2)
        for column, members in columns.items()
        for row, node in enumerate(members)
    }
    labels = {
        node: ax.text(x, y, nodes[node][1], ha="center", va="center", fontsize=8, zorder=3,
                      bbox={"boxstyle": "round", "facecolor": _COLORS[nodes[node][0]],
                            "edgecolor": "gray"})
        for node, (x, y) in position.items()
    }  # fmt: skip
    figure.canvas.draw()  # lays out the boxes so the arrows can be clipped to their edges
    for source, target in sorted(edges):
        ax.annotate(
            "", xy=position[target], xytext=position[source],
            arrowprops={"arrowstyle": "->", "color": "gray",
                        "patchA": labels[source].get_bbox_patch(),
                        "patchB": labels[target].get_bbox_patch()},
        )  # fmt: skip
    ax.set_xlim(-1.6, 3 * 3.2 + 1.6)
    ax.set_ylim(0, height + 1)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


_COLORS = {0: "#e8f0fe", 1: "#e6f4ea", 2: "#fef7e0", 3: "#fce8e6"}


def _lineage_graph(cards: list[dict]) -> tuple[dict[str, tuple[int, str]], set[tuple[str, str]]]:
    nodes: dict[str, tuple[int, str]] = {}
    edges: set[tuple[str, str]] = set()
    for c in cards:
        lin = c.get("lineage", {})
        ids = {
            "snapshot": (0, f"source snapshot\n{lin.get('snapshot_sha256', '?')[:10]}"),
            "service": (0, f"feature service\n{lin.get('feature_service', '?')}"),
            "training": (1, f"training set\n{lin.get('training_set_sha256', '?')[:10]}"),
            "commit": (1, f"git commit\n{lin.get('git_commit', '?')[:10]}"),
            "lock": (1, f"uv.lock\n{lin.get('lock_sha256', '?')[:10]}"),
            "run": (2, f"MLflow run {c['run_id'][:8]}\n{c.get('run_name', '')}"),
            "version": (3, f"{c['model_name']} v{c['version']}\n{c.get('status', '')}"),
        }
        key = {kind: f"{kind}:{label}" for kind, (_, label) in ids.items()}
        for kind, value in ids.items():
            nodes.setdefault(key[kind], value)
        edges |= {
            (key[a], key[b])
            for a, b in (
                ("snapshot", "training"),
                ("service", "training"),
                ("training", "run"),
                ("commit", "run"),
                ("lock", "run"),
                ("run", "version"),
            )
        }
    return nodes, edges


def _audit_page(log: Path, pages: Path) -> None:
    lines = ["# Audit log", ""]
    if not log.exists():
        lines.append("No audit log yet (`build/audit/audit.jsonl`).")
    else:
        lines += [
            f"**{audit.verify(log).summary()}.**",
            "",
            "| # | time (UTC) | who | action | subject | details |",
            "|---|---|---|---|---|---|",
        ]
        for e in audit.read(log)[-200:]:
            details = json.dumps(e["details"], sort_keys=True).replace("|", "\\|")
            lines.append(
                f"| {e['seq']} | {e['timestamp'][:19]} | {e['actor']} | {e['action']} "
                f"| {e['subject']} | {details} |"
            )
    (pages / "audit.md").write_text("\n".join(lines) + "\n")


def _index_pages(site: Site, pages: Path) -> None:
    cards = ["# Model cards", ""]
    if site.cards:
        cards += [
            "| model version | status | fairness gate | ROC AUC | HTML |",
            "|---|---|---|---|---|",
        ]
        for c in site.cards:
            gate = "passed" if c["fairness_gate"]["passed"] else "**failed**"
            cards.append(
                f"| [{c['model_name']} v{c['version']}]({c['slug']}/index.md) | {c['status']} "
                f"| {gate} | {c['metrics'].get('roc_auc', float('nan')):.3f} "
                f"| [standalone]({c['slug']}/model_card.html) |"
            )
    else:
        cards.append("No model cards were found under `build/`: run `mlops demo` first.")
    (pages / "model-cards").mkdir(exist_ok=True)
    (pages / "model-cards" / "index.md").write_text("\n".join(cards) + "\n")
    reports = [
        "# Reports",
        "",
        "HTML reports found under `build/` (drift, experiments, demo).",
        "",
    ]
    reports += [f"- [{r}]({r})" for r in site.reports] or ["None yet: run `mlops demo`."]
    (pages / "reports").mkdir(exist_ok=True)
    (pages / "reports" / "index.md").write_text("\n".join(reports) + "\n")
    home = [
        "# MLOps blueprint: reports",
        "",
        f"- [Model cards](model-cards/index.md): {len(site.cards)} model version(s)",
        f"- [Reports](reports/index.md): {len(site.reports)} HTML report(s)",
        "- [Lineage](lineage.md): data → features → run → model version",
        "- [Audit log](audit.md): governance decisions, hash-chain verified",
        *[f"- [{d}](stack/{d})" for d in site.docs],
    ]
    (pages / "index.md").write_text("\n".join(home) + "\n")


# --- MkDocs --------------------------------------------------------------------------------


def _mkdocs_config(site: Site, source: Path) -> None:
    cards = [
        {f"{c['model_name']} v{c['version']}": f"model-cards/{c['slug']}/index.md"}
        for c in site.cards
    ]
    nav: list = [
        {"Home": "index.md"},
        {"Model cards": [{"Overview": "model-cards/index.md"}, *cards]},
        {"Reports": "reports/index.md"},
        {"Lineage": "lineage.md"},
        {"Audit log": "audit.md"},
    ]
    if site.docs:
        nav.append({"Stack docs": [f"stack/{d}" for d in site.docs]})
    config = {
        "site_name": "MLOps blueprint reports",
        "docs_dir": "docs",
        "site_dir": str(site.out_dir),
        "use_directory_urls": False,  # plain .html links: the site also works from file://
        # Offline: no Google Fonts, and only the built-in search (its JS ships with the theme).
        "theme": {"name": "material", "font": False, "features": ["navigation.sections"]},
        "plugins": ["search"],
        "markdown_extensions": ["tables", "toc", "admonition", "attr_list"],
        "nav": nav,
    }
    (source / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def _run_mkdocs(source: Path, out_dir: Path) -> list[str]:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        raise UserError(
            "MkDocs Material is not installed", "install the dev dependencies: uv sync"
        ) from None
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(source / "mkdocs.yml")],
        capture_output=True,
        text=True,
        cwd=source,
        env=_offline_env(),
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"mkdocs build failed: {last}", f"see {source / 'mkdocs.yml'}")
    return [line for line in result.stderr.splitlines() if line.startswith("WARNING")]


def _offline_env() -> dict[str, str]:
    import os

    # Material prints a notice about MkDocs 2.0 unless told not to; nothing else is needed.
    return {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
