"""The two first-party images, referenced by digest.

Why configured digests rather than building here (pulumi-docker-build): a build needs a Docker
daemon or BuildKit on the machine running ``pulumi preview``/``up`` and on every machine that
renders this program offline, which the project's build machines do not have. The images are
built and pushed by ``scripts/`` before ``pulumi up`` (to ECR on AWS, to the local registry for
kind), and the stack config records their digests. A digest names exactly one image, so what
runs is reviewable in the stack file and cannot change behind a moved tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

# registry/path[:tag]@sha256:<64 hex>
DIGEST_REF = re.compile(
    r"^[a-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)+(?::[\w.-]+)?@sha256:[0-9a-f]{64}$"
)


@dataclass(frozen=True)
class ImagesArgs:
    ml: str
    """ML workload image: the ``mlops`` CLI, MLflow server, Feast (pipeline/monitor/jobs)."""
    serving: str
    """BentoML service image."""


class Images(pulumi.ComponentResource):
    """Validated, digest-pinned image references exposed as stack outputs."""

    ml: pulumi.Output[str]
    serving: pulumi.Output[str]

    def __init__(
        self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:Images", name, None, opts)
        for role, ref in (("ml", args.ml), ("serving", args.serving)):
            if not DIGEST_REF.match(ref):
                raise ValueError(f"{role} image {ref!r} is not pinned by digest (@sha256:...)")
        self.ml = pulumi.Output.from_input(args.ml)
        self.serving = pulumi.Output.from_input(args.serving)
        self.register_outputs({"ml": self.ml, "serving": self.serving})
