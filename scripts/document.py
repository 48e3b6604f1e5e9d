"""Capture evidence that a stack worked, into a dated folder under ``docs/``.

    uv run python -m scripts.document --stack aws-dev --screenshot mlflow=http://127.0.0.1:5000
    uv run python -m scripts.document --stack local --offline
    uv run python -m scripts.document --runbooks     # regenerate docs/runbooks.md
    uv run python -m scripts.document --embedded     # what `make up` runs (`make document`)

Writes ``docs/evidence/<YYYY-MM-DD>-<stack>/``: ``outputs.json`` (secrets masked),
``inventory.json`` (the offline render: every resource's type, name, parent, inputs, secrets
redacted), ``state.json`` (the resources really in the stack's state), the architecture
diagram generated from the inventory, ``cost.md`` (AWS stacks: the estimate, and the estimated
cost so far since the stack's first update), ``alerts.md`` (alert runbooks), ``build/`` (the
model cards, drift and A/B reports and summaries found under ``build/``, state folders
skipped), ``site/`` (the report site, if built), ``screenshots/`` (PNG of each ``--screenshot``
URL, taken in headless Chromium; with ``--offline``, of the local HTML reports instead, served
on loopback) and a ``README.md`` that links them. ``--offline`` documents a stack from the
render alone (no Pulumi CLI needed). ``--embedded`` documents the embedded platform that
``make up`` started (``docs/evidence/<YYYY-MM-DD>-embedded/``): the reports and model cards,
and screenshots of the MLflow UI (runs and the registered model), the API's docs, the Feast UI,
Prometheus' alerts and the demo's index; a blank page or a page error is reported and fails.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from ml.errors import UserError
from scripts import cost, diagram, workflow

EVIDENCE_ROOT = workflow.ROOT / "docs" / "evidence"
RUNBOOKS = workflow.ROOT / "docs" / "runbooks.md"
HOURS_PER_MONTH = 730
# Folders under build/ that hold state or inputs, not evidence (at any depth).
STATE_DIRS = frozenset(
    {
        "site",
        "site_src",
        "mlflow",
        "mlruns",
        "feature_repo",
        "data",
        "artifacts",
        "infra",
        "render",
        "services",
        "exports",
        "images",
        "__pycache__",
    }
)
EVIDENCE_SUFFIXES = frozenset({".html", ".md", ".json", ".jsonl", ".png", ".svg", ".csv", ".prom"})
MAX_FILE_BYTES = 25 * 1024 * 1024  # larger files are listed, not copied
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
MAX_OFFLINE_SHOTS = 12
SETTLE_MS = 8_000
DEBIAN_CLASSIC_UI = (
    "Debian's Prometheus 2.42 classic UI loads a JavaScript module as a plain script; "
    "the alerts table is rendered by the server"
)  # how long a page may keep loading data after its load event


def evidence_dir(stack_name: str, day: date, root: Path = EVIDENCE_ROOT) -> Path:
    return root / f"{day:%Y-%m-%d}-{stack_name}"


def first_update(stack: workflow.StackLike) -> datetime | None:
    """Start of the stack's oldest successful update, if the backend keeps history."""
    history = getattr(stack, "history", None)
    if history is None:
        return None
    starts = [u.start_time for u in history() if u.kind == "update" and u.result == "succeeded"]
    return min(starts) if starts else None


def cost_so_far(monthly: float, since: datetime, now: datetime) -> float:
    """The estimate prorated over the hours since ``since``."""
    hours = max((now - since).total_seconds() / 3600, 0.0)
    return round(monthly * hours / HOURS_PER_MONTH, 2)


def document(
    stack_name: str,
    *,
    inventory: list[dict],
    stack: workflow.StackLike | None,
    out_root: Path = EVIDENCE_ROOT,
    now: datetime | None = None,
    out: Callable[[str], None] = print,
    build_dir: Path | None = None,
    screenshots: Sequence[str] = (),
    offline_screenshots: bool = False,
) -> Path:
    """Write the evidence folder for ``stack_name`` and return its path.

    Args:
        inventory: the offline render of the stack (``mlops infra render``).
        stack: the Automation API stack, or None to document from the render alone.
        build_dir: copy the reports, model cards and report site found here (None: none).
        screenshots: ``URL`` or ``name=URL`` pages to screenshot into ``screenshots/``.
        offline_screenshots: also screenshot the copied HTML reports, served on loopback.

    Raises:
        UserError: screenshots were asked for and Chromium or Playwright is missing.
    """
    now = now or datetime.now(UTC)
    folder = evidence_dir(stack_name, now.date(), out_root)
    folder.mkdir(parents=True, exist_ok=True)
    written = [_json(folder / "inventory.json", inventory)]
    if stack is not None:
        written.append(_json(folder / "outputs.json", workflow.plain_outputs(stack)))
        written.append(_json(folder / "state.json", workflow.state_resources(stack)))
    written += diagram.write(inventory, f"{stack_name} ({now:%Y-%m-%d})", folder)
    if workflow.is_aws(stack_name):
        written.append(_cost(stack_name, inventory, stack, now, folder))
    written.append(_alerts(folder))
    if build_dir is not None:
        written += copy_build_evidence(build_dir, folder)
    targets = [parse_target(s) for s in screenshots]
    if offline_screenshots:
        targets += local_reports(folder)
    if targets:
        try:
            written += take_screenshots(targets, folder / "screenshots", root=folder, out=out)
        except UserError as error:
            if screenshots:  # asked for explicitly: an error; the offline extras: a note
                raise
            out(f"screenshot: skipped: {error.line()}")
    written.append(_index(folder, stack_name, now, written))
    out(f"document: wrote {len(written)} files to {folder}")
    return folder


def _cost(
    name: str,
    inventory: list[dict],
    stack: workflow.StackLike | None,
    now: datetime,
    folder: Path,
) -> Path:
    estimate = cost.estimate(inventory)
    text = cost.to_markdown(estimate, name)
    since = first_update(stack) if stack is not None else None
    if since is not None:
        so_far = cost_so_far(estimate.total, since, now)
        text += f"\nEstimated cost so far (since {since:%Y-%m-%d %H:%M} UTC): ${so_far:,.2f}\n"
    path = folder / "cost.md"
    path.write_text(text)
    return path


def _alerts(folder: Path) -> Path:
    from components.alerting import runbooks_markdown

    path = folder / "alerts.md"
    path.write_text(runbooks_markdown())
    return path


def write_runbooks(path: Path = RUNBOOKS) -> Path:
    """Write the alert runbook page the PrometheusRules' ``runbook_url`` links point at."""
    path.write_text(runbooks_page())
    return path


def runbooks_page() -> str:
    """``docs/runbooks.md`` as it must be: a generated-file note, then the runbooks."""
    from components.alerting import runbooks_markdown

    note = "<!-- Generated by `uv run python -m scripts.document --runbooks`; do not edit. -->\n"
    return note + runbooks_markdown()


# --- build/ evidence ------------------------------------------------------------------------


def evidence_files(build_dir: Path) -> list[Path]:
    """Report files under ``build_dir`` (relative): state folders skipped, known suffixes only."""
    found = []
    for here, dirs, files in os.walk(build_dir):
        dirs[:] = sorted(d for d in dirs if d not in STATE_DIRS)  # prune: never walk state
        relative = Path(here).relative_to(build_dir)
        found += [relative / f for f in sorted(files) if Path(f).suffix in EVIDENCE_SUFFIXES]
    return found


def copy_build_evidence(build_dir: Path, folder: Path) -> list[Path]:
    """Copy the reports (``build/``) and the report site (``site/``) into ``folder``.

    Returns:
        What the index should link: ``build/`` and ``site/`` if anything was copied.
    """
    copied = []
    skipped = []
    for relative in evidence_files(build_dir):
        source = build_dir / relative
        if source.stat().st_size > MAX_FILE_BYTES:
            skipped.append(relative)
            continue
        target = folder / "build" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(relative)
    written = []
    if copied:
        written.append(_build_index(folder / "build", copied, skipped))
    site = build_dir / "site"
    if (site / "index.html").exists():
        shutil.copytree(site, folder / "site", dirs_exist_ok=True)
        written.append(folder / "site" / "index.html")
    return written


def _build_index(target: Path, copied: list[Path], skipped: list[Path]) -> Path:
    cards = sorted({p.parent for p in copied if p.name == "card.json"})
    reports = [p for p in copied if p.suffix == ".html" and p.parent not in cards]
    lines = ["# Reports and model cards from build/", ""]
    if cards:
        lines += ["## Model cards", ""] + [f"- [{c}]({c}/model_card.md)" for c in cards] + [""]
    if reports:
        lines += ["## Reports", ""] + [f"- [{r}]({r})" for r in reports] + [""]
    lines += [f"All {len(copied)} files keep their paths under build/."]
    if skipped:
        lines += ["", f"Not copied (over {MAX_FILE_BYTES // 2**20} MiB): "]
        lines += [f"- {s}" for s in skipped]
    path = target / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- screenshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A page to screenshot: ``url``, or ``path`` (relative to the served evidence folder)."""

    name: str
    url: str = ""
    path: str = ""
    tolerated_errors: str = ""  # why this page's script errors are not a failure ("": they are)


def parse_target(spec: str) -> Target:
    """``name=URL`` or ``URL`` (the name is derived from the URL's host and path)."""
    name, sep, url = spec.partition("=")
    if not sep or "://" in name:
        name, url = "", spec
    if not re.match(r"^(https?|file)://", url):
        raise UserError(f"--screenshot {spec!r} is not a URL", "use http(s)://... or file://...")
    return Target(name=_slug(name or re.sub(r"^\w+://", "", url)), url=url)


def local_reports(folder: Path, limit: int = MAX_OFFLINE_SHOTS) -> list[Target]:
    """The HTML reports in the evidence folder, site home first, at most ``limit``."""
    pages = [p.relative_to(folder) for p in sorted(folder.rglob("*.html"))]
    site_home = Path("site") / "index.html"
    pages = [p for p in pages if p.parts[0] != "site"]
    if (folder / site_home).exists():
        pages.insert(0, site_home)
    return [Target(name=_slug(str(p.with_suffix(""))), path=p.as_posix()) for p in pages[:limit]]


def take_screenshots(
    targets: Sequence[Target],
    out_dir: Path,
    *,
    root: Path,
    out: Callable[[str], None] = print,
    chromium: Path | None = None,
    timeout_ms: int = 30_000,
) -> list[Path]:
    """A full-page PNG per target, taken in headless Chromium; returns those taken.

    Targets with a ``path`` are served from ``root`` by a loopback HTTP server for the
    duration. A page that fails to load is reported and skipped, so one unreachable UI does
    not lose the rest of the evidence.

    Raises:
        UserError: Chromium or the Playwright package is missing.
    """
    chromium = chromium or CHROMIUM
    sync_playwright = _playwright(chromium)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken = []
    with serve_folder(root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            for target in targets:
                url = target.url or f"{base}/{target.path}"
                path = out_dir / f"{target.name}.png"
                if _shoot(browser, url, path, timeout_ms, out, target.tolerated_errors):
                    taken.append(path)
        finally:
            browser.close()
    out(f"screenshot: {len(taken)} of {len(targets)} pages")
    return taken


def _shoot(
    browser,
    url: str,
    path: Path,
    timeout_ms: int,
    out: Callable[[str], None],
    tolerated_errors: str = "",
) -> bool:
    # A fresh page per URL: a failed navigation leaves its page on Chromium's error page,
    # which would interrupt the next navigation.
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error).splitlines()[0]))
    try:
        response = page.goto(url, wait_until="load", timeout=timeout_ms)
        if response is not None and response.status >= 400:
            out(f"screenshot: {url} answered HTTP {response.status}")
            return False
        with contextlib.suppress(Exception):  # single-page UIs fetch their data after load;
            # some (MLflow) keep polling, so the wait is bounded short
            page.wait_for_load_state("networkidle", timeout=min(timeout_ms, SETTLE_MS))
        page.screenshot(path=str(path), full_page=True, timeout=timeout_ms)
    except Exception as error:  # Playwright raises its own Error/TimeoutError
        out(f"screenshot: {url} failed: {str(error).splitlines()[0]}")
        return False
    finally:
        page.close()
    for error in errors:
        note = f" (tolerated: {tolerated_errors})" if tolerated_errors else ""
        out(f"screenshot: {url} had a page error: {error}{note}")
    return not errors or bool(tolerated_errors)


def blank(png: Path) -> bool:
    """True if the image is a single colour (a page that rendered nothing)."""
    from PIL import Image

    with Image.open(png) as image:
        return all(low == high for low, high in image.convert("RGB").getextrema())


# --- the embedded platform (`make up`) --------------------------------------------------------


def embedded_targets(build_dir: Path) -> list[Target]:
    """The UIs ``mlops up`` recorded in ``build/platform/up.json``, and the demo's index."""
    from ml import up as platform
    from ml.settings import Settings

    settings = Settings(build_dir=build_dir)
    urls = platform.recorded_urls(settings)
    if not urls:
        raise UserError(f"nothing started by `mlops up` for {build_dir}", "run `make up` first")
    targets = []
    if "mlflow" in urls:
        base = urls["mlflow"].rstrip("/")
        experiment = _mlflow_experiment(base)
        targets += [
            Target("mlflow-runs", url=f"{base}/#/experiments/{experiment}/runs"),
            Target("mlflow-registered-model", url=f"{base}/#/models/{settings.model_name}"),
        ]
    if "feast-ui" in urls:  # the project's page: its feature views and services
        targets.append(Target("feast-ui", url=f"{urls['feast-ui'].rstrip('/')}/p/credit_risk"))
    if "serving" in urls:
        targets.append(Target("serving-api-docs", url=urls["serving"]))
    if "prometheus" in urls:
        classic = "/classic/" in urls["prometheus"]
        targets.append(Target("prometheus-alerts", url=urls["prometheus"],
                              tolerated_errors=DEBIAN_CLASSIC_UI if classic else ""))  # fmt: skip
    return [*targets, Target("demo-index", path="build/demo/index.html")]


def _mlflow_experiment(base: str) -> str:
    """The id of the experiment with the most recent runs (not ``Default``)."""
    import httpx

    found = httpx.post(
        f"{base}/api/2.0/mlflow/experiments/search", json={"max_results": 100}, timeout=10
    ).json()
    experiments = [e for e in found.get("experiments", []) if e.get("name") != "Default"]
    if not experiments:
        raise UserError(f"no experiment in the MLflow server at {base}", "run `make demo` first")
    return str(max(experiments, key=lambda e: int(e.get("last_update_time", 0)))["experiment_id"])


def _wait_for_alerts(build_dir: Path, out: Callable[[str], None], timeout_s: float = 150) -> None:
    """Until Prometheus fires an alert (rules are evaluated every minute), at most ``timeout_s``;
    the demo's drift should show on the alerts page, not as pending."""
    import time

    import httpx

    from ml import up as platform
    from ml.settings import Settings

    url = platform.recorded_urls(Settings(build_dir=build_dir)).get("prometheus")
    if url is None:
        return
    api = url.split("/", 3)[:3]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alerts = httpx.get("/".join(api) + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        firing = sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "firing"})
        if firing:
            out(f"document: Prometheus fires {', '.join(firing)}")
            return
        time.sleep(3)
    out(f"document: no alert firing after {timeout_s:.0f} s; the alerts page shows them pending")


def document_embedded(
    build_dir: Path,
    *,
    out_root: Path = EVIDENCE_ROOT,
    now: datetime | None = None,
    out: Callable[[str], None] = print,
) -> Path:
    """Evidence of the embedded platform ``make up`` runs; its folder.

    Raises:
        UserError: nothing is up, a screenshot failed, was blank or had a page error.
    """
    now = now or datetime.now(UTC)
    folder = evidence_dir("embedded", now.date(), out_root)
    folder.mkdir(parents=True, exist_ok=True)
    targets = embedded_targets(build_dir)
    _wait_for_alerts(build_dir, out)
    written = copy_build_evidence(build_dir, folder)
    shots = take_screenshots(targets, folder / "screenshots", root=folder, out=out)
    written += shots
    written.append(_index(folder, "embedded", now, written))
    empty = [p.name for p in shots if blank(p)]
    missing = sorted({t.name for t in targets} - {p.stem for p in shots})
    if empty or missing:
        raise UserError(
            f"screenshots failed or had page errors: {missing}; blank: {empty}",
            f"see the lines above; the rest of the evidence is in {folder}",
        )
    out(f"document: wrote {len(written)} files to {folder}")
    return folder


def _playwright(chromium: Path):
    if not chromium.exists():
        raise UserError(
            f"no Chromium at {chromium} for the screenshots",
            "install it (`apt-get install -y chromium`, or `scripts/services.sh install`)"
            " or run without screenshots (--no-screenshots)",
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError(
            "the playwright package is not installed", "run `uv sync` (it is a dev dependency)"
        ) from None
    return sync_playwright


@contextlib.contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` read-only on 127.0.0.1 (an ephemeral port); yield the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the script's output to its own lines
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80] or "page"


def _index(folder: Path, name: str, now: datetime, files: list[Path]) -> Path:
    lines = [f"# Stack {name}: evidence of {now:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"- [{p.relative_to(folder)}]({p.relative_to(folder)})" for p in files]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--stack", help="local, aws-dev or aws-prod")
    what.add_argument("--runbooks", action="store_true", help="regenerate docs/runbooks.md")
    what.add_argument(
        "--embedded", action="store_true", help="the embedded platform `make up` started"
    )
    parser.add_argument("--offline", action="store_true", help="from the render only, no Pulumi")
    parser.add_argument("--out", type=Path, default=EVIDENCE_ROOT, help="default: docs/evidence")
    parser.add_argument(
        "--screenshot",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="a UI to screenshot (MLflow, Grafana, the report site); repeatable",
    )
    parser.add_argument(
        "--no-screenshots", action="store_true", help="with --offline: skip the report shots"
    )
    parser.add_argument("--build", type=Path, default=workflow.BUILD, help="default: build/")
    args = parser.parse_args(argv)
    if args.runbooks:
        print(f"document: wrote {write_runbooks()}")
        return
    if args.embedded:
        document_embedded(args.build, out_root=args.out)
        return
    stack = None if args.offline else workflow.open_stack(args.stack)
    inventory = workflow.render_inventory(args.stack)
    document(
        args.stack,
        inventory=inventory,
        stack=stack,
        out_root=args.out,
        build_dir=args.build,
        screenshots=args.screenshot,
        offline_screenshots=args.offline and not args.no_screenshots,
    )


if __name__ == "__main__":
    workflow.run_cli(main)
