"""Podman, as the e2e uses it: one network, named containers, bounded waits.

Podman 4.3 from Debian runs here with ``runc``, the ``cgroupfs`` manager, no default ulimits
(the sandbox may not raise rlimits) and file events; :func:`environment` writes that
``containers.conf`` and points ``CONTAINERS_CONF`` at it for every podman call we make.
Every container the e2e starts carries the label ``mlops-e2e=1`` so teardown finds them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

LABEL = "mlops-e2e=1"
NETWORK = os.environ.get("E2E_NETWORK", "mlops-e2e")
SUBNET = os.environ.get("E2E_SUBNET", "10.89.77.0/24")
_CONF = """[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


# The network's DNS (the dnsname plugin's dnsmasq) knows the Service names' A records only and
# forwards their AAAA queries upstream, where (no network here) some go unanswered: glibc then
# waits 5 s, and about 1 request in 50 took 5 s. A cluster's DNS answers those AAAA queries
# itself. glibc 2.36's `no-aaaa` (the images are bookworm) skips them: measured, 500 lookups
# of a Service name had a worst case of 3 ms with it and 5 s without.
DNS = ("--dns-option", "no-aaaa")


class PodmanError(RuntimeError):
    """A podman command failed; the message has the command and its stderr."""


def environment(work: Path) -> None:
    """Write the containers.conf this machine needs and use it for every podman call."""
    conf = work / "containers.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(_CONF)
    os.environ["CONTAINERS_CONF"] = str(conf)


def podman(*args: str, check: bool = True, timeout: float = 600, input: bytes | None = None):
    """Run ``podman ARGS``; returns the CompletedProcess (text output)."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, timeout=timeout, input=input, check=False
    )
    if check and result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise PodmanError(f"podman {' '.join(args[:3])} ... failed: {' | '.join(err)}")
    return result


def out(*args: str, timeout: float = 600) -> str:
    return podman(*args, timeout=timeout).stdout.decode().strip()


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def ensure_network() -> None:
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", "--subnet", SUBNET, "--label", LABEL, NETWORK)


def remove_all() -> None:
    """Remove every e2e container, then the network (teardown; ignores what is already gone)."""
    ids = out("ps", "-aq", "--filter", f"label={LABEL}").split()
    if ids:
        podman("rm", "-f", "-t", "5", *ids, check=False, timeout=120)
    podman("network", "rm", "-f", NETWORK, check=False)


def run_detached(name: str, args: list[str]) -> str:
    """``podman run -d`` on the e2e network with the e2e label; returns the container id."""
    return out("run", "-d", "--name", name, "--label", LABEL, "--network", NETWORK, *DNS, *args)


def ip_of(name: str) -> str:
    data = json.loads(out("inspect", name))
    return data[0]["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def state(name: str) -> dict:
    """The container's State (Status, Running, ExitCode, StartedAt...)."""
    return json.loads(out("inspect", name))[0]["State"]


def wait_exit(name: str, timeout_s: float) -> int | None:
    """The exit code once the container stops, or None if it still runs at the bound."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = state(name)
        if not current.get("Running") and current.get("Status") in ("exited", "stopped"):
            return int(current.get("ExitCode", -1))
        time.sleep(1.0)
    return None


def logs(name: str, tail: int | None = None) -> str:
    args = ["logs", *(["--tail", str(tail)] if tail else []), name]
    result = podman(*args, check=False, timeout=60)
    return (result.stdout + result.stderr).decode(errors="replace")


def gateway() -> str:
    """The host's address on the e2e network (the bridge gateway)."""
    data = json.loads(out("network", "inspect", NETWORK))
    return data[0]["subnets"][0]["gateway"]
