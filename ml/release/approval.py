"""Wait for the governance state machine's recorded approval of a version (never approve).

A release pipeline must not be able to approve what it releases: separation of duties is the
point of the review. So CI only polls the version's ``governance.status`` until a reviewer's
``mlops governance approve`` has been recorded, and stops on a rejection or at a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ml.errors import UserError
from ml.governance.approvals import REJECTED, SERVABLE, STATUS_TAG

Clock = Callable[[], float]


def wait_for_approval(
    model: str,
    version: str,
    status_of: Callable[[], str | None],
    *,
    timeout_s: float,
    interval_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = time.monotonic,
    out: Callable[[str], None] = print,
) -> str:
    """Poll ``status_of()`` until the version is servable; return that status.

    Raises:
        UserError: the version was rejected, or no approval was recorded within ``timeout_s``.
    """
    deadline = clock() + timeout_s
    last: str | None = "?"
    while True:
        status = status_of()
        if status != last:
            out(f"{model} version {version}: {status or 'not in the approval workflow'}")
            last = status
        if status in SERVABLE:
            return str(status)
        if status == REJECTED:
            raise UserError(
                f"{model} version {version} was rejected in review",
                "see `mlops governance status` for the reason; release another version",
            )
        if clock() >= deadline:
            raise UserError(
                f"no approval of {model} version {version} was recorded within "
                f"{timeout_s / 60:.0f} minutes",
                f"a reviewer runs `mlops governance approve {version}`, then re-run the release",
            )
        sleep(interval_s)


def registry_status(model: str, version: str) -> Callable[[], str | None]:
    """A ``status_of`` reading the version's ``governance.status`` tag from the registry."""
    from mlflow import MlflowClient

    def status_of() -> str | None:
        return (MlflowClient().get_model_version(model, version).tags or {}).get(STATUS_TAG)

    return status_of
