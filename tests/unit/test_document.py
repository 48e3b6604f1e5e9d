"""scripts/document.py: build/ evidence, screenshots in real headless Chromium, runbooks page."""

from __future__ import annotations

import socket
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml.errors import UserError
from scripts import diagram, document

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from conftest import require_service
except ImportError:  # pragma: no cover
    from tests.conftest import require_service

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PAGE = "<!doctype html><html><body style='background:#0a7'><h1>{}</h1></body></html>"


def fake_build(root: Path) -> Path:
    """A build/ folder with a model card, two reports, a site, and state that must be skipped."""
    files = {
        "demo/summary.json": "{}",
        "demo/index.html": PAGE.format("demo"),
        "demo/monitoring/drift.html": PAGE.format("drift"),
        "demo/monitoring/pvalues.png": "png",
        "governance/credit-risk/v3/card.json": "{}",
        "governance/credit-risk/v3/model_card.md": "# card",
        "governance/credit-risk/v3/model_card.html": PAGE.format("card"),
        "ab/report.html": PAGE.format("ab"),
        "site/index.html": PAGE.format("site"),
        "site/assets/app.js": "",
        "demo/mlflow/mlflow.db": "state",
        "demo/mlflow/artifacts/x.json": "{}",
        "demo/feature_repo/data/t.parquet": "state",
        "demo/data/quarantine/counts.csv": "state",
        "demo/notes.txt": "not a report type",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_or_skip() -> None:
    if not document.CHROMIUM.exists():
        require_service("chromium", f"{document.CHROMIUM} not found")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_service("chromium", "the playwright package is not installed")


# --- build/ evidence ------------------------------------------------------------------------


def test_evidence_files_skip_state_folders_and_other_types(tmp_path: Path) -> None:
    found = {p.as_posix() for p in document.evidence_files(fake_build(tmp_path / "build"))}
    assert found == {
        "demo/summary.json",
        "demo/index.html",
        "demo/monitoring/drift.html",
        "demo/monitoring/pvalues.png",
        "governance/credit-risk/v3/card.json",
        "governance/credit-risk/v3/model_card.md",
        "governance/credit-risk/v3/model_card.html",
        "ab/report.html",
    }


def test_missing_build_folder_gives_nothing(tmp_path: Path) -> None:
    assert document.evidence_files(tmp_path / "nope") == []
    assert document.copy_build_evidence(tmp_path / "nope", tmp_path / "out") == []


def test_copy_keeps_paths_indexes_cards_and_reports_and_copies_the_site(tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    written = document.copy_build_evidence(fake_build(tmp_path / "build"), folder)
    assert written == [folder / "build" / "README.md", folder / "site" / "index.html"]
    assert (folder / "build/governance/credit-risk/v3/model_card.md").read_text() == "# card"
    assert (folder / "site/assets/app.js").exists()
    index = (folder / "build" / "README.md").read_text()
    assert "[governance/credit-risk/v3](governance/credit-risk/v3/model_card.md)" in index
    assert "[ab/report.html](ab/report.html)" in index
    assert "model_card.html" not in index  # a card is listed once, as a card


def test_oversized_files_are_listed_not_copied(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(document, "MAX_FILE_BYTES", 10)
    folder = tmp_path / "evidence"
    document.copy_build_evidence(fake_build(tmp_path / "build"), folder)
    assert not (folder / "build/demo/index.html").exists()
    assert "- demo/index.html" in (folder / "build" / "README.md").read_text()


# --- screenshot targets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "url"),
    [
        ("mlflow=http://127.0.0.1:5000/#/models", "mlflow", "http://127.0.0.1:5000/#/models"),
        ("http://localhost:3000/d/abc?x=1", "localhost-3000-d-abc-x-1", None),
        ("file:///tmp/r.html", "tmp-r-html", None),
    ],
)
def test_screenshot_targets(spec: str, name: str, url: str | None) -> None:
    target = document.parse_target(spec)
    assert (target.name, target.url) == (name, url or spec)


def test_a_screenshot_target_must_be_a_url() -> None:
    with pytest.raises(UserError, match="is not a URL"):
        document.parse_target("grafana=localhost:3000")


def test_local_reports_put_the_site_home_first_and_skip_site_pages(tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    document.copy_build_evidence(fake_build(tmp_path / "build"), folder)
    (folder / "site" / "other.html").write_text("x")
    paths = [t.path for t in document.local_reports(folder)]
    assert paths[0] == "site/index.html" and "site/other.html" not in paths
    assert "build/ab/report.html" in paths and len(paths) == 5
    assert len(document.local_reports(folder, limit=2)) == 2


def test_explicit_screenshots_without_chromium_are_an_error(tmp_path: Path) -> None:
    target = document.parse_target("http://127.0.0.1:9/")
    with pytest.raises(UserError, match=r"no Chromium at .*apt-get install -y chromium"):
        document.take_screenshots(
            [target], tmp_path, root=tmp_path, chromium=tmp_path / "no-chromium"
        )


def test_offline_document_without_chromium_still_writes_the_evidence(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(document, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(diagram.shutil, "which", lambda _name: None)
    lines: list[str] = []
    folder = document.document(
        "local",
        inventory=[],
        stack=None,
        out_root=tmp_path / "docs",
        now=NOW,
        out=lines.append,
        build_dir=fake_build(tmp_path / "build"),
        offline_screenshots=True,
    )
    assert (folder / "build" / "README.md").exists() and not (folder / "screenshots").exists()
    assert any(line.startswith("screenshot: skipped: no Chromium") for line in lines)


# --- screenshots for real -------------------------------------------------------------------


def test_offline_document_screenshots_the_local_reports(tmp_path: Path, monkeypatch) -> None:
    chromium_or_skip()
    monkeypatch.setattr(diagram.shutil, "which", lambda _name: None)
    lines: list[str] = []
    folder = document.document(
        "local",
        inventory=[],
        stack=None,
        out_root=tmp_path / "docs",
        now=NOW,
        out=lines.append,
        build_dir=fake_build(tmp_path / "build"),
        screenshots=[f"missing=http://127.0.0.1:{closed_port()}/"],  # reported, not fatal
        offline_screenshots=True,
    )
    shots = sorted(p.name for p in (folder / "screenshots").glob("*.png"))
    assert shots == [
        "build-ab-report.png",
        "build-demo-index.png",
        "build-demo-monitoring-drift.png",
        "build-governance-credit-risk-v3-model-card.png",
        "site-index.png",
    ]
    width, height = png_size(folder / "screenshots" / "site-index.png")
    assert width == 1440 and height >= 900
    assert any(
        line.startswith("screenshot: http://127.0.0.1:") and "failed" in line for line in lines
    )
    index = (folder / "README.md").read_text()
    assert "[screenshots/site-index.png](screenshots/site-index.png)" in index


def test_file_url_screenshot(tmp_path: Path) -> None:
    chromium_or_skip()
    page = tmp_path / "page.html"
    page.write_text(PAGE.format("file"))
    taken = document.take_screenshots(
        [document.parse_target(f"page={page.as_uri()}")],
        tmp_path / "shots",
        root=tmp_path,
        out=lambda _l: None,
    )
    assert taken == [tmp_path / "shots" / "page.png"] and png_size(taken[0])[0] == 1440


# --- runbooks page --------------------------------------------------------------------------


def test_committed_runbooks_page_is_current() -> None:
    assert document.RUNBOOKS.read_text() == document.runbooks_page(), (
        "docs/runbooks.md is stale: run `uv run python -m scripts.document --runbooks`"
    )


def test_every_alert_runbook_link_has_its_section() -> None:
    from components.alerting import rule_groups

    page = document.RUNBOOKS.read_text()
    anchors = {line[3:].strip().lower() for line in page.splitlines() if line.startswith("## ")}
    links = [
        rule["annotations"]["runbook_url"]
        for group in rule_groups()
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert links
    for link in links:
        path, _, anchor = link.partition("#")
        assert path == "docs/runbooks.md" and anchor in anchors


def test_write_runbooks(tmp_path: Path) -> None:
    path = document.write_runbooks(tmp_path / "runbooks.md")
    assert path.read_text().startswith("<!-- Generated by")


def test_blank_finds_single_colour_screenshots(tmp_path) -> None:
    from PIL import Image

    from scripts.document import blank

    white, drawn = tmp_path / "white.png", tmp_path / "drawn.png"
    Image.new("RGB", (40, 30), "white").save(white)
    image = Image.new("RGB", (40, 30), "white")
    image.putpixel((3, 4), (20, 20, 20))
    image.save(drawn)
    assert blank(white) and not blank(drawn)
