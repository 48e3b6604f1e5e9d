"""Model cards from real MLflow data, and the fairness gate on a deliberately biased model."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ml.governance import approvals, audit
from ml.governance.model_card import write_model_card
from ml.train import LABEL, build_model, log_model

SECTIONS = (
    "## Intended use",
    "## Training data",
    "## Features",
    "## Evaluation",
    "### Per slice",
    "## Fairness",
    "### sex × age_band",
    "## Explanations",
    "### Individual decisions",
    "## Known limitations",
    "## Lineage",
    "## Approval history",
)


@pytest.fixture(scope="module")
def champion_card(trained_platform, tmp_path_factory):
    tp = trained_platform
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    approvals.register_candidate(
        tp.model_name, tp.champion_version, user="alice", role="data_scientist",
        audit_path=audit_path,
    )  # fmt: skip
    card = write_model_card(
        tp.model_name,
        tp.champion_version,
        training_set=tp.training_set,
        customers=tp.ingested.tables["customers"],
        features=tp.features,
        out_dir=tmp_path_factory.mktemp("card"),
        settings=tp.settings,
        audit_path=audit_path,
    )
    return card, audit_path


def test_card_has_every_section_filled_from_real_data(champion_card, trained_platform):
    card, _ = champion_card
    text = card.md.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert trained_platform.ingested.snapshot_sha256 in text
    assert "customer_profile" in text and "utilization" in text
    assert "n/a [" not in text.split("## Fairness")[1].split("### sex\n")[0]
    assert "alice" in text.split("## Approval history")[1]
    assert card.missing == []
    assert all(p.exists() and p.stat().st_size > 1000 for p in card.plots)
    assert "<table>" in card.html.read_text()


def test_card_is_logged_to_mlflow_and_tags_the_version(champion_card, trained_platform):
    card, _ = champion_card
    tp = trained_platform
    version = MlflowClient().get_model_version(tp.model_name, tp.champion_version)
    assert version.tags[approvals.CARD_TAG] == card.artifact_uri
    assert version.tags[approvals.FAIRNESS_TAG] == ("passed" if card.fairness_passed else "failed")
    logged = MlflowClient().list_artifacts(version.run_id, f"model_card/v{card.version}")
    assert {"model_card.md", "model_card.html", "card.json"} <= {
        a.path.rsplit("/", 1)[-1] for a in logged
    }


def test_champion_passes_the_fairness_gate(champion_card):
    card, _ = champion_card
    assert card.fairness_passed, card.fairness_reasons


def test_fairness_gate_fails_a_model_that_uses_sex(trained_platform, tmp_path):
    """A model given `sex` with a strong weight is blocked: its card fails the gate and
    promotion to production is refused."""
    tp = trained_platform
    customers = tp.ingested.tables["customers"]
    male = customers.set_index("customer_id")["sex"].eq("M").astype(float)
    training_set = tp.training_set.assign(sex_male=tp.training_set["customer_id"].map(male))
    features = [*tp.features, "sex_male"]
    config = __import__("ml.config", fromlist=["x"]).load_pipeline_config()
    model = build_model(config.candidates["logistic_regression"], seed=0)
    model.fit(training_set[features], training_set[LABEL])
    # The deliberate bias: being male adds 3 standard deviations to the log-odds of default.
    model.named_steps["model"].coef_[0, -1] = 3.0
    mlflow.set_experiment("governance-tests")
    with mlflow.start_run(run_name="biased", tags=MlflowClient().get_model_version(
        tp.model_name, tp.champion_version).tags) as run:  # fmt: skip
        log_model(model, training_set[features].head(5))
    name = "credit-risk-biased"
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version
    audit_path = tmp_path / "audit.jsonl"
    card = write_model_card(
        name, str(version), training_set=training_set, customers=customers, features=features,
        out_dir=tmp_path / "card", settings=tp.settings, audit_path=audit_path,
    )  # fmt: skip
    assert not card.fairness_passed
    assert any(r.startswith("sex: demographic parity difference") for r in card.fairness_reasons)
    assert "FAILED" in card.md.read_text()
    kwargs = {"audit_path": audit_path}
    approvals.register_candidate(name, version, user="alice", role="data_scientist", **kwargs)
    approvals.request_review(name, version, user="alice", role="data_scientist", **kwargs)
    approvals.approve(name, version, user="bob", role="reviewer", **kwargs)
    with pytest.raises(Exception, match="did not pass the fairness gate"):
        approvals.promote_to_production(
            name, version, user="carol", role="release_manager", **kwargs
        )
    assert audit.verify(audit_path).ok
    assert np.isfinite(card.fairness_passed)
