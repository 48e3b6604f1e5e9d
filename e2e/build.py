"""The e2e's images: local stand-ins for the base images, then the two first-party images.

No registry but the package registries can be reached here, so the base images the Dockerfiles
pin (``python:3.11.14-slim-bookworm``, ``ghcr.io/astral-sh/uv``) are replaced by local
stand-ins: a Debian bookworm root filesystem from ``debootstrap`` with Python 3.11 where the
official image has it (``/usr/local/bin/python3.11``), and an image holding only ``/uv`` and
``/uvx`` from the uv wheel of the pinned version. The first-party images are built from copies of
``infra/images/*.Dockerfile`` whose FROM lines name the stand-ins; the committed Dockerfiles keep
their digest pins. Every image is tagged by a hash of its inputs and reused when unchanged.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from e2e import podman

PYTHON_STANDIN = "localhost/e2e-python:3.11-bookworm"
UV_STANDIN = "localhost/e2e-uv"
_FROM = re.compile(r"^FROM\s+(\S+)(.*)$", re.MULTILINE)
_SOURCES = ("ml", "contract", "components", "infra")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class BuildError(RuntimeError):
    """An image did not build; the message names the log."""


def progress(message: str) -> None:
    print(f"e2e: {message}", flush=True)


def uv_version(dockerfile: Path) -> str:
    """The uv version the Dockerfile's ``ghcr.io/astral-sh/uv:<version>`` stage pins."""
    match = re.search(r"ghcr\.io/astral-sh/uv:([0-9.]+)", dockerfile.read_text())
    if match is None:
        raise BuildError(f"{dockerfile} has no ghcr.io/astral-sh/uv stage")
    return match.group(1)


def substitute_from(text: str, uv_ref: str, python_ref: str) -> str:
    """The Dockerfile with its base images replaced by the stand-ins (stage names kept)."""

    def replace(match: re.Match) -> str:
        image = match.group(1)
        if image.startswith("ghcr.io/astral-sh/uv:"):
            return f"FROM {uv_ref}{match.group(2)}"
        if image.startswith("python:3.11"):
            return f"FROM {python_ref}{match.group(2)}"
        return match.group(0)  # a stage name (FROM builder ...) stays

    return _FROM.sub(replace, text)


def inputs_hash(root: Path, files: list[Path], folders: tuple[str, ...] = _SOURCES) -> str:
    """A short hash of the files and of every file under ``folders`` (caches excluded)."""
    digest = hashlib.sha256()
    paths = list(files)
    for folder in folders:
        paths += [
            p
            for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _run(command: list[str], log: Path, what: str, timeout: float = 1800) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if code.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-8:])
        raise BuildError(f"{what} failed (log: {log}):\n{tail}")


def python_standin(cache: Path) -> str:
    if podman.image_exists(PYTHON_STANDIN):
        return PYTHON_STANDIN
    rootfs = cache / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    progress("debootstrap: Debian bookworm with Python 3.11 (about a minute)")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3.11,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        cache / "debootstrap.log",
        "debootstrap",
    )
    for name in ("python3.11", "python3", "python"):  # where the official image has them
        link = rootfs / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to("/usr/bin/python3.11")
    _import(rootfs, PYTHON_STANDIN)
    shutil.rmtree(rootfs, ignore_errors=True)
    return PYTHON_STANDIN


PIP = "pip==25.0.1"  # only to download the uv wheel for the stand-in image


def uv_standin(cache: Path, version: str) -> str:
    ref = f"{UV_STANDIN}:{version}"
    if podman.image_exists(ref):
        return ref
    progress(f"uv {version} stand-in image from the uv wheel")
    wheels = cache / "uv-wheel"
    # pip through uv: the project's environment is made by uv and has no pip of its own.
    _run(
        [shutil.which("uv") or "uv", "tool", "run", "--from", PIP, "pip", "download", "-q",
         "--no-deps", "-d", str(wheels), f"uv=={version}"],
        cache / "uv-download.log",
        "pip download uv",
    )  # fmt: skip
    (wheel,) = wheels.glob(f"uv-{version}-*.whl")
    root = cache / "uv-root"
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in ("uv", "uvx"):
            target = root / name
            target.write_bytes(archive.read(f"uv-{version}.data/scripts/{name}"))
            target.chmod(0o755)
    _import(root, ref)
    return ref


def _import(folder: Path, ref: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(folder), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["podman", "import", "-q", "-", ref], stdin=tar.stdout, capture_output=True
    )
    tar.wait()
    if imported.returncode != 0:
        raise BuildError(f"podman import {ref}: {imported.stderr.decode()[-300:]}")


def base_images(cache: Path, root: Path) -> dict[str, str]:
    version = uv_version(root / "infra/images/ml.Dockerfile")
    return {"python": python_standin(cache), "uv": uv_standin(cache, version)}


def first_party_images(root: Path, cache: Path) -> dict[str, str]:
    """``{"ml": ref, "serving": ref}`` built from the committed Dockerfiles (reused if built)."""
    bases = base_images(cache, root)
    cache.mkdir(parents=True, exist_ok=True)
    uv_toml = cache / "uv.toml"
    uv_toml.write_text("native-tls = true\n")  # uv trusts the system CA bundle mounted below
    refs = {}
    for role in ("ml", "serving"):
        dockerfile = root / "infra/images" / f"{role}.Dockerfile"
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        tag = inputs_hash(root, [dockerfile, ignore, root / "pyproject.toml", root / "uv.lock"])
        ref = f"localhost/mlops-{role}:e2e-{tag}"
        refs[role] = ref
        if podman.image_exists(ref):
            progress(f"image {ref}: up to date")
            continue
        progress(f"building {ref} (a few minutes the first time)")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / f"{role}.Dockerfile"
            copy.write_text(substitute_from(dockerfile.read_text(), bases["uv"], bases["python"]))
            _run(
                ["podman", "build", "--network", "host", "-f", str(copy),
                 "--ignorefile", str(ignore),
                 "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "-v", f"{uv_toml}:/etc/uv/uv.toml:ro",
                 "-t", ref, str(root)],
                cache / f"build-{role}.log",
                f"building {ref}",
            )  # fmt: skip
    return refs


def services_image(root: Path, cache: Path) -> str:
    """The backing-service stand-ins' image (e2e/services.Containerfile)."""
    base = python_standin(cache)
    containerfile = root / "e2e/services.Containerfile"
    ref = f"localhost/e2e-services:{inputs_hash(root, [containerfile], ())}"
    if podman.image_exists(ref):
        progress(f"image {ref}: up to date")
        return ref
    progress(f"building {ref} (Debian packages and moto)")
    _run(
        ["podman", "build", "--network", "host", "--build-arg", f"BASE={base}",
         "-v", f"{CA_BUNDLE}:/etc/host-ca.crt:ro", "-f", str(containerfile), "-t", ref,
         str(containerfile.parent)],
        cache / "build-services.log",
        f"building {ref}",
    )  # fmt: skip
    return ref
