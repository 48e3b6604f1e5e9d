"""Model cards: one Markdown + HTML document per registered model version, from real data.

:func:`write_model_card` reads the version, its run (parameters, metrics, tags) and its lineage
tags from MLflow, re-scores the run's own time-based holdout with the registered model, and
writes: intended use and limitations (merged from the human-written
``context/<model-name>.yaml``), training data and its snapshot hashes, the features of the feature
service, metrics overall and per slice, fairness per protected attribute and intersection (with
the fairness gate's decision), explanations, lineage, and the approval history from the audit
log. The card and its plots are logged as artifacts of the version's run (``model_card/``) and the
version gets the tags ``governance.model_card`` and ``governance.fairness_gate``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ml.errors import UserError
from ml.evaluate import GateDecision
from ml.governance import audit, explain, fairness
from ml.governance.approvals import CARD_TAG, FAIRNESS_TAG, STATUS_TAG
from ml.governance.config import GovernanceConfig, load_governance_config
from ml.settings import Settings

CONTEXT_DIR = Path(__file__).parent / "context"
TEMPLATES_DIR = Path(__file__).parent / "templates"
SLICE_COLUMNS = ("sex", "age_band", "term_months")
ARTIFACT_PATH = "model_card"


@dataclass(frozen=True)
class ModelCard:
    model_name: str
    version: str
    md: Path
    html: Path
    json: Path
    plots: list[Path]
    fairness_passed: bool
    fairness_reasons: list[str]
    missing: list[str] = field(default_factory=list)  # sections without their source data
    artifact_uri: str = ""


def write_model_card(
    model_name: str,
    version: str,
    *,
    training_set: pd.DataFrame,
    customers: pd.DataFrame,
    features: list[str],
    out_dir: Path,
    settings: Settings,
    governance_config: GovernanceConfig | None = None,
    audit_path: Path | None = None,
    log_to_mlflow: bool = True,
) -> ModelCard:
    """Write the card of ``model_name`` version ``version`` and log it to MLflow.

    Args:
        model_name: the registered model.
        version: its version.
        training_set: the point-in-time training set the version's run was trained on.
        customers: the customers table (``customer_id`` and the protected attributes).
        features: the model's input columns.
        out_dir: where ``model_card.md``, ``model_card.html``, ``card.json`` and ``plots/`` go.
        settings: for the seed and the paths.
        governance_config: default: ``governance.yaml``.
        audit_path: the audit log to read the approval history from (default: the settings').
        log_to_mlflow: log the files as run artifacts and tag the version.
    """
    from ml.config import load_pipeline_config

    config = governance_config or load_governance_config()
    threshold = load_pipeline_config().decision_threshold
    facts = _registry_facts(model_name, str(version))
    evaluation = _evaluate(facts, training_set, customers, features, threshold, settings, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(evaluation, out_dir / "plots")
    context = _context(model_name)
    history = audit.read(audit_path, audit.model_subject(model_name, version))
    document = _document(facts, evaluation, context, history, plots, out_dir, threshold)
    card = _write(document, out_dir, plots, evaluation["gate"])
    if log_to_mlflow:
        card = _log(card, facts, evaluation["gate"])
    return card


# --- gathering -----------------------------------------------------------------------------


def _registry_facts(model_name: str, version: str) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        model_version = client.get_model_version(model_name, version)
    except MlflowException:
        raise UserError(
            f"{model_name} has no version {version}", "see `mlops governance status <model>`"
        ) from None
    run = client.get_run(model_version.run_id)
    return {
        "model_name": model_name,
        "version": version,
        "version_tags": dict(model_version.tags),
        "aliases": list(model_version.aliases or []),
        "created": pd.Timestamp(model_version.creation_timestamp, unit="ms", tz="UTC"),
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "params": dict(run.data.params),
        "logged_metrics": dict(run.data.metrics),
        "run_tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    }


def _evaluate(facts, training_set, customers, features, threshold, settings, config) -> dict:
    import mlflow

    from ml.evaluate import classification_metrics

    model = mlflow.sklearn.load_model(f"models:/{facts['model_name']}/{facts['version']}")
    train, holdout = fairness_holdout(training_set, customers, config)
    y, score, report = _scored_fairness(model, holdout, features, config, threshold, settings.seed)
    importance = explain.global_importance(
        model, holdout[features], y, config.explanations.permutation_repeats, settings.seed,
        config.explanations.top_features,
    )  # fmt: skip
    typical = train[features].median(numeric_only=True)
    picks = explain.pick_cases(score, threshold, config.explanations.sample_cases, settings.seed)
    cases = [
        explain.explain_case(
            model,
            holdout[features].iloc[[i]],
            typical,
            case_id=str(holdout["application_id"].iloc[i]),
            label=label,
            threshold=threshold,
            top=config.explanations.top_features,
        )
        for i, label in picks
    ]
    return {
        "train": train,
        "holdout": holdout,
        "metrics": classification_metrics(y, score, threshold),
        "slices": slice_metrics(holdout, y, score, threshold),
        "fairness": report,
        "gate": fairness.fairness_gate(report, config.fairness),
        "fairness_warnings": fairness.fairness_warnings(report, config.fairness),
        "gate_on": config.fairness.gate_on,
        "importance": importance,
        "cases": cases,
        "features": features,
    }


def fairness_holdout(
    training_set: pd.DataFrame, customers: pd.DataFrame, config: GovernanceConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training set's time split, the holdout joined to the protected attributes."""
    from ml.config import load_pipeline_config
    from ml.train import time_split

    train, holdout = time_split(training_set, load_pipeline_config().split.holdout_fraction)
    protected = list(config.fairness.protected_attributes)
    holdout = holdout.merge(customers[["customer_id", *protected]], on="customer_id", how="left")
    return train, holdout


def fairness_gate_of(
    model,
    training_set: pd.DataFrame,
    customers: pd.DataFrame,
    features: list[str],
    settings: Settings,
    config: GovernanceConfig | None = None,
) -> GateDecision:
    """The fairness gate a model's card would record, computed before it is registered.

    Same holdout, threshold, bootstrap seed and bounds as :func:`write_model_card`, so a
    pipeline can leave out a candidate the promotion gate would refuse.
    """
    from ml.config import load_pipeline_config

    config = config or load_governance_config()
    _, holdout = fairness_holdout(training_set, customers, config)
    threshold = load_pipeline_config().decision_threshold
    *_, report = _scored_fairness(model, holdout, features, config, threshold, settings.seed)
    return fairness.fairness_gate(report, config.fairness)


def _scored_fairness(model, holdout, features, config, threshold, seed):
    """``(y, score, fairness report)`` of ``model`` on the joined holdout."""
    from ml.train import LABEL

    y = holdout[LABEL].to_numpy().astype(int)
    score = model.predict_proba(holdout[features])[:, 1]
    protected = holdout[list(config.fairness.protected_attributes)]
    report = fairness.fairness_report(y, score, protected, config.fairness, threshold, seed=seed)
    return y, score, report


def slice_metrics(
    frame: pd.DataFrame, y: np.ndarray, score: np.ndarray, threshold: float
) -> pd.DataFrame:
    """Rows, default rate, ROC AUC, accuracy, recall and flag rate per value of each slice."""
    from sklearn.metrics import roc_auc_score

    rows = []
    predicted = score >= threshold
    for column in [c for c in SLICE_COLUMNS if c in frame.columns]:
        for value, index in frame.groupby(column, observed=True).indices.items():
            yt, ys, yp = y[index], score[index], predicted[index]
            both = 0 < yt.sum() < len(yt)
            rows.append(
                {
                    "slice": column,
                    "value": str(value),
                    "rows": len(index),
                    "default_rate": float(yt.mean()),
                    "roc_auc": float(roc_auc_score(yt, ys)) if both else float("nan"),
                    "accuracy": float((yp == yt).mean()),
                    "recall": float(yp[yt == 1].mean()) if yt.sum() else float("nan"),
                    "flagged_rate": float(yp.mean()),
                }
            )
    return pd.DataFrame(rows)


def _context(model_name: str) -> dict[str, Any]:
    """The human-written context, with the file's hash; empty (and flagged) when missing."""
    path = CONTEXT_DIR / f"{model_name}.yaml"
    if not path.exists():
        return {"missing": True, "path": _display_path(path)}
    raw = path.read_bytes()
    data = yaml.safe_load(raw) or {}
    _require_text_lists(data, path)
    return {**data, "missing": False, "path": _display_path(path),
            "sha256": hashlib.sha256(raw).hexdigest()}  # fmt: skip


# The card renders these as bullet lists of sentences.
_TEXT_LISTS = ("owners", "intended_use", "intended_users", "out_of_scope", "limitations")


def _require_text_lists(data: dict[str, Any], path: Path) -> None:
    """Each list the card renders holds sentences, not mappings.

    YAML reads an unquoted item with ``": "`` in it (``- Portfolio monitoring: track ...``) as a
    one-key mapping, which the card then printed as ``{'Portfolio monitoring': '...'}``.

    Raises:
        UserError: naming the key and the item to quote.
    """
    for key in _TEXT_LISTS:
        for item in data.get(key) or []:
            if not isinstance(item, str):
                raise UserError(
                    f"{_display_path(path)}: an item of {key} is not text: {item!r}",
                    'quote it (YAML reads "- a: b" as a mapping)',
                )


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return str(path)


def _feature_rows(feature_service: str, features: list[str]) -> list[dict[str, str]]:
    """One row per model input: its feature view, type, freshness limit and meaning."""
    from ml.features.definitions import FEATURE_SERVICES

    service = FEATURE_SERVICES.get(feature_service)
    views: dict[str, tuple[str, str, str]] = {}
    if service is not None:
        for projection in service.feature_view_projections:
            view = _view(projection.name)
            ttl = f"{view.ttl.days} days" if getattr(view, "ttl", None) else "computed"
            for f in projection.features:
                views[f.name] = (projection.name, str(f.dtype), ttl)
    return [
        {
            "name": name,
            "view": views.get(name, ("request", "Float64/Int64", "per request"))[0],
            "dtype": views.get(name, ("", "number", ""))[1],
            "ttl": views.get(name, ("", "", "per request"))[2],
            "meaning": explain.describe(name),
        }
        for name in features
    ]


def _view(name: str):
    from ml.features import definitions

    for view in [*definitions.FEATURE_VIEWS, *definitions.ON_DEMAND_VIEWS]:
        if view.name == name:
            return view
    return None


# --- rendering -----------------------------------------------------------------------------


def _plots(evaluation: dict, plot_dir: Path) -> list[Path]:
    paths = fairness.plot_fairness(evaluation["fairness"], plot_dir)
    paths.append(explain.plot_global(evaluation["importance"], plot_dir / "importance.png"))
    paths += [
        explain.plot_case(case, plot_dir / f"case_{case.case_id}.png")
        for case in evaluation["cases"]
    ]
    return paths


def _document(facts, evaluation, context, history, plots, out_dir, threshold) -> dict:
    from ml.lineage import Lineage

    tags = facts["version_tags"]
    lineage = {k.removeprefix("lineage."): v for k, v in tags.items() if k.startswith("lineage.")}
    missing = [] if not context["missing"] else ["intended use and limitations (context file)"]
    if set(Lineage.__dataclass_fields__) - set(lineage):
        missing.append("lineage tags")
    if not history:
        missing.append("approval history (no audit entries yet)")
    train, holdout = evaluation["train"], evaluation["holdout"]
    return {
        **facts,
        "status": tags.get(STATUS_TAG, "not in the approval workflow"),
        "owner": tags.get("governance.owner", "-"),
        "threshold": threshold,
        "context": context,
        "lineage": lineage,
        "data": _data_facts(train, holdout),
        "features": _feature_rows(lineage.get("feature_service", ""), evaluation["features"]),
        "metrics": evaluation["metrics"],
        "slices": evaluation["slices"].to_dict("records"),
        "fairness": evaluation["fairness"],
        "gate": evaluation["gate"],
        "fairness_warnings": evaluation["fairness_warnings"],
        "gate_on": evaluation["gate_on"],
        "importance": evaluation["importance"],
        "cases": evaluation["cases"],
        "history": history,
        "plots": {p.stem: p.relative_to(out_dir).as_posix() for p in plots},
        "missing": missing,
        "generated": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    }


def _data_facts(train: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, Any]:
    from ml.train import LABEL

    def span(frame: pd.DataFrame) -> str:
        times = frame["event_timestamp"]
        return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}"

    return {
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "train_span": span(train),
        "holdout_span": span(holdout),
        "train_default_rate": float(train[LABEL].mean()),
        "holdout_default_rate": float(holdout[LABEL].mean()),
        "customers": int(pd.concat([train, holdout])["customer_id"].nunique()),
    }


def _write(document: dict, out_dir: Path, plots: list[Path], gate) -> ModelCard:
    import jinja2
    import markdown

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: "n/a" if v != v else f"{v:.1%}"  # NaN != NaN
    env.filters["num"] = lambda v, d=3: "n/a" if v != v else f"{v:.{d}f}"
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    text = env.get_template("model_card.md.j2").render(**document)
    md_path = out_dir / "model_card.md"
    md_path.write_text(text)
    body = markdown.markdown(text, extensions=["tables", "toc", "sane_lists"])
    title = f"Model card: {document['model_name']} v{document['version']}"
    html_path = out_dir / "model_card.html"
    html_path.write_text(env.get_template("model_card.html.j2").render(title=title, body=body))
    json_path = out_dir / "card.json"
    json_path.write_text(json.dumps(_summary(document), indent=2, default=str))
    return ModelCard(
        document["model_name"], document["version"], md_path, html_path, json_path, plots,
        gate.passed, list(gate.reasons), document["missing"],
    )  # fmt: skip


def _summary(document: dict) -> dict[str, Any]:
    """The machine-readable digest the report site and the demo summary use."""
    return {
        "model_name": document["model_name"],
        "version": document["version"],
        "status": document["status"],
        "aliases": document["aliases"],
        "run_id": document["run_id"],
        "run_name": document["run_name"],
        "lineage": document["lineage"],
        "metrics": document["metrics"],
        "fairness_gate": {"passed": document["gate"].passed, "reasons": document["gate"].reasons},
        "missing": document["missing"],
        "generated": document["generated"],
    }


def _log(card: ModelCard, facts: dict, gate) -> ModelCard:
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = facts["run_id"]
    artifact_path = f"{ARTIFACT_PATH}/v{card.version}"
    client.log_artifacts(run_id, str(card.md.parent), artifact_path=artifact_path)
    uri = f"runs:/{run_id}/{artifact_path}/model_card.md"
    tags = {
        CARD_TAG: uri,
        FAIRNESS_TAG: "passed" if gate.passed else "failed",
        "governance.fairness_reasons": "; ".join(gate.reasons)[:4000] or "-",
    }
    for key, value in tags.items():
        client.set_model_version_tag(card.model_name, card.version, key, value)
    return ModelCard(**{**card.__dict__, "artifact_uri": uri})


def card_for_version(
    model_name: str, version: str, settings: Settings, out_dir: Path | None = None
) -> ModelCard:
    """Rebuild the version's training set and write its card.

    The training set is rebuilt bit for bit from the archived inputs named by the manifest on
    the version's run (``mlops features rebuild``); the customers' protected attributes come
    from the seeded dataset. Its hash must equal the version's ``lineage.training_set_sha256``:
    a card is only written from the data the model saw.
    """
    from mlflow import MlflowClient

    from ml.data import generate
    from ml.data.snapshot import frame_sha256
    from ml.features import store as feature_store
    from ml.features.lineage import run_manifest
    from ml.features.rebuild import rebuild_training_set

    tags = _registry_facts(model_name, str(version))["version_tags"]
    service = tags.get("lineage.feature_service", settings.feature_service)
    manifest = run_manifest(MlflowClient().get_model_version(model_name, str(version)).run_id)
    if manifest is None:
        raise UserError(
            f"{model_name} v{version}'s run has no training-set manifest",
            "regenerate the card where the version was trained (the demo or the pipeline job)",
        )
    training_set = rebuild_training_set(manifest, settings.data_dir / "snapshots").frame
    expected = tags.get("lineage.training_set_sha256")
    if expected and frame_sha256(training_set) != expected:
        raise UserError(
            f"the rebuilt training set does not match {model_name} v{version}'s lineage hash "
            f"{expected[:12]}",
            "the snapshot archive was changed; regenerate the card where the version was trained",
        )
    customers = generate(settings.n_customers, settings.seed, settings.history_days).customers
    return write_model_card(
        model_name,
        str(version),
        training_set=training_set,
        customers=customers,
        features=feature_store.model_features(service),
        out_dir=out_dir or settings.model_card_dir(version, model_name),
        settings=settings,
    )
