"""The stand-ins create the buckets the rendered pods name, MLflow's artifact bucket included."""

from __future__ import annotations

from contract.objectstore import artifact_destination
from e2e.standins import buckets


def test_buckets_come_from_the_pods_env_and_the_tracking_servers_destination() -> None:
    server = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "mlflow",
                            "args": [
                                "--serve-artifacts",
                                f"--artifacts-destination={artifact_destination('art-1')}",
                            ],
                            "env": [{"name": "MLOPS_FEATURES_BUCKET", "value": "feat-1"}],
                        }
                    ]
                }
            }
        },
    }
    objects = {("mlops", "Deployment", "mlflow-server"): server}
    assert buckets(objects) == {"artifacts": "art-1", "features": "feat-1"}
