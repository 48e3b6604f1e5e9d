"""Pod volumes on the host, as kubelet lays them out (pure file work, no podman needed).

* emptyDir: a directory ``<pod_dir>/<volume>`` (so its disk use can be measured);
* configMap / secret: kubelet's atomic writer: files live in a timestamped directory,
  ``..data`` is a symlink to it, and each key is a symlink ``key -> ..data/key``. An update
  writes a new timestamped directory and renames a fresh ``..data`` link over the old one, so a
  pod mounting the *directory* sees the new content at once and never a half-written one.
  A subPath mount binds the single resolved file and, as in Kubernetes, never updates.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from e2e.manifests import ManifestError

DATA = "..data"


def write_projected(
    directory: Path,
    data: Mapping[str, str],
    items: list[Mapping[str, Any]] | None = None,
    default_mode: int = 0o644,
) -> None:
    """Write (or atomically replace) a configMap/secret volume's files under ``directory``.

    ``items`` selects keys and renames them (``{key, path, mode}``) like the volume source's
    ``items``; without it every key becomes a file named after the key.
    """
    files = _files(data, items, default_mode)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    for rel, (content, mode) in files.items():
        path = stamp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    stamp.chmod(0o755)
    old = os.readlink(directory / DATA) if (directory / DATA).is_symlink() else None
    tmp_link = directory / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp.name)
    tmp_link.rename(directory / DATA)  # the atomic switch
    for top in {rel.split("/")[0] for rel in files}:
        if not (directory / top).is_symlink():
            (directory / top).symlink_to(f"{DATA}/{top}")
    if old:
        shutil.rmtree(directory / old, ignore_errors=True)


def _files(
    data: Mapping[str, str], items: list[Mapping[str, Any]] | None, default_mode: int
) -> dict[str, tuple[str, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            raise ManifestError(f"volume item key {item['key']!r} is not in the source")
        out[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
    return out


def mount_args(
    pod_dir: Path,
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    secrets: Mapping[str, Mapping[str, str]],
    configmaps: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Lay out the pod's volumes under ``pod_dir`` and return the container's ``-v`` flags."""
    sources = {v["name"]: v for v in pod_spec.get("volumes") or []}
    args: list[str] = []
    for mount in container.get("volumeMounts") or []:
        volume = sources.get(mount["name"])
        if volume is None:
            raise ManifestError(f"volumeMount {mount['name']!r} names no volume")
        host = _materialise(pod_dir / mount["name"], volume, secrets, configmaps)
        if mount.get("subPath"):
            host = (host / mount["subPath"]).resolve()  # the file itself: never updates
        read_only = mount.get("readOnly") or "emptyDir" not in volume
        args += ["-v", f"{host}:{mount['mountPath']}:{'ro' if read_only else 'rw'}"]
    return args


def _materialise(
    host: Path,
    volume: Mapping[str, Any],
    secrets: Mapping[str, Mapping[str, str]],
    configmaps: Mapping[str, Mapping[str, str]],
) -> Path:
    if "emptyDir" in volume:
        host.mkdir(parents=True, exist_ok=True)
        return host
    if host.exists():
        return host  # already laid out for another container of the pod
    if "secret" in volume:
        src, store, name = volume["secret"], secrets, volume["secret"]["secretName"]
    elif "configMap" in volume:
        src, store, name = volume["configMap"], configmaps, volume["configMap"]["name"]
    else:
        raise ManifestError(f"volume {volume['name']!r}: only emptyDir/secret/configMap run")
    if name not in store:
        raise ManifestError(f"volume {volume['name']!r}: {name!r} is not rendered")
    write_projected(host, store[name], src.get("items"), int(src.get("defaultMode", 0o644)))
    return host
