"""A tiny kubelet and the controllers the e2e needs, over podman: the rendered pods, for real.

:class:`Cluster` runs the first-party workloads of one namespace from the rendered manifests:

* Deployments: ``spec.replicas`` pods (1 when an HPA owns the count), restarted when they die;
* Jobs: a pod run to completion, retried up to ``backoffLimit``, bounded by
  ``activeDeadlineSeconds``; CronJobs: a Job from the ``jobTemplate``, on demand;
* Services: each pod a Service selects gets the Service's cluster DNS names as network aliases
  (a Service that selects no running pod is an error when it is looked up);
* readiness: the rendered readinessProbe, from the host to the pod IP;
* env (values, Secrets, ConfigMaps, downward API), volumes (emptyDir, Secret and ConfigMap with
  kubelet's atomic updates, subPath), the security context and limits: :mod:`e2e.manifests`,
  :mod:`e2e.volumes`.

What differs from a real cluster is limited to the platform layer (see docs/e2e.md): image
references point at the locally built images, and the backing services are local stand-ins.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e import podman
from e2e.manifests import (
    command_args,
    env_args,
    pod_template,
    security_args,
    selector_matches,
    service_aliases,
)
from e2e.volumes import mount_args, write_projected

CLIENT = Path(__file__).with_name("client.py")


class WorkloadError(AssertionError):
    """A workload did not reach the state asked for; the message says which and why."""


@dataclass
class Pod:
    name: str
    workload: str
    kind: str
    started: float = field(default_factory=time.monotonic)


@dataclass
class JobResult:
    name: str
    succeeded: bool
    attempts: int
    seconds: float
    logs: str


class Cluster:
    """The namespace's workloads as podman containers on the e2e network."""

    def __init__(
        self,
        objects: Mapping[tuple[str, str, str], dict],
        images: Mapping[str, str],
        work: Path,
        namespace: str = "mlops",
    ) -> None:
        """Args:
        objects: the rendered objects (``e2e.manifests.load``), secrets revealed.
        images: rendered image reference -> local image to run instead.
        work: where pod volumes and logs go.
        """
        self.objects = objects
        self.images = dict(images)
        self.work = work
        self.namespace = namespace
        self.secrets = self._data("Secret")
        self.configmaps = self._data("ConfigMap")
        self.pods: dict[str, list[Pod]] = {}
        self.jobs: dict[str, JobResult] = {}
        self.readiness: dict[str, dict] = {}
        self._counter = 0
        # Pod names repeat across runs: start from empty volumes and logs, as new pods do.
        for folder in ("pods", "logs", "clients"):
            shutil.rmtree(work / folder, ignore_errors=True)
        (work / "logs").mkdir(parents=True, exist_ok=True)

    # --- objects -------------------------------------------------------------------------------

    def _data(self, kind: str) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for (ns, k, name), obj in self.objects.items():
            if ns == self.namespace and k == kind:
                data = dict(obj.get("stringData") or {})
                for key, value in (obj.get("data") or {}).items():
                    data[key] = (
                        base64.b64decode(value).decode() if kind == "Secret" else str(value)
                    )
                out[name] = data
        return out

    def get(self, kind: str, name: str) -> dict:
        try:
            return self.objects[(self.namespace, kind, name)]
        except KeyError:
            raise WorkloadError(f"no {kind} {name!r} in the rendered namespace") from None

    def workloads(self, kind: str) -> list[str]:
        return sorted(n for (ns, k, n) in self.objects if ns == self.namespace and k == kind)

    def _hpa_owned(self) -> set[str]:
        return {
            o["spec"]["scaleTargetRef"]["name"]
            for (ns, k, _), o in self.objects.items()
            if ns == self.namespace and k == "HorizontalPodAutoscaler"
        }

    def _aliases(self, labels: Mapping[str, str]) -> list[str]:
        aliases = []
        for (ns, kind, name), svc in self.objects.items():
            if ns != self.namespace or kind != "Service":
                continue
            if selector_matches(svc["spec"].get("selector"), labels):
                aliases += service_aliases(name, ns)
        return aliases

    # --- pods ----------------------------------------------------------------------------------

    def _image(self, rendered: str) -> str:
        if rendered not in self.images:
            raise WorkloadError(f"no local image stands in for {rendered}")
        return self.images[rendered]

    def _start_pod(
        self,
        workload: str,
        kind: str,
        template: dict,
        command: list[str] | None = None,
        restart: bool = False,
    ) -> Pod:
        self._counter += 1
        pod_name = f"{workload}-{self._counter:04d}"
        spec = template["spec"]
        if len(spec["containers"]) != 1:
            raise WorkloadError(f"{workload}: the e2e runs single-container pods only")
        container = spec["containers"][0]
        if command is not None:
            container = {**container, "command": command, "args": []}
        pod_dir = self.work / "pods" / pod_name
        args = [
            *env_args(container, pod_name, self.namespace, self.secrets, self.configmaps),
            *mount_args(pod_dir, spec, container, self.secrets, self.configmaps),
            *security_args(spec, container),
            "--hostname",
            pod_name,
        ]
        _own_volumes(pod_dir, spec)
        for alias in self._aliases(template["metadata"].get("labels") or {}):
            args += ["--network-alias", alias]
        if restart:
            args += ["--restart", "always"]
        flags, argv = command_args(container)
        podman.run_detached(pod_name, [*args, *flags, self._image(container["image"]), *argv])
        pod = Pod(pod_name, workload, kind)
        self.pods.setdefault(workload, []).append(pod)
        return pod

    def apply(self) -> None:
        """Start every Deployment's pods (they become ready on their own time)."""
        hpa = self._hpa_owned()
        for name in self.workloads("Deployment"):
            deployment = self.get("Deployment", name)
            replicas = 1 if name in hpa else int(deployment["spec"].get("replicas", 1))
            for _ in range(replicas):
                self._start_pod(name, "Deployment", pod_template(deployment), restart=True)

    def wait_ready(self, deployment: str, timeout_s: float) -> float:
        """Seconds until every pod of ``deployment`` passes its readiness probe."""
        start = time.monotonic()
        pods = self.pods.get(deployment) or []
        if not pods:
            raise WorkloadError(f"Deployment {deployment} has no pods")
        container = pod_template(self.get("Deployment", deployment))["spec"]["containers"][0]
        probe = container.get("readinessProbe")
        last = "not probed yet"
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            answers = [self._probe(p, container, probe) for p in pods]
            if all(ok for ok, _ in answers):
                seconds = time.monotonic() - pods[0].started
                self.readiness[deployment] = {"ready": True, "seconds": round(seconds, 1)}
                return seconds
            failing = zip(pods, answers, strict=True)
            last = "; ".join(f"{p.name}: {why}" for p, (ok, why) in failing if not ok)
            time.sleep(1.0)
        self.readiness[deployment] = {"ready": False, "seconds": None, "last": last}
        tail = podman.logs(pods[0].name, tail=15)
        raise WorkloadError(
            f"Deployment {deployment} not ready within {timeout_s:.0f} s ({last}); "
            f"log tail:\n{tail}"
        )

    def _probe(self, pod: Pod, container: dict, probe: dict | None) -> tuple[bool, str]:
        state = podman.state(pod.name)
        if not state.get("Running"):
            return False, f"container {state.get('Status')} (exit {state.get('ExitCode')})"
        if probe is None:
            return True, "running (no probe)"
        get = probe.get("httpGet")
        if get is None:
            return True, "running (non-HTTP probe)"
        port = _port(container, get["port"])
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
        url = f"http://{podman.ip_of(pod.name)}:{port}{get.get('path', '/')}"
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=3) as response:
                return 200 <= response.status < 400, f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            return False, f"HTTP {error.code} from {get.get('path')}"
        except (urllib.error.URLError, OSError) as error:
            return False, f"{type(error).__name__} on {get.get('path')}"

    # --- jobs ----------------------------------------------------------------------------------

    def run_job(self, name: str, timeout_s: float) -> JobResult:
        return self._run(name, "Job", self.get("Job", name)["spec"], timeout_s)

    def run_cronjob(self, name: str, timeout_s: float) -> JobResult:
        """What the CronJob controller does at a scheduled time: a Job from the jobTemplate."""
        spec = self.get("CronJob", name)["spec"]["jobTemplate"]["spec"]
        return self._run(name, "CronJob", spec, timeout_s)

    def _run(self, name: str, kind: str, spec: dict, timeout_s: float) -> JobResult:
        start = time.monotonic()
        deadline = min(timeout_s, float(spec.get("activeDeadlineSeconds", timeout_s)))
        attempts, logs = 0, ""
        while attempts <= int(spec.get("backoffLimit", 6)):
            attempts += 1
            remaining = deadline - (time.monotonic() - start)
            if remaining <= 0:
                break
            pod = self._start_pod(name, kind, spec["template"])
            code = podman.wait_exit(pod.name, remaining)
            logs = podman.logs(pod.name)
            (self.work / "logs" / f"{pod.name}.log").write_text(logs)
            if code is None:
                podman.podman("rm", "-f", "-t", "2", pod.name, check=False)
                break
            if code == 0:
                return self._done(name, True, attempts, start, logs)
        self._done(name, False, attempts, start, logs)
        tail = "\n".join(logs.strip().splitlines()[-15:])
        raise WorkloadError(
            f"{kind} {name} did not succeed in {attempts} attempt(s) within {deadline:.0f} s; "
            f"last log lines:\n{tail}"
        )

    def _done(self, name: str, ok: bool, attempts: int, start: float, logs: str) -> JobResult:
        result = JobResult(name, ok, attempts, round(time.monotonic() - start, 1), logs)
        self.jobs[name] = result
        self.readiness[name] = {"ready": ok, "seconds": result.seconds, "completed": ok}
        return result

    def oneoff(
        self,
        like: str,
        command: list[str],
        timeout_s: float,
        secret_volumes: dict[str, str] | None = None,
    ) -> str:
        """``kubectl run`` with a workload's pod (image, env, volumes, security), own command.

        ``secret_volumes`` (volume name -> Secret name) swaps the Secret behind a volume, e.g. a
        person's own MLflow credentials file in place of the workload's.
        """
        kind = "Job" if (self.namespace, "Job", like) in self.objects else "Deployment"
        template = _with_secrets(pod_template(self.get(kind, like)), secret_volumes or {})
        pod = self._start_pod(f"{like}-oneoff", "Pod", template, command=command)
        code = podman.wait_exit(pod.name, timeout_s)
        logs = podman.logs(pod.name)
        (self.work / "logs" / f"{pod.name}.log").write_text(logs)
        if code is None:
            raise WorkloadError(
                f"`{' '.join(command)}` did not finish within {timeout_s:.0f} s: "
                f"{logs.strip()[-600:] or '(no output yet)'}"
            )
        if code != 0:
            raise WorkloadError(f"`{' '.join(command)}` exited {code}: {logs.strip()[-600:]}")
        return logs

    # --- clients -------------------------------------------------------------------------------

    def _client_args(self, url: str, bodies: list[dict], tag: str, **options: float) -> list[str]:
        self._counter += 1
        path = self.work / "clients" / f"{tag}-{self._counter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(bodies))
        image = self.images[next(iter(self.images))]  # any first-party image has Python
        extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        return [
            "-v",
            f"{CLIENT}:/e2e/client.py:ro",
            "-v",
            f"{path}:/e2e/bodies.json:ro",
            "--entrypoint",
            '["python"]',
            image,
            "/e2e/client.py",
            url,
            "/e2e/bodies.json",
            *extra,
        ]

    def client(self, url: str, bodies: list[dict], deadline_s: float, concurrency: int) -> dict:
        """Send requests from a container on the network; the client's JSON summary."""
        name = f"client-{self._counter + 1:04d}"
        args = self._client_args(
            url, bodies, "client", deadline_s=deadline_s, concurrency=concurrency
        )
        podman.run_detached(name, args)
        code = podman.wait_exit(name, deadline_s + 60)
        out = podman.logs(name)
        podman.podman("rm", "-f", name, check=False)
        if code != 0:
            raise WorkloadError(f"the API client failed ({code}): {out.strip()[-400:]}")
        return json.loads(out.strip().splitlines()[-1])

    def client_soak(
        self, url: str, bodies: list[dict], seconds: float, concurrency: int, every_s: float,
        sample: Callable[[], None],
    ) -> dict:  # fmt: skip
        """Load for ``seconds`` from a client container, calling ``sample()`` every ``every_s``."""
        name = f"soak-{self._counter + 1:04d}"
        args = self._client_args(url, bodies, "soak", soak_s=seconds, concurrency=concurrency)
        podman.run_detached(name, args)
        deadline = time.monotonic() + seconds + 120
        while (code := podman.wait_exit(name, every_s)) is None:
            sample()
            if time.monotonic() > deadline:
                podman.podman("rm", "-f", name, check=False)
                raise WorkloadError(f"the soak client still ran {seconds + 120:.0f} s after start")
        out = podman.logs(name)
        podman.podman("rm", "-f", name, check=False)
        if code != 0:
            raise WorkloadError(f"the soak client failed ({code}): {out.strip()[-400:]}")
        return json.loads(out.strip().splitlines()[-1])

    def client_background(
        self,
        tag: str,
        url: str,
        bodies: list[dict],
        deadline_s: float,
        concurrency: int,
        rate_per_s: float,
    ) -> str:
        name = f"{tag}-{self._counter + 1:04d}"
        args = self._client_args(
            url, bodies, tag, deadline_s=deadline_s, concurrency=concurrency, rate=rate_per_s
        )
        podman.run_detached(name, args)
        return name

    # --- operations ----------------------------------------------------------------------------

    def update_configmap(self, name: str, data: Mapping[str, str]) -> None:
        """Like ``kubectl apply`` of a changed ConfigMap: running pods see it (no subPath)."""
        self.configmaps[name] = dict(data)
        for pod_dir in (self.work / "pods").glob("*"):
            for volume in pod_dir.iterdir():
                if (volume / "..data").is_symlink() and self._volume_of(volume) == name:
                    write_projected(volume, data)

    def _volume_of(self, volume_dir: Path) -> str | None:
        pod = volume_dir.parent.name
        workload = pod.rsplit("-", 1)[0]
        for kind in ("Deployment", "Job", "CronJob"):
            obj = self.objects.get((self.namespace, kind, workload))
            if obj is not None:
                for v in pod_template(obj)["spec"].get("volumes") or []:
                    if v["name"] == volume_dir.name and "configMap" in v:
                        return v["configMap"]["name"]
        return None

    def pod_ips(self) -> dict[str, list[str]]:
        return {
            workload: [podman.ip_of(p.name) for p in pods]
            for workload, pods in self.pods.items()
            if pods and pods[0].kind == "Deployment"
        }

    def ip(self, deployment: str) -> str:
        return podman.ip_of(self.pods[deployment][0].name)

    def started_at(self, deployment: str) -> list[str]:
        """Start times of the Deployment's containers (unchanged means: never restarted)."""
        return [podman.state(p.name).get("StartedAt", "") for p in self.pods[deployment]]

    def stop(self, deployment: str, timeout_s: float) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout_s``), as a pod deletion does."""
        for pod in self.pods.get(deployment, []):
            podman.podman("stop", "-t", str(int(timeout_s)), pod.name, timeout=timeout_s + 30)

    def disk_usage(self, deployment: str, volume: str = "tmp") -> int:
        """Bytes in a pod's emptyDir (the first pod of ``deployment``)."""
        root = self.work / "pods" / self.pods[deployment][0].name / volume
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

    def env_of(self, workload: str) -> dict[str, str]:
        """The environment a workload's container gets (resolved like the kubelet does)."""
        kind = next(
            k
            for k in ("Deployment", "Job", "CronJob")
            if (self.namespace, k, workload) in self.objects
        )
        container = pod_template(self.get(kind, workload))["spec"]["containers"][0]
        pairs = env_args(container, workload, self.namespace, self.secrets, self.configmaps)
        return dict(p.split("=", 1) for p in pairs[1::2])

    def save_logs(self) -> None:
        for pods in self.pods.values():
            for pod in pods:
                path = self.work / "logs" / f"{pod.name}.log"
                if not path.exists():
                    with contextlib.suppress(podman.PodmanError):
                        path.write_text(podman.logs(pod.name))


def _port(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise WorkloadError(f"container {container['name']} has no port named {port!r}")


def _own_volumes(pod_dir: Path, spec: dict) -> None:
    """Ownership as the kubelet sets it: emptyDirs writable, projected files group fsGroup."""
    group = (spec.get("securityContext") or {}).get("fsGroup")
    for volume in spec.get("volumes") or []:
        path = pod_dir / volume["name"]
        if not path.exists():
            continue
        if "emptyDir" in volume:
            path.chmod(0o1777)
        elif group is not None:
            for item in [path, *path.rglob("*")]:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(item, 0, int(group))


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set environment variables in this (the harness') process."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def any_value(mapping: Mapping[str, Any]) -> Any:
    return next(iter(mapping.values()))


def _with_secrets(template: dict, secret_volumes: dict[str, str]) -> dict:
    """A copy of ``template`` whose named secret volumes read other Secrets."""
    if not secret_volumes:
        return template
    volumes = []
    for volume in template["spec"].get("volumes") or []:
        if volume["name"] in secret_volumes and "secret" in volume:
            secret = {**volume["secret"], "secretName": secret_volumes[volume["name"]]}
            volume = {**volume, "secret": secret}
        volumes.append(volume)
    return {**template, "spec": {**template["spec"], "volumes": volumes}}
