"""``python -m e2e``: the e2e harness entry point.

Done so far (the static half): install check -> render the ``local`` stack with secrets
revealed -> load the ``mlops`` namespace -> check every Service selects a pod template and needs
no port remapping -> list what the e2e does not enforce -> ``build/e2e/summary.json``.
Not done yet: images, network, backing services, the podman runner and the loop (see
docs/e2e.md); the command says so and exits non-zero rather than pretend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def main() -> int:
    progress("install check")
    install_check()
    progress("render local stack (secrets revealed)")
    render("local", BUILD / "render", reveal=True)
    objects = load(BUILD / "render")
    facts = static_checks(objects)
    for problem in facts["problems"]:
        progress(f"FAIL {problem}")
    summary = {
        **facts,
        "workloads": {
            k: {**v, "ready": None, "seconds": None} for k, v in facts["workloads"].items()
        },
        "loop": {},
        "alerts_fired": [],
        "series_missing": [],
        "substitutions": [],
        "status": "static checks only: the podman runner is not implemented yet",
    }
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    progress(f"summary -> {BUILD / 'summary.json'}; {summary['status']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
