"""The pipeline registers the best candidate that passes both gates, not the best one."""

from types import SimpleNamespace

import pandas as pd

from ml.config import load_pipeline_config
from ml.evaluate import GateDecision
from ml.governance import model_card
from ml.pipeline import TrainingOutcome, keep_fair_winner
from ml.settings import Settings


def _candidate(name: str, auc: float):
    return SimpleNamespace(name=name, metrics={"roc_auc": auc}, model=name)


def _outcome(*candidates, failed_gate=()):
    decisions = {c.name: GateDecision(c.name not in failed_gate) for c in candidates}
    return TrainingOutcome(list(candidates), decisions, winner=candidates[0])


def test_an_unfair_better_candidate_is_left_out_and_named(monkeypatch, tmp_path):
    unfair = {"gbm": GateDecision(False, ["age_band: equalized odds difference 0.5 > 0.3"])}
    monkeypatch.setattr(
        model_card,
        "fairness_gate_of",
        lambda model, *a, **k: unfair.get(model, GateDecision(True)),
    )
    outcome = _outcome(_candidate("gbm", 0.86), _candidate("lr", 0.84), _candidate("rf", 0.85),
                       failed_gate={"rf"})  # fmt: skip
    keep_fair_winner(outcome, pd.DataFrame(), pd.DataFrame(), Settings(build_dir=tmp_path),
                     load_pipeline_config())  # fmt: skip
    assert outcome.winner.name == "lr"  # rf failed the performance gate, gbm the fairness one
    assert outcome.notes == ["gbm left out: fairness gate failed: " + unfair["gbm"].reasons[0]]


def test_no_winner_when_every_passing_candidate_is_unfair(monkeypatch, tmp_path):
    monkeypatch.setattr(model_card, "fairness_gate_of", lambda *a, **k: GateDecision(False, ["x"]))
    outcome = _outcome(_candidate("lr", 0.84))
    keep_fair_winner(outcome, pd.DataFrame(), pd.DataFrame(), Settings(build_dir=tmp_path),
                     load_pipeline_config())  # fmt: skip
    assert outcome.winner is None and len(outcome.notes) == 1
