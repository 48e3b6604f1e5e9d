"""`mlops experiments search`: MLflow's filter, ordering and paging; a bad filter is one line."""

from __future__ import annotations

import mlflow
import pytest

from ml.errors import UserError
from ml.experiments import search as search_module
from ml.experiments.search import search_runs
from tests.conftest import mlflow_pointed_at

EXPERIMENT = "search-tests"


@pytest.fixture(scope="module")
def logged(mlflow_sqlite_uri):
    with mlflow_pointed_at(mlflow_sqlite_uri):
        mlflow.set_experiment(EXPERIMENT)
        for i in range(6):
            kind = "random_forest" if i % 2 else "logistic_regression"
            with mlflow.start_run(run_name=f"run-{i}", tags={"candidate": kind}):
                mlflow.log_params({"kind": kind})
                mlflow.log_metric("roc_auc", 0.70 + i / 100)


@pytest.fixture
def store(mlflow_sqlite_uri, logged):
    mlflow.set_tracking_uri(mlflow_sqlite_uri)


@pytest.mark.parametrize("page_size", [1000, 2])  # 2: the answer spans several pages
def test_filter_order_and_max(store, monkeypatch, page_size):
    monkeypatch.setattr(search_module, "PAGE_SIZE", page_size)
    found = search_runs(
        "metrics.roc_auc > 0.705 and tags.candidate = 'random_forest'",
        order_by=["metrics.roc_auc DESC"],
        max_results=5,
        experiments=[EXPERIMENT],
    )
    assert [r.name for r in found] == ["run-5", "run-3", "run-1"]
    assert search_runs("params.kind = 'logistic_regression'", max_results=2)[0].params == {
        "kind": "logistic_regression"
    }
    assert len(search_runs("", max_results=3, experiments=[EXPERIMENT])) == 3


@pytest.mark.parametrize(
    ("filter_string", "experiments", "message"),
    [
        ("metrics.roc_auc >>> 1", None, "MLflow rejected the search"),
        ("", ["no-such-experiment"], "no experiment named"),
    ],
)
def test_bad_input_is_one_line(store, filter_string, experiments, message):
    with pytest.raises(UserError, match=message) as error:
        search_runs(filter_string, experiments=experiments)
    assert "\n" not in error.value.line()


def test_cli_shows_the_metric_asked_for(store, mlflow_sqlite_uri, monkeypatch):
    from typer.testing import CliRunner

    from ml.cli.main import app

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", mlflow_sqlite_uri)
    args = ["experiments", "search", "params.kind = 'random_forest'", "--order-by",
            "metrics.roc_auc DESC", "--max", "2", "--experiment", EXPERIMENT]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "run-5" in lines[0] and "roc_auc=0.75" in lines[0] and lines[-1] == "2 run(s)"
