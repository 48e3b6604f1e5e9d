"""Deduplicated MLflow artifacts: an artifact repository that stores each content once.

MLflow's default stores keep every logged file as its own object, so a 50-trial sweep stores
the same environment files, input example and manifest 50 times. This repository, selected by
the ``cas+`` scheme (``cas+file:///srv/artifacts``, ``cas+s3://bucket/prefix``), keeps two
trees in the store it wraps (any store MLflow has a repository for):

* ``blobs/<2 hex>/<sha256><suffix>[.zlib]``: each distinct content once, named by its SHA-256
  (and the file's suffix, so a server that sends a blob straight from disk still picks the
  right MIME type), zlib-compressed when that saves at least 10 % (as git stores objects);
* ``refs/<artifact path>``: for each logged file, a small JSON pointer ``{"blob", "size"}``.

It is meant for the tracking server's artifact proxy (``mlflow server --serve-artifacts
--artifacts-destination cas+...``): clients keep logging and loading through
``mlflow-artifacts:/`` exactly as before and never see the layout. Deleting artifacts (MLflow's
``gc``) removes pointers only; :func:`collect_garbage` removes the blobs no pointer references.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from contract.objectstore import ARTIFACTS_SCHEME, LOCAL_ARTIFACTS_SCHEME

with warnings.catch_warnings():
    # MLflow's registry loads its entry points (this module among them) when MLflow is first
    # imported; if this module is what imports MLflow first, that load finds it half-done and
    # warns. _register() at the bottom registers the schemes once the class exists.
    warnings.filterwarnings("ignore", message='Failure attempting to register .* "cas\\+')
    from mlflow.entities import FileInfo
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
    from mlflow.store.artifact.artifact_repo import ArtifactRepository, StreamUploadMixin
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

SCHEME_PREFIX = "cas+"
# One entry point per wrapped scheme (pyproject.toml, "mlflow.artifact_repository").
SCHEMES = (LOCAL_ARTIFACTS_SCHEME, ARTIFACTS_SCHEME)
BLOBS = "blobs"
REFS = "refs"
GC_STATE = "gc/candidates.json"
ZLIB = ".zlib"  # blob key suffix of compressed content
ZLIB_LEVEL = 1  # nearly all of level 9's saving here, at a fraction of its CPU time
MIN_SAVING = 4096  # bytes; one disk block
_CHUNK = 1 << 20


class DedupArtifactRepository(ArtifactRepository, StreamUploadMixin):
    """An MLflow artifact repository over ``artifact_uri`` minus its ``cas+`` prefix."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        # Imported here: MLflow's registry imports this module while it is being initialised.
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self.inner = get_artifact_repository(artifact_uri.removeprefix(SCHEME_PREFIX))
        # A local store is read and written directly: atomic renames, and a blob's own path
        # for the server to send (no temporary copy per download).
        self.root = (
            Path(self.inner.artifact_dir)
            if isinstance(self.inner, LocalArtifactRepository)
            else None
        )

    # -- writing -------------------------------------------------------------------------

    def log_artifact(self, local_file, artifact_path=None):
        with open(local_file, "rb") as stream:
            self.log_artifact_from_stream(stream, os.path.basename(local_file), artifact_path)

    def log_artifacts(self, local_dir, artifact_path=None):
        for folder, _, files in os.walk(local_dir):
            relative = os.path.relpath(folder, local_dir)
            target = _join(artifact_path, None if relative == "." else Path(relative).as_posix())
            for name in sorted(files):
                self.log_artifact(os.path.join(folder, name), target)

    def log_artifact_from_stream(
        self, stream: BinaryIO, artifact_file_name: str, artifact_path: str | None = None
    ) -> None:
        name = os.path.basename(artifact_file_name)
        with self._staged() as (staging, handle):
            digest, size = _copy_hashing(stream, handle)
            handle.close()
            blob = self._store_blob(staging, digest, name)
        self._write_pointer(_join(artifact_path, name), blob, size)

    async def log_artifact_from_async_stream(
        self,
        chunks: AsyncIterable[bytes],
        artifact_file_name: str,
        artifact_path: str | None = None,
    ) -> None:
        # The server's event loop calls this: file and store I/O go to threads, as MLflow's
        # own local repository does.
        name = os.path.basename(artifact_file_name)
        with self._staged() as (staging, handle):
            digest, size = hashlib.sha256(), 0
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
            handle.close()
            blob = await asyncio.to_thread(self._store_blob, staging, digest.hexdigest(), name)
        await asyncio.to_thread(self._write_pointer, _join(artifact_path, name), blob, size)

    @contextmanager
    def _staged(self) -> Iterator[tuple[str, BinaryIO]]:
        """A temporary file next to the blobs (same file system, so publishing is a rename)."""
        folder = self.root / BLOBS / ".staging" if self.root else None
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
        descriptor, path = tempfile.mkstemp(dir=folder, prefix="upload-")
        handle = os.fdopen(descriptor, "wb")
        try:
            yield path, handle
        finally:
            handle.close()
            with suppress(FileNotFoundError):
                os.remove(path)

    def _store_blob(self, staging: str, digest: str, name: str) -> str:
        """Store the staged content unless it is stored already; return its blob key.

        Content that zlib shrinks by at least 10 % is stored compressed (as git stores its
        objects): deduplication alone cannot help with files that differ in every run (a
        model's weights, its predictions), compression can.
        """
        raw, packed = blob_key(digest, name), blob_key(digest, name) + ZLIB
        for key in (packed, raw):
            if self._exists(key):
                return key
        if compressed := _compress_if_worth_it(staging):
            self._publish(compressed, packed)
            return packed
        self._publish(staging, raw)
        return raw

    def _exists(self, key: str) -> bool:
        return (self.root / key).exists() if self.root else self._inner_exists(key)

    def _publish(self, staging: str, key: str) -> None:
        try:
            if self.root:
                target = self.root / key
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(staging, 0o644)
                os.replace(staging, target)  # atomic: readers never see half a blob
            else:
                _upload_as(self.inner, staging, key)
        finally:
            with suppress(FileNotFoundError):
                os.remove(staging)

    def _write_pointer(self, path: str, blob: str, size: int) -> None:
        self._write_small(f"{REFS}/{path}", json.dumps({"blob": blob, "size": size}).encode())

    def _write_small(self, key: str, body: bytes) -> None:
        """Write a small object (a pointer, the collector's state) under ``key``."""
        if self.root:
            target = self.root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            staging.write_bytes(body)
            os.replace(staging, target)  # atomic, like a blob
            return
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "small"
            local.write_bytes(body)
            _upload_as(self.inner, str(local), key)

    def _read_small(self, key: str) -> bytes:
        """A small object's bytes; FileNotFoundError locally when it does not exist."""
        if self.root:
            return (self.root / key).read_bytes()
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "small"
            self.inner._download_file(key, str(local))
            return local.read_bytes()

    def _inner_exists(self, key: str) -> bool:
        client = getattr(self.inner, "_get_s3_client", None)
        if client is not None:
            bucket, prefix = self.inner.parse_s3_compliant_uri(self.inner.artifact_uri)
            try:
                client().head_object(Bucket=bucket, Key=posixpath.join(prefix, key))
                return True
            except Exception as error:  # botocore's ClientError; 404 means absent
                if "404" in str(error) or "Not Found" in str(error):
                    return False
                raise
        folder, name = posixpath.split(key)
        return any(posixpath.basename(f.path) == name for f in self.inner.list_artifacts(folder))

    # -- reading -------------------------------------------------------------------------

    def list_artifacts(self, path=None):
        listed = self.inner.list_artifacts(_join(REFS, path))
        infos = []
        for info in listed:
            relative = info.path.removeprefix(f"{REFS}/")
            if info.path == REFS or relative == path:
                continue
            size = None if info.is_dir else self._pointer(relative)["size"]
            infos.append(FileInfo(relative, info.is_dir, size))
        return sorted(infos, key=lambda f: f.path)

    def _download_file(self, remote_file_path, local_path):
        blob = self._pointer(remote_file_path)["blob"]
        if self.root:
            _unpack(self.root / blob, Path(local_path))
            return
        with tempfile.TemporaryDirectory() as folder:
            stored = Path(folder) / posixpath.basename(blob)
            self.inner._download_file(blob, str(stored))
            _unpack(stored, Path(local_path))

    def download_artifacts(self, artifact_path, dst_path=None):
        """One file straight from its blob on a local store (the server's path for every GET of
        a compressed blob): MLflow's generic download, with its listing, thread pool and
        progress bar, costs ten times the decompression."""
        if not self._is_local_file(artifact_path):
            return super().download_artifacts(artifact_path, dst_path)
        target = Path(dst_path or tempfile.mkdtemp()) / _join(artifact_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._download_file(artifact_path, str(target))
        return str(target)

    def get_local_path(self, artifact_path: str) -> str | None:
        """A stored-as-is blob's own path, so the server sends it without a copy."""
        if not self._is_local_file(artifact_path):
            return None
        blob = self._pointer(artifact_path)["blob"]
        return None if blob.endswith(ZLIB) else str(self.root / blob)

    def _is_local_file(self, artifact_path: str) -> bool:
        """True when the store is local and ``artifact_path`` is a logged file (not a folder)."""
        return self.root is not None and (self.root / REFS / _join(artifact_path)).is_file()

    def _pointer(self, path: str) -> dict:
        try:
            return json.loads(self._read_small(f"{REFS}/{_join(path)}"))
        except (FileNotFoundError, NotADirectoryError):
            raise MlflowException(
                f"No such artifact: '{path}'", error_code=RESOURCE_DOES_NOT_EXIST
            ) from None

    # -- deleting ------------------------------------------------------------------------

    def delete_artifacts(self, artifact_path=None):
        """Remove the pointers; the blobs stay until :func:`collect_garbage` finds them unused."""
        if self.root:
            target = self.root / REFS / _join(artifact_path)
            if target.is_dir():
                shutil.rmtree(target)
            else:
                with suppress(FileNotFoundError):
                    target.unlink()
            return
        self.inner.delete_artifacts(_join(REFS, artifact_path))


def blob_key(digest: str, file_name: str) -> str:
    suffix = "".join(Path(file_name).suffixes[-1:])
    if not suffix[1:].isalnum():  # no suffix, or something odd: no suffix
        suffix = ""
    return f"{BLOBS}/{digest[:2]}/{digest}{suffix.lower()}"


def _compress_if_worth_it(path: str) -> str | None:
    """zlib-compress ``path`` into a sibling file if its first MiB shrinks by 10 % and 4 KiB.

    Small files stay as they are even when they compress: the server sends a stored-as-is blob
    straight from disk, and a few hundred bytes saved are not worth a decompression per load.
    """
    with open(path, "rb") as source:
        head = source.read(_CHUNK)
        saved = len(head) - len(zlib.compress(head, ZLIB_LEVEL))
        if saved < max(0.1 * len(head), MIN_SAVING):
            return None
        target = f"{path}{ZLIB}"
        packer = zlib.compressobj(ZLIB_LEVEL)
        with open(target, "wb") as sink:
            chunk = head
            while chunk:
                sink.write(packer.compress(chunk))
                chunk = source.read(_CHUNK)
            sink.write(packer.flush())
    return target


def _unpack(source: Path, target: Path) -> None:
    """Copy a blob's content to ``target``, decompressing a compressed one."""
    if not source.name.endswith(ZLIB):
        shutil.copyfile(source, target)
        return
    unpacker = zlib.decompressobj()
    with source.open("rb") as packed, target.open("wb") as sink:
        while chunk := packed.read(_CHUNK):
            sink.write(unpacker.decompress(chunk))
        sink.write(unpacker.flush())


def _copy_hashing(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        target.write(chunk)
    return digest.hexdigest(), size


def _join(*parts: str | None) -> str:
    """Join artifact path parts; refuse ``..`` so nothing lands outside the store."""
    kept = [p.strip("/") for p in parts if p and p.strip("/")]
    if any(".." in p.split("/") for p in kept):
        raise MlflowException.invalid_parameter_value(f"artifact path {'/'.join(kept)!r} has '..'")
    return posixpath.join(*kept) if kept else ""


def _upload_as(inner: ArtifactRepository, local_file: str, key: str) -> None:
    """Upload ``local_file`` as ``key`` (the inner repository names files after their source)."""
    folder, name = posixpath.split(key)
    with tempfile.TemporaryDirectory() as staging:
        named = os.path.join(staging, name)
        shutil.copyfile(local_file, named)
        inner.log_artifact(named, folder or None)


# -- garbage collection ------------------------------------------------------------------


@dataclass(frozen=True)
class GarbageReport:
    blobs: int
    referenced: int
    deleted: int
    deleted_bytes: int
    pending: int  # unreferenced, younger than the grace period: deleted by a later run

    def to_dict(self) -> dict:
        return asdict(self)


def collect_garbage(store_uri: str, grace_s: float = 3600.0, now: float | None = None):
    """Delete blobs no pointer references once they have been unreferenced for ``grace_s``.

    A blob is uploaded before its pointer, so a blob seen unreferenced may belong to an upload
    in flight. The first run that sees it unreferenced only records it (``gc/candidates.json``
    in the store); a run at least ``grace_s`` later deletes it if it is still unreferenced, and
    the pointers are read again just before deleting. ``grace_s=0`` deletes at once: only for a
    store nothing is writing to.
    """
    repo = DedupArtifactRepository(store_uri)
    now = time.time() if now is None else now
    sizes = _blob_sizes(repo)
    unreferenced = set(sizes) - _referenced(repo)
    seen = {k: t for k, t in _read_state(repo).items() if k in unreferenced}
    seen.update({k: now for k in unreferenced - set(seen)})
    due = {k for k, t in seen.items() if now - t >= grace_s}
    due -= _referenced(repo)  # a pointer written while this ran keeps its blob
    for key in sorted(due):
        _delete_blob(repo, key)
    _write_state(repo, {k: t for k, t in seen.items() if k not in due})
    return GarbageReport(
        blobs=len(sizes),
        referenced=len(sizes) - len(unreferenced),
        deleted=len(due),
        deleted_bytes=sum(sizes[k] for k in due),
        pending=len(unreferenced) - len(due),
    )


def store_bytes(store_uri: str) -> dict[str, int]:
    """What the store holds: logged files and their bytes (as MLflow's plain store would keep
    them), and the blobs and pointers that actually take space (what an object store bills)."""
    repo = DedupArtifactRepository(store_uri)
    pointers = list(_files(repo, REFS))
    blobs = _blob_sizes(repo)
    return {
        "files": len(pointers),
        "logical_bytes": sum(pointer["size"] for _, pointer in _pointers(repo)),
        "blobs": len(blobs),
        "blob_bytes": sum(blobs.values()),
        "pointer_bytes": sum(size for _, size in pointers),
    }


def unused_blobs(store_uri: str) -> dict[str, float]:
    """The blobs the last collection found unused (key -> when first seen), still in grace."""
    return _read_state(DedupArtifactRepository(store_uri))


def _pointers(repo: DedupArtifactRepository) -> Iterator[tuple[str, dict]]:
    for path, _ in _files(repo, REFS):
        yield path, repo._pointer(path.removeprefix(f"{REFS}/"))


def _referenced(repo: DedupArtifactRepository) -> set[str]:
    return {pointer["blob"] for _, pointer in _pointers(repo)}


def _blob_sizes(repo: DedupArtifactRepository) -> dict[str, int]:
    return {
        path: size
        for path, size in _files(repo, BLOBS)
        if not path.startswith(f"{BLOBS}/.staging/")
    }


def _files(repo: DedupArtifactRepository, top: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every file under ``top`` in the inner store."""
    if repo.root:
        base = repo.root / top
        for folder, _, files in os.walk(base):
            for name in files:
                if name.endswith(".tmp"):
                    continue
                path = Path(folder) / name
                yield path.relative_to(repo.root).as_posix(), path.stat().st_size
        return
    for info in repo.inner._iter_artifacts_recursive(top):
        if not info.is_dir:
            yield info.path, info.file_size or 0


def _delete_blob(repo: DedupArtifactRepository, key: str) -> None:
    if repo.root:
        with suppress(FileNotFoundError):
            (repo.root / key).unlink()
    else:
        repo.inner.delete_artifacts(key)


def _read_state(repo: DedupArtifactRepository) -> dict[str, float]:
    try:
        return json.loads(repo._read_small(GC_STATE))
    except Exception:  # no state yet (first run), or an unreadable one: start afresh
        return {}


def _write_state(repo: DedupArtifactRepository, state: dict[str, float]) -> None:
    repo._write_small(GC_STATE, json.dumps(state, sort_keys=True).encode())


def _register() -> None:
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry as registry,
    )

    for scheme in SCHEMES:
        registry.register(scheme, DedupArtifactRepository)


_register()
