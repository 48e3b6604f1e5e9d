"""``mlops up`` / ``mlops down``: the embedded platform kept running on loopback after the demo.

``up`` starts, as detached local processes on 127.0.0.1: the MLflow server (UI) on the demo's
store, the scoring API (OpenAPI docs at ``/docs``) with the demo's traffic policy, Feast's
feature server and UI on the demo's registry and online store, and, when Debian's packages are
installed, a Pushgateway holding the drift monitor's last gauges and Prometheus scraping it and
the API with the platform's own alert rules (``components.alerting``), so an alert can be seen
firing. Each process is recorded (pid and command line) in ``build/platform/up.json`` as soon
as it starts; ``down`` stops exactly those processes, and only if the pid still runs the
recorded command (a reused pid is left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ml.errors import ServiceUnavailable, UserError
from ml.settings import Settings

READY_TIMEOUT_S = 120.0
# Readiness probe of each service by name: what `up` waits on and what `mlops status` checks.
PROBES = {
    "mlflow": "/health",
    "serving": "/readyz",
    "feature-server": "/health",
    "feast-ui": "/",
    "pushgateway": "/-/ready",
    "prometheus": "/-/ready",
}
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class Service:
    """One process of the running platform."""

    name: str
    argv: list[str]
    url: str  # what a person opens
    probe: str  # answers 2xx once the service is ready
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    name: str
    pid: int
    argv: list[str]
    url: str
    log: str
    started: int = 0  # the kernel's start time of ``pid`` (clock ticks since boot)


def state_file(settings: Settings) -> Path:
    return settings.build / "platform" / "up.json"


def nothing_to_serve(settings: Settings) -> bool:
    """True until a demo has left a registry and a feature store to serve from."""
    return not (
        (settings.mlflow_dir / "mlflow.db").exists()
        and (settings.feature_repo_dir / "feature_store.yaml").exists()
        and (settings.demo_dir / "summary.json").exists()
    )


def services(settings: Settings) -> list[Service]:
    """What ``up`` starts, in order (the API needs MLflow up to load its models)."""
    from ml.serve.server import SERVICE, server_env
    from ml.tracking import server_command

    bin_dir = Path(sys.executable).parent
    mlflow_url = f"http://127.0.0.1:{settings.mlflow_port}"
    serving = settings.model_copy(update={"mlflow_tracking_uri": mlflow_url})
    home = settings.build / "platform"
    api_env = server_env(serving, _policy_file(settings), home / "predictions.jsonl")
    repo = str(settings.feature_repo_dir)
    found = [
        Service(
            "mlflow",
            server_command(settings.mlflow_dir, settings.mlflow_port),
            mlflow_url,
            f"{mlflow_url}{PROBES['mlflow']}",
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ),
        Service(
            "serving",
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                SERVICE,
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.serving_port),
            ],
            f"http://127.0.0.1:{settings.serving_port}/",  # Swagger UI; /docs.json
            f"http://127.0.0.1:{settings.serving_port}{PROBES['serving']}",
            {**api_env, "MLOPS_FEATURE_REPO": repo},
        ),
        Service(
            "feature-server",
            [
                str(bin_dir / "feast"),
                "--chdir",
                repo,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.feature_server_port),
            ],
            f"http://127.0.0.1:{settings.feature_server_port}/docs",
            f"http://127.0.0.1:{settings.feature_server_port}{PROBES['feature-server']}",
        ),
        Service(
            "feast-ui",
            [
                str(bin_dir / "feast"),
                "--chdir",
                repo,
                "ui",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.feast_ui_port),
            ],
            f"http://127.0.0.1:{settings.feast_ui_port}/",
            f"http://127.0.0.1:{settings.feast_ui_port}{PROBES['feast-ui']}",
        ),
    ]
    return found + _monitoring(settings)


def _monitoring(settings: Settings) -> list[Service]:
    """The Pushgateway and Prometheus, when Debian's packages provide them."""
    gateway, prometheus = shutil.which("prometheus-pushgateway"), shutil.which("prometheus")
    found = []
    if gateway:
        port = settings.pushgateway_port
        found.append(
            Service(
                "pushgateway",
                [gateway, f"--web.listen-address=127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}/",
                f"http://127.0.0.1:{port}{PROBES['pushgateway']}",
            )
        )
    if prometheus:
        home = settings.build / "platform" / "prometheus"
        port = settings.prometheus_port
        found.append(
            Service(
                "prometheus",
                [prometheus, f"--config.file={home / 'prometheus.yml'}",
                 f"--storage.tsdb.path={home / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}/alerts",
                f"http://127.0.0.1:{port}{PROBES['prometheus']}",
            )
        )  # fmt: skip
    return found


def up(settings: Settings, say: Callable[[str], None] = print) -> list[Running]:
    """Start every service that is not running, wait until each answers; what runs.

    Raises:
        ServiceUnavailable: a service exited or did not answer in time (the others keep
            running; ``down`` stops them).
    """
    if nothing_to_serve(settings):
        raise UserError("nothing to serve yet", "run `mlops demo` first (`make up` does)")
    running = {r.name: r for r in _alive(settings)}
    wanted = {service.name: service for service in services(settings)}
    _write_prometheus_config(settings)
    for name in running.keys() & wanted.keys():
        say(f"{name:<15} already running (pid {running[name].pid})")
    fresh = [service for name, service in wanted.items() if name not in running]
    # Everything starts at once, except the API: it loads its models from MLflow at start.
    for service in sorted(fresh, key=lambda s: s.name == "serving"):
        if service.name == "serving" and "mlflow" in running:
            _wait_ready(wanted["mlflow"], running["mlflow"])
        running[service.name] = _start(settings, service)
        _record(settings, list(running.values()))
    for service in fresh:
        _wait_ready(service, running[service.name])
        _after_ready(settings, service, running[service.name])
        _record(settings, list(running.values()))
        say(f"{service.name:<15} {running[service.name].url}")
    return list(running.values())


def _after_ready(settings: Settings, service: Service, running: Running) -> None:
    if service.name == "pushgateway":
        _push_monitor_gauges(settings, service.url)
    if service.name == "prometheus":
        running.url = _prometheus_alerts_page(service.url)


def down(settings: Settings) -> list[str]:
    """Stop exactly the processes ``up`` recorded; the names of those stopped."""
    stopped = []
    for entry in reversed(_recorded(settings)):
        if _runs(entry):
            _stop(entry.pid)
            stopped.append(entry.name)
    state_file(settings).unlink(missing_ok=True)
    return stopped


def recorded_urls(settings: Settings) -> dict[str, str]:
    """name -> URL of what ``up`` recorded (running or not)."""
    return {r.name: r.url for r in _recorded(settings)}


# --- processes --------------------------------------------------------------------------------


def _start(settings: Settings, service: Service) -> Running:
    logs = settings.build / "platform" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{service.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            service.argv,
            env=_environment(settings, service),
            cwd=settings.build / "platform",
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `mlops up`; stopped with its workers
        )
    started = _start_time(process.pid) or 0
    return Running(service.name, process.pid, service.argv, service.url, str(log), started)


def _environment(settings: Settings, service: Service) -> dict[str, str]:
    """This process's environment, the service's own variables, and the platform's MLflow for
    tracking and registry (an inherited ``MLFLOW_REGISTRY_URI`` would send the API elsewhere)."""
    environment = {**os.environ, **service.env}
    environment.pop("MLFLOW_REGISTRY_URI", None)
    environment["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{settings.mlflow_port}"
    return environment


def _wait_ready(service: Service, running: Running) -> None:
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _runs(running):
            raise ServiceUnavailable(
                f"{service.name} exited at start: {_last_line(Path(running.log))}",
                f"see {running.log}; `mlops down` stops the rest",
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.probe, timeout=2).status_code < 300:
                return
        time.sleep(0.5)
    raise ServiceUnavailable(
        f"{service.name} did not answer {service.probe} within {READY_TIMEOUT_S:.0f} s",
        f"see {running.log}; `mlops down` stops the rest",
    )


def _runs(entry: Running) -> bool:
    """Whether ``entry.pid`` is alive and is still the process ``up`` started (its start time
    matches: a reused pid is another process; servers retitle themselves, so the command line
    cannot tell)."""
    return _start_time(entry.pid) == entry.started and _group_alive(entry.pid)


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command's name


def _stop(pid: int) -> None:
    """SIGTERM the process group (workers with it), SIGKILL after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies of our own children count as gone.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pgid}/stat").read_text().split()[2]
    except OSError:
        return True  # the leader is gone but others of the group may remain
    return state != "Z"


def _recorded(settings: Settings) -> list[Running]:
    path = state_file(settings)
    if not path.exists():
        return []
    return [Running(**entry) for entry in json.loads(path.read_text())]


def _alive(settings: Settings) -> list[Running]:
    return [entry for entry in _recorded(settings) if _runs(entry)]


def _record(settings: Settings, running: list[Running]) -> None:
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in running], indent=2) + "\n")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return (lines or ["no output"])[-1][:300]


# --- configuration ----------------------------------------------------------------------------


def _policy_file(settings: Settings) -> Path | None:
    """The demo's traffic policy (from its summary), so the API serves what the demo served."""
    summary = json.loads((settings.demo_dir / "summary.json").read_text())
    policy = summary.get("serving", {}).get("policy")
    if not policy:
        return None
    path = settings.build / "platform" / "traffic_policy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(policy, indent=2) + "\n")
    return path


def _write_prometheus_config(settings: Settings) -> None:
    """Scrape the API and the Pushgateway; load the platform's own alert rules."""
    import yaml

    from components.alerting import rule_groups

    home = settings.build / "platform" / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    # The platform's rules as deployed, evaluated every 5 s instead of every minute, so an
    # alert shows within seconds of `mlops up` (expressions and `for` durations unchanged).
    groups = [{**group, "interval": "5s"} for group in rule_groups()]
    (home / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": "serving",
                "static_configs": [{"targets": [f"127.0.0.1:{settings.serving_port}"]}],
            },
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{settings.pushgateway_port}"]}],
            },
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _prometheus_alerts_page(url: str) -> str:
    """Debian's Prometheus 2.x ships only the classic UI (``/classic/alerts``)."""
    import httpx

    if httpx.get(url, timeout=5).status_code == 404:
        return url.replace("/alerts", "/classic/alerts")
    return url


def _push_monitor_gauges(settings: Settings, gateway: str) -> None:
    """The drift monitor's last gauges, as its CronJob pushes them in the cluster."""
    import httpx

    from ml.monitor.push import PUSH_JOB

    exposition = settings.demo_dir / "monitoring" / "metrics.prom"
    if exposition.exists():
        httpx.put(
            f"{gateway.rstrip('/')}/metrics/job/{PUSH_JOB}",
            content=exposition.read_bytes(),
            timeout=5,
        ).raise_for_status()
