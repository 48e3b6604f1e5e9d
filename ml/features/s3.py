"""Let Feast's file offline store read ``s3://`` folders through pyarrow, with no s3fs.

Feast 0.67's file offline store reads a FileSource with ``dask.dataframe.read_parquet``, which
resolves ``s3://`` through fsspec and therefore needs the ``s3fs`` package (and its pinned
aiobotocore). pyarrow, already a dependency, has a native S3 filesystem that honours a custom
endpoint and the standard credential chain; :func:`register` makes fsspec use it for ``s3://``.
Feast's own schema reads already use pyarrow's filesystem, so both paths then agree.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from contract import env


@cache
def register() -> None:
    """Route fsspec's ``s3`` protocol to pyarrow's S3 filesystem (idempotent, per process)."""
    import fsspec
    import pyarrow.fs as pafs
    from fsspec.implementations.arrow import ArrowFSWrapper

    class PyArrowS3(ArrowFSWrapper):
        protocol = ("s3", "s3a")

        def __init__(self, client_kwargs: dict | None = None, **kwargs: Any) -> None:
            endpoint = (client_kwargs or {}).get("endpoint_url") or os.environ.get(
                env.AWS_ENDPOINT_URL_S3
            )
            options: dict[str, Any] = {"endpoint_override": endpoint} if endpoint else {}
            if kwargs.get("key") and kwargs.get("secret"):
                options |= {"access_key": kwargs["key"], "secret_key": kwargs["secret"]}
            region = os.environ.get(env.AWS_REGION) or os.environ.get(env.AWS_DEFAULT_REGION)
            if region:
                options["region"] = region
            super().__init__(pafs.S3FileSystem(**options))

        @classmethod
        def _strip_protocol(cls, path):  # type: ignore[override]
            if isinstance(path, str):
                for prefix in ("s3://", "s3a://"):
                    path = path.removeprefix(prefix)
            return super()._strip_protocol(path)

    fsspec.register_implementation("s3", PyArrowS3, clobber=True)
    fsspec.register_implementation("s3a", PyArrowS3, clobber=True)
