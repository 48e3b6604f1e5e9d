"""The object store as workloads see it: buckets by role, keys from :mod:`contract.objectstore`.

One small wrapper over boto3 so that every workload talks to S3 (or SeaweedFS, or the e2e's
stand-in) the same way: the endpoint comes from ``AWS_ENDPOINT_URL_S3`` (read by boto3 itself),
credentials from the standard chain (static keys locally, IRSA on EKS), and the bucket of each
role from ``MLOPS_<ROLE>_BUCKET``. Errors a user can meet become one-line :class:`UserError` or
:class:`ServiceUnavailable` messages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from contract import env
from ml.errors import ServiceUnavailable, UserError

if TYPE_CHECKING:
    import pandas as pd


def bucket_name(role: str) -> str:
    """The bucket of ``role`` from ``MLOPS_<ROLE>_BUCKET``."""
    from ml.settings import get_settings

    name = get_settings().bucket(role)
    if not name:
        raise UserError(
            f"{env.bucket(role)} is not set",
            f"set it to the {role} bucket (the platform gives it to every pod that needs it)",
        )
    return name


def configured(role: str) -> bool:
    """Whether this process has a bucket for ``role`` (pods do; the embedded demo does not)."""
    from ml.settings import get_settings

    return get_settings().bucket(role) is not None


@cache
def _client() -> Any:
    import boto3
    from botocore.config import Config

    # Bounded retries and timeouts: a store that is down fails a job in seconds, not minutes.
    config = Config(
        connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
    )
    return boto3.client("s3", config=config)


@dataclass(frozen=True)
class Bucket:
    """One bucket; keys are relative to it."""

    name: str

    @classmethod
    def for_role(cls, role: str) -> Bucket:
        return cls(bucket_name(role))

    def url(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        self._call(
            "put",
            key,
            lambda c: c.put_object(Bucket=self.name, Key=key, Body=data, ContentType=content_type),
        )

    def get_bytes(self, key: str) -> bytes:
        return self._call("get", key, lambda c: c.get_object(Bucket=self.name, Key=key))[
            "Body"
        ].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            _client().head_object(Bucket=self.name, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._unavailable("head", key, error) from None
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in lexical order."""
        pages = self._call(
            "list",
            prefix,
            lambda c: list(
                c.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
            ),
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda c: c.delete_object(Bucket=self.name, Key=key))

    def put_parquet(self, key: str, frame: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.put_bytes(key, buffer.getvalue())

    def get_parquet(self, key: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.get_bytes(key)))

    def _call(self, verb: str, key: str, action):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action(_client())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise UserError(
                    f"{self.url(key)} does not exist", "check which step should have written it"
                ) from None
            if code == "NoSuchBucket":
                raise UserError(
                    f"bucket {self.name} does not exist", "create it, or fix the bucket variable"
                ) from None
            raise self._unavailable(verb, key, error) from None
        except BotoCoreError as error:
            raise self._unavailable(verb, key, error) from None

    def _unavailable(self, verb: str, key: str, error: Exception) -> ServiceUnavailable:
        first = (str(error).splitlines() or [type(error).__name__])[0]
        endpoint = os.environ.get(env.AWS_ENDPOINT_URL_S3, "AWS S3")
        return ServiceUnavailable(
            f"object store {verb} {self.url(key)} failed ({endpoint}): {first}",
            "check the endpoint, the credentials and the network policy",
        )
