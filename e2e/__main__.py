"""``python -m e2e``: the rendered ``local`` stack in podman containers, and the ML loop on it.

install check -> the two first-party images (from the committed Dockerfiles, FROM lines on
local stand-ins) -> render the ``local`` stack with secrets revealed -> static checks (every
Service selects a pod template) -> the e2e network and the backing services -> every
Deployment of namespace ``mlops`` as rendered -> Prometheus from the rendered ServiceMonitors
and PrometheusRule -> the loop (:mod:`e2e.loop`) -> every series a rule or panel names was
scraped -> ``build/e2e/summary.json``. ``--soak`` runs the bring-up half of the loop and then
sustained load (:mod:`e2e.soak`, ``build/e2e/soak.json``). See docs/e2e.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from e2e.manifests import ManifestError, check_service_ports, load, pod_template, selector_matches
from infra.render import ROOT, render

BUILD = Path(os.environ.get("E2E_BUILD_DIR", ROOT / "build" / "e2e"))
NAMESPACE = "mlops"
WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")
RUN_AS_RENDERED = (
    *WORKLOAD_KINDS,
    "Service",
    "Secret",
    "ConfigMap",
    "ServiceMonitor",
    "PrometheusRule",
)


def progress(message: str) -> None:
    print(f"e2e: {message}", flush=True)


def install_check() -> None:
    """Install the Debian packages when root; otherwise only require podman."""
    if os.geteuid() == 0:
        subprocess.run(["bash", str(ROOT / "scripts" / "e2e_install.sh")], check=True)
    elif subprocess.run(["podman", "--version"], capture_output=True).returncode != 0:
        sys.exit("e2e: podman is missing; run `sudo scripts/e2e_install.sh`")


def static_checks(objects: dict) -> dict:
    """Per-workload facts and the rendered objects the e2e does not enforce."""
    workloads, problems, hpa_owned = {}, [], set()
    for (_, kind, _), obj in objects.items():
        if kind == "HorizontalPodAutoscaler":
            hpa_owned.add(obj["spec"]["scaleTargetRef"]["name"])
    for (ns, kind, name), obj in sorted(objects.items()):
        if ns == NAMESPACE and kind in WORKLOAD_KINDS:
            replicas = obj["spec"].get("replicas", 1) if kind == "Deployment" else None
            workloads[name] = {"kind": kind, "replicas": replicas, "hpa": name in hpa_owned}
        if ns == NAMESPACE and kind == "Service":
            problems += _service_problems(objects, obj)
    ignored = sorted(
        f"{kind}/{ns}/{name}" for (ns, kind, name) in objects if kind not in RUN_AS_RENDERED
    )
    return {"workloads": workloads, "problems": problems, "not_enforced": ignored}


def _service_problems(objects: dict, service: dict) -> list[str]:
    name = service["metadata"]["name"]
    templates = [
        pod_template(o)
        for (ns, kind, _), o in objects.items()
        if ns == NAMESPACE and kind == "Deployment"
    ]
    selected = [
        t
        for t in templates
        if selector_matches(service["spec"].get("selector"), t["metadata"].get("labels") or {})
    ]
    if not selected:
        return [f"Service {name} selects no pod template"]
    try:
        for template in selected:
            check_service_ports(service, template["spec"])
    except ManifestError as error:
        return [str(error)]
    return []


SUBSTITUTIONS = [
    "images: the two first-party images are built locally from infra/images/*.Dockerfile with "
    "the FROM lines pointing at local stand-ins (a debootstrap'd Debian bookworm with Python "
    "3.11, a uv image from the uv wheel); the rendered digest references are mapped to them",
    "PostgreSQL (CloudNativePG) -> Debian's PostgreSQL in a container, TLS on, same DNS name, "
    "database, user and generated password as the rendered Secrets",
    "Valkey (chart) -> Debian's redis-server in a container, same DNS name and password",
    "SeaweedFS S3 (chart) -> moto's S3 server in a container, same DNS name and buckets; it "
    "accepts any credentials (SeaweedFS checks the per-workload keys)",
    "kube-prometheus-stack -> Debian's Prometheus, scrape config derived from the rendered "
    "ServiceMonitors, rules = the rendered PrometheusRule; no Alertmanager, no Grafana",
    "Pushgateway chart -> Debian's prometheus-pushgateway, same DNS name",
    "kube-state-metrics -> the harness exports kube_job_status_{failed,succeeded} for the "
    "Jobs it ran",
    "Kubernetes controllers -> the harness (e2e/kubelet.py): Deployments, Jobs, CronJobs on "
    "demand, Services as DNS aliases, readiness probes; HPA, PDB, NetworkPolicy, RBAC and "
    "ServiceAccounts are not enforced",
]


def prometheus_config(objects: dict, cluster, gateway: str) -> tuple[str, str]:
    """(prometheus.yml, rules file) from the rendered ServiceMonitors and PrometheusRule."""
    import yaml

    from e2e.ksm import PORT as KSM_PORT
    from e2e.prometheus import scrape_configs

    jobs = scrape_configs(
        objects,
        cluster.pod_ips(),
        cluster.secrets,
        pushgateway="pushgateway.monitoring.svc.cluster.local:9091",
    )
    jobs.append(
        {
            "job_name": "kube-state-metrics",
            "scrape_interval": "5s",
            "static_configs": [{"targets": [f"{gateway}:{KSM_PORT}"]}],
        }
    )
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": ["/etc/prometheus/rules.yml"],
        "scrape_configs": jobs,
    }
    (rule,) = [o for (_, kind, _), o in objects.items() if kind == "PrometheusRule"]
    return yaml.safe_dump(config), yaml.safe_dump({"groups": rule["spec"]["groups"]})


def watched_series(objects: dict) -> set[str]:
    """Series names read by the rendered alert rules and dashboards (recorded series excluded)."""
    from e2e.loop import series_named

    exprs: list[str] = []
    for (_, kind, _), obj in objects.items():
        if kind == "PrometheusRule":
            exprs += [r["expr"] for g in obj["spec"]["groups"] for r in g["rules"]]
        if kind == "ConfigMap" and (obj["metadata"].get("labels") or {}).get("grafana_dashboard"):
            for text in obj["data"].values():
                exprs += list(_exprs(json.loads(text)))
    return series_named(exprs)


def _exprs(node) -> Iterator[str]:
    """Every ``expr`` string in a dashboard's JSON model."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _exprs(value)


def main(argv: list[str]) -> int:
    from e2e import build, ksm, podman, standins
    from e2e.kubelet import Cluster
    from e2e.loop import STEPS, LoopState, latencies, run_loop
    from e2e.session import Prometheus, Session
    from e2e.soak import SOAK_STEPS
    from infra.render import stack_config

    soak = "--soak" in argv
    steps, summary_name = (SOAK_STEPS, "soak.json") if soak else (STEPS, "summary.json")

    started = time.monotonic()
    BUILD.mkdir(parents=True, exist_ok=True)
    summary: dict = {
        "workloads": {},
        "loop": {},
        "alerts_fired": [],
        "series_missing": [],
        "substitutions": SUBSTITUTIONS,
        "status": "running",
    }

    def record(step: str, ok: bool, seconds: float, why: str) -> None:
        summary["loop"][step] = {
            "ok": ok,
            "seconds": round(seconds, 1),
            **({"why": why} if why else {}),
        }
        progress(f"loop step {step}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s {why}")
        write_summary(summary, summary_name)

    cluster = None
    exporter = None
    state = LoopState()
    try:
        progress("install check")
        install_check()
        podman.environment(BUILD)
        podman.remove_all()
        cache = BUILD / "cache"
        progress("images (stand-in bases, then the two first-party images)")
        built = build.first_party_images(ROOT, cache)
        services_ref = build.services_image(ROOT, cache)
        progress("render local stack (secrets revealed)")
        render("local", BUILD / "render", reveal=True)
        objects = load(BUILD / "render")
        facts = static_checks(objects)
        summary["not_enforced"] = facts["not_enforced"]
        if facts["problems"]:
            raise AssertionError("; ".join(facts["problems"]))
        podman.ensure_network()
        progress("backing services")
        backing = standins.start(objects, BUILD, services_ref)
        stack = stack_config("local")
        image_map = {
            stack["mlops:mlImage"]: built["ml"],
            stack["mlops:servingImage"]: built["serving"],
        }
        cluster = Cluster(objects, image_map, BUILD)
        gateway = podman.gateway()
        exporter = ksm.serve(
            gateway, lambda: {n: r.succeeded for n, r in cluster.jobs.items()}, NAMESPACE
        )
        progress("apply: Deployments of namespace mlops")
        cluster.apply()
        cluster.wait_ready("mlflow-server", 240)
        config, rules = prometheus_config(objects, cluster, gateway)
        backing.start_prometheus(config, rules)
        prometheus = Prometheus(backing.prometheus_url)
        session = Session(cluster, backing, prometheus)
        run_loop(session, record, state, steps)
        summary["alerts_fired"] = sorted(prometheus.fired())
        summary["targets_down"] = prometheus.targets_down()
        summary["series_missing"] = sorted(watched_series(objects) - prometheus.series_names())
        if summary["series_missing"] and not soak:  # the soak runs half the loop
            raise AssertionError(f"series nothing emitted: {summary['series_missing']}")
        summary["status"] = "passed"
        return 0
    except Exception as error:
        summary["status"] = f"failed: {(str(error).splitlines() or [repr(error)])[0][:300]}"
        progress(summary["status"])
        return 1
    finally:
        summary["latencies"] = latencies(state)
        summary["notes"] = state.notes
        if cluster is not None:
            summary["workloads"] = cluster.readiness
            cluster.save_logs()
        summary["seconds"] = round(time.monotonic() - started, 1)
        write_summary(summary, summary_name)
        if exporter is not None:
            exporter.shutdown()
        if os.environ.get("E2E_KEEP") != "1":
            from e2e import podman as pm

            pm.remove_all()
        progress(f"summary -> {BUILD / summary_name} ({summary['status']})")


def write_summary(summary: dict, name: str = "summary.json") -> None:
    (BUILD / name).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
