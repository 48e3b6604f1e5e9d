"""A predictor without a champion is not ready; alias moves and policy edits swap models live."""

import os
import time

import numpy as np
import pytest

from ml import metrics as ml_metrics
from ml.serve.models import LoadedModel
from ml.serve.predictor import NotReady, Predictor, _digest
from ml.serve.schemas import ScoreRequest
from ml.serve.traffic import TrafficPolicy, save_policy


class _Reader:
    names = ("x",)

    def read(self, ids):
        return np.ones((len(ids), 1)), np.ones(len(ids), dtype=bool)


class _Const:
    def __init__(self, p):
        self.p = p

    def predict_proba(self, rows):
        return np.column_stack([1 - np.full(len(rows), self.p), np.full(len(rows), self.p)])


def _model(version: str) -> LoadedModel:
    return LoadedModel("m", version, ["x", "loan_amount", "term_months"], _Const(0.1))


POLICY = TrafficPolicy(
    salt="s",
    variants={
        "champion": {"model": "champion", "weight": 1},
        "challenger": {"model": "c", "weight": 1},
    },
    shadows=[{"name": "shadow", "model": "shadow"}],
)
REQUEST = ScoreRequest(customer_id=7, loan_amount=1000.0, term_months=12)


class _Registry:
    """A fake alias table: the loader serves what the aliases point at, skips the rest."""

    def __init__(self):
        self.aliases: dict[str, str] = {}

    def loader(self, policy, current):
        live = {
            n: _model(self.aliases[s.model])
            for n, s in policy.variants.items()
            if s.model in self.aliases
        }
        skipped = {n: "alias unset" for n in [*policy.variants, "shadow"] if n not in live}
        return live, {}, skipped


def test_no_champion_is_not_ready_then_an_alias_makes_it_ready():
    registry = _Registry()
    reg, metrics = ml_metrics.registry()
    predictor = Predictor(POLICY, {}, _Reader(), 0.5, metrics=metrics)
    assert not predictor.ready
    with pytest.raises(NotReady):
        predictor.predict(REQUEST)
    registry.aliases["champion"] = "3"
    assert predictor.refresh(POLICY, registry.loader)
    assert predictor.ready and predictor.skipped == {
        "challenger": "alias unset",
        "shadow": "alias unset",
    }
    answer = predictor.predict(REQUEST)
    assert (answer["variant"], answer["model_version"]) == ("champion", "3")  # share moved over
    registry.aliases["champion"] = "4"
    assert predictor.refresh(POLICY, registry.loader)
    assert predictor.predict(REQUEST)["model_version"] == "4"
    info = {
        v: reg.get_sample_value(
            "mlops_model_info", {"variant": "champion", "model_name": "m", "model_version": v}
        )
        for v in "34"
    }
    assert info == {"3": 0.0, "4": 1.0}  # the swapped-out version stops reporting 1
    assert reg.get_sample_value("mlops_variant_available", {"variant": "challenger"}) == 0.0
    assert not predictor.refresh(POLICY, registry.loader)  # nothing moved, nothing swapped


def _kubelet_write(directory, text, generation):
    """Kubelet's atomic update: a new timestamped dir, then the ``..data`` symlink swapped."""
    data = directory / f"..{generation}"
    data.mkdir()
    (data / "policy.json").write_text(text)
    os.utime(data / "policy.json", (0, 0))  # the content changes, the times do not
    tmp = directory / "..data_tmp"
    tmp.symlink_to(data.name)
    tmp.replace(directory / "..data")
    if not (directory / "policy.json").exists():
        (directory / "policy.json").symlink_to("..data/policy.json")


def test_watcher_sees_a_kubelet_style_configmap_update(tmp_path):
    first = POLICY.model_copy(update={"salt": "one"})
    _kubelet_write(tmp_path, first.model_dump_json(), 1)
    path = tmp_path / "policy.json"
    before = (path.stat().st_mtime_ns, _digest(path))
    registry = _Registry()
    registry.aliases["champion"] = "1"
    predictor = Predictor(first, {"champion": _model("1")}, _Reader(), 0.5)
    predictor.watch(path, registry.loader, policy_every_s=0.05, models_every_s=60)
    try:
        _kubelet_write(tmp_path, POLICY.model_copy(update={"salt": "two"}).model_dump_json(), 2)
        assert path.stat().st_mtime_ns == before[0] and _digest(path) != before[1]
        deadline = time.monotonic() + 5
        while predictor.policy.salt != "two" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert predictor.policy.salt == "two"
    finally:
        predictor.close()


def test_a_bad_policy_file_keeps_the_last_good_one(tmp_path):
    path = tmp_path / "policy.json"
    save_policy(POLICY, path)
    registry = _Registry()
    registry.aliases["champion"] = "1"
    predictor = Predictor(POLICY, {"champion": _model("1")}, _Reader(), 0.5)
    predictor.watch(path, registry.loader, policy_every_s=0.05, models_every_s=60)
    try:
        path.write_text("{not json")
        time.sleep(0.3)
        assert predictor.policy == POLICY and predictor.ready
    finally:
        predictor.close()


def test_pod_opens_feast_from_the_mounted_config_not_the_repo(tmp_path, monkeypatch):
    from ml.serve.runtime import open_feature_store
    from ml.settings import Settings

    repo, config = tmp_path / "repo", tmp_path / "etc" / "feature_store.yaml"
    repo.mkdir()
    config.parent.mkdir()
    config.write_text(
        f"project: mounted\nregistry: {tmp_path / 'registry.db'}\nprovider: local\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
        "entity_key_serialization_version: 3\n"
    )
    monkeypatch.setenv("FEAST_FS_YAML_FILE_PATH", str(config))
    store = open_feature_store(Settings(feature_repo=repo))
    assert store.config.project == "mounted" and store.repo_path == repo


def test_serving_mlflow_calls_fail_fast_unless_the_deployment_says_so(monkeypatch, tmp_path):
    from ml.serve.runtime import SERVING_MLFLOW_HTTP, configure_mlflow
    from ml.settings import Settings

    for variable in SERVING_MLFLOW_HTTP:  # recorded by setenv, so restored after the test
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    configure_mlflow(Settings(build_dir=tmp_path))
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
