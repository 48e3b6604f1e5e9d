"""The pipeline configuration (``ml/pipeline.yaml``), validated once into typed models."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.errors import UserError

DEFAULT_PATH = Path(__file__).parent / "pipeline.yaml"
ModelKind = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    holdout_fraction: float = Field(gt=0.05, lt=0.6)


class CandidateConfig(_Strict):
    kind: ModelKind
    params: dict[str, Any] = Field(default_factory=dict)


class GateConfig(_Strict):
    min_roc_auc: float = Field(ge=0.5, le=1.0)
    max_brier: float = Field(gt=0.0, le=0.25)
    max_roc_auc_drop_vs_champion: float = Field(ge=0.0, le=0.2)
    select_by: Literal["roc_auc", "pr_auc"] = "roc_auc"


class PipelineConfig(_Strict):
    split: SplitConfig
    candidates: dict[str, CandidateConfig] = Field(min_length=1)
    gate: GateConfig
    decision_threshold: float = Field(gt=0.0, lt=1.0)


@cache
def load_pipeline_config(path: Path = DEFAULT_PATH) -> PipelineConfig:
    """Read and validate the pipeline config; a bad value names its key in one line."""
    if not path.exists():
        raise UserError(f"pipeline config {path} does not exist", "check MLOPS_PIPELINE_CONFIG")
    try:
        return PipelineConfig.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({error})", "fix the file") from None
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {key}: {first['msg']}", "fix that value") from None
