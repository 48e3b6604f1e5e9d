"""Reading and writing the traffic policy; the model itself is :mod:`contract.traffic`.

Serving reads the policy from the file named by ``MLOPS_TRAFFIC_POLICY`` (YAML or JSON), else
from ``ml/serve/traffic.yaml``. The Kubernetes ModelServing component renders the same model into
a ConfigMap, so what a pod reads is what the component wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from contract.env import TRAFFIC_POLICY as POLICY_ENV
from contract.traffic import (
    CanaryPolicy,
    Router,
    ShadowSpec,
    TrafficPolicy,
    VariantSpec,
    bucket,
    in_sample,
)
from ml.errors import UserError

__all__ = [
    "POLICY_ENV",
    "CanaryPolicy",
    "Router",
    "ShadowSpec",
    "TrafficPolicy",
    "VariantSpec",
    "bucket",
    "in_sample",
    "load_policy",
    "save_policy",
]

DEFAULT_POLICY_PATH = Path(__file__).parent / "traffic.yaml"
SCHEMA_PATH = Path(__file__).parent / "traffic_policy.schema.json"


def policy_path() -> Path:
    """The file serving reads the policy from: ``$MLOPS_TRAFFIC_POLICY`` or the default."""
    from ml.settings import get_settings

    return get_settings().traffic_policy or DEFAULT_POLICY_PATH


def load_policy(path: Path | None = None) -> TrafficPolicy:
    """Read and validate a policy file (YAML or JSON); errors name the file and the field."""
    path = path or policy_path()
    if not path.is_file():
        raise UserError(f"no traffic policy at {path}", f"create it or fix {POLICY_ENV}")
    try:
        raw = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as error:
        msg = str(error).splitlines()[0]
        raise UserError(
            f"traffic policy {path} is not YAML/JSON: {msg}", "fix its syntax"
        ) from None
    try:
        return TrafficPolicy.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise UserError(
            f"traffic policy {path}: {where}: {first['msg']}", "fix that field"
        ) from None


def save_policy(policy: TrafficPolicy, path: Path) -> None:
    """Write ``policy`` atomically (a rename), so a reloading server never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = policy.model_dump_json(indent=2, exclude_none=True)
    if path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(json.loads(text), sort_keys=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def policy_json_schema() -> dict:
    """The policy's JSON Schema, as committed in ``traffic_policy.schema.json``."""
    schema = TrafficPolicy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlops-blueprint.local/schemas/traffic_policy.schema.json"
    return schema


def write_policy_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate the committed JSON Schema from the model."""
    path.write_text(json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n")
    return path
