"""The champion behind KServe's Python model server, as a KServe user would deploy it.

Run by ``mlops bench serving`` with the interpreter of ``.tools/peers/kserve`` (KServe's own
environment; nothing here imports the project). The model is the champion's scikit-learn
pipeline exported with joblib; requests use KServe's V1 protocol with the 10 feature values in
the request, since KServe has no feature store::

    POST /v1/models/<name>:predict  {"instances": [[f1, ..., f10]]}  (null for a missing value)
    -> {"predictions": [P(default)]}

This is what KServe's own ``sklearnserver`` does (``predict_proba`` on the instances), written
out so the bench does not depend on that image.
"""

from __future__ import annotations

import argparse
from typing import Any

import joblib
import numpy as np
from kserve import Model, ModelServer, model_server


class ProbabilityModel(Model):
    """A joblib-exported classifier answering P(class 1) per instance."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.estimator: Any = None
        self.load()

    def load(self) -> bool:
        self.estimator = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        rows = np.asarray(payload["instances"], dtype=np.float64)  # null -> NaN (imputed)
        return {"predictions": self.estimator.predict_proba(rows)[:, 1].tolist()}


def _patient_worker_pings(timeout_s: float = 60.0) -> None:
    """Let a spawned worker take longer than 5 s to answer its first ping.

    KServe 0.21's multi-worker parent pings each worker every half second and kills one that
    does not answer within 5 s; a worker spawned on a busy 2-core machine is still importing
    KServe by then, so the parent killed and respawned workers in a loop (seen here: no worker
    ever served). Only the ping's patience changes; the serving path is KServe's own.
    """
    from kserve.protocol.rest.multiprocess import server

    original = server.RESTServerProcess.is_alive
    server.RESTServerProcess.is_alive = lambda self, timeout=5: original(self, timeout_s)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser], conflict_handler="resolve")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    _patient_worker_pings()
    server = ModelServer(http_port=args.http_port, workers=args.workers, enable_grpc=False)
    server.start([ProbabilityModel(args.model_name, args.model_path)])


if __name__ == "__main__":
    main()
