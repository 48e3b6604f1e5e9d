"""The report site, built from real model cards, loads in headless Chromium with nothing broken."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections import deque
from functools import partial
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from ml.governance import audit
from ml.governance.model_card import write_model_card
from ml.governance.site import build_site
from ml.settings import Settings
from tests.conftest import require_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def site(trained_platform, tmp_path_factory):
    tp = trained_platform
    build = tmp_path_factory.mktemp("site_build")
    settings = Settings(build_dir=build, seed=tp.settings.seed, root=tp.settings.root)
    audit_path = build / "audit" / "audit.jsonl"
    audit.append("register", audit.model_subject(tp.model_name, tp.champion_version), "alice",
                 {"role": "data_scientist"}, path=audit_path)  # fmt: skip
    write_model_card(
        tp.model_name, tp.champion_version, training_set=tp.training_set,
        customers=tp.ingested.tables["customers"], features=tp.features,
        out_dir=build / "demo" / "model_card", settings=settings, audit_path=audit_path,
        log_to_mlflow=False,
    )  # fmt: skip
    report = build / "demo" / "drift" / "report.html"
    report.parent.mkdir(parents=True)
    shutil.copyfile(
        build / "demo" / "model_card" / "plots" / "importance.png", report.with_suffix(".png")
    )
    report.write_text('<html><body><h1>drift</h1><img src="report.png"></body></html>')
    return build_site(settings)


def test_site_has_cards_reports_lineage_and_docs(site):
    assert len(site.cards) == 1 and site.reports == ["demo/drift/report.html"]
    for page in ("index.html", "lineage.html", "audit.html", "reports/index.html",
                 f"model-cards/{site.cards[0]['slug']}/index.html"):  # fmt: skip
        assert (site.out_dir / page).exists(), page
    assert "hash chain verified" in (site.out_dir / "audit.html").read_text()
    assert "fonts.googleapis" not in (site.out_dir / "index.html").read_text()


def test_every_page_loads_without_broken_links_or_images(site):
    if not Path(CHROMIUM).exists():
        require_service("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with _serve(site.out_dir) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages, problems = _crawl(browser.new_page(), base)
        finally:
            browser.close()
    assert not problems, problems
    assert len(pages) >= 6, pages


def _crawl(page, base: str) -> tuple[set[str], list[str]]:
    problems: list[str] = []
    page.route("**/*", partial(_offline_only, base=base, problems=problems))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    queue, seen, checked = deque([f"{base}/index.html"]), set(), set()
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        page.goto(url, wait_until="load")
        for src, width in page.eval_on_selector_all(
            "img", "els => els.map(i => [i.currentSrc || i.src, i.complete ? i.naturalWidth : 0])"
        ):
            if not width:
                problems.append(f"broken image {src} on {url}")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)"):
            target = urldefrag(href).url
            if not target.startswith(base) or target in checked:
                continue
            checked.add(target)
            status = page.request.get(target).status
            if status != 200:
                problems.append(f"broken link {href} on {url} ({status})")
            elif target.endswith(".html") and "/reports/demo/" not in target:
                queue.append(target)
    return seen, problems


def _offline_only(route, request, base: str, problems: list[str]) -> None:
    if request.url.startswith(base) or request.url.startswith("data:"):
        route.continue_()
    else:
        problems.append(f"the site requested {request.url}: it must work offline")
        route.abort()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output readable
        pass


class _serve:
    """Serve ``root`` over HTTP on loopback, on a free port, for the duration of a with block."""

    def __init__(self, root: Path) -> None:
        handler = partial(_Quiet, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
