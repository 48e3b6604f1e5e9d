"""``python -m e2e --soak``: sustained load on the rendered serving pod (issue item 8).

Brings the platform up exactly as the loop does (feast apply → first batch → materialize →
bootstrap training → review → serving ready → live traffic), then sends requests through the
``serving`` Service for ``E2E_SOAK_S`` seconds (default 600) from a client container, sampling
the pod's ``/tmp`` emptyDir (where the prediction log spools before shipping) every 2 s. It then
stops the pod cleanly and requires every answered prediction in the object store, like the
loop's last step. The figures go to ``build/e2e/soak.json``: requests answered, rate,
latency percentiles, the peak and final disk use against the rendered ``sizeLimit``, and
predictions logged vs answered.
"""

from __future__ import annotations

import os

from e2e.loop import SERVICE_URL, STEPS, LoopState, step_logs_complete
from ml.serve.clients import scoring_requests

SOAK_S = float(os.environ.get("E2E_SOAK_S", "600"))
SAMPLE_EVERY_S = 2.0
CONCURRENCY = 8


def step_sustained_load(cluster, state: LoopState) -> None:
    """Load for ``SOAK_S`` seconds; the spool's disk use sampled throughout."""
    samples: list[int] = []
    bodies = scoring_requests(state.live, 2000)
    result = cluster.client_soak(
        SERVICE_URL, bodies, SOAK_S, concurrency=CONCURRENCY, every_s=SAMPLE_EVERY_S,
        sample=lambda: samples.append(cluster.disk_usage("serving")),
    )  # fmt: skip
    state.answered += result["codes"].get("200", 0)
    state.notes["soak"] = {
        **result,
        "concurrency": CONCURRENCY,
        "disk_samples": len(samples),
        "peak_disk_bytes": max(samples, default=0),
        "final_disk_bytes": samples[-1] if samples else 0,
        "disk_size_limit": cluster.empty_dir_limit("serving"),
    }


_BRING_UP = (
    "mlflow_users",
    "feast_apply",
    "ingest_first_batch",
    "materialize",
    "bootstrap_training",
    "review_and_promote",
    "serving_ready",
    "live_traffic",
)
SOAK_STEPS = (
    *(step for step in STEPS if step[0] in _BRING_UP),
    ("sustained_load", step_sustained_load),
    ("logs_complete_after_shutdown", step_logs_complete),
)
