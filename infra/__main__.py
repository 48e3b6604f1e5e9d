"""The Pulumi program: read the config, build the platform, compose the components, export."""

from __future__ import annotations

import pulumi

from infra import config, platforms, stack

cfg = config.load()
platform = platforms.build(cfg)
outputs = stack.compose(cfg, platform)
for key, value in {**platform.outputs, **outputs}.items():
    pulumi.export(key, value)
