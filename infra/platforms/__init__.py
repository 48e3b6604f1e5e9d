"""Targets: each turns the stack config into a :class:`~infra.platforms.base.Platform`."""

from __future__ import annotations

from infra.config import StackConfig
from infra.platforms.base import Platform


def build(cfg: StackConfig) -> Platform:
    """Create the target's infrastructure; the only place that branches on the target."""
    if cfg.target == "aws":
        from infra.platforms.aws import AwsPlatform

        return AwsPlatform("aws", cfg).platform
    from infra.platforms.local import LocalPlatform

    return LocalPlatform("local", cfg).platform


__all__ = ["Platform", "build"]
