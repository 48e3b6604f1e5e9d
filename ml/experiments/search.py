"""Search runs with MLflow's own filter language, across experiments, in pages.

The filter, ordering and paging are MLflow's (``MlflowClient.search_runs``), so the same query
works on the embedded SQLite store and on the cluster's PostgreSQL; a bad filter becomes one
line naming what MLflow could not parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.errors import UserError

PAGE_SIZE = 1000  # MLflow's default page; the store caps a page at 50,000


@dataclass(frozen=True)
class FoundRun:
    run_id: str
    experiment: str
    name: str
    status: str
    start_time: int
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def search_runs(
    filter_string: str,
    order_by: list[str] | None = None,
    max_results: int = 100,
    experiments: list[str] | None = None,
) -> list[FoundRun]:
    """Runs matching ``filter_string``, ordered, at most ``max_results`` of them.

    Args:
        filter_string: an MLflow search filter, e.g.
            ``metrics.roc_auc > 0.8 and tags.candidate = 'random_forest'``.
        order_by: MLflow order clauses, e.g. ``["metrics.roc_auc DESC"]``.
        max_results: upper bound on runs returned (fetched in pages).
        experiments: experiment names; all active experiments when None.

    Raises:
        UserError: a filter or order clause MLflow rejects, or an unknown experiment.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    names = _experiment_names(client, experiments)
    found: list[FoundRun] = []
    token = None
    try:
        while len(found) < max_results:
            page = client.search_runs(
                list(names),
                filter_string,
                order_by=order_by,
                max_results=min(PAGE_SIZE, max_results - len(found)),
                page_token=token,
            )
            found += [_found(run, names) for run in page]
            token = page.token
            if not token:
                break
    except MlflowException as error:
        raise UserError(
            f"MLflow rejected the search: {error.message.splitlines()[0]}",
            "see https://mlflow.org/docs/latest/ml/search/search-runs/ for the syntax",
        ) from None
    return found


def _experiment_names(client, experiments: list[str] | None) -> dict[str, str]:
    """Experiment id → name, for the named experiments (or all active ones)."""
    if experiments is None:
        return {e.experiment_id: e.name for e in client.search_experiments()}
    chosen = {}
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise UserError(f"no experiment named {name!r}", "check --experiment")
        chosen[experiment.experiment_id] = name
    return chosen


def _found(run, names: dict[str, str]) -> FoundRun:
    info, data = run.info, run.data
    return FoundRun(
        run_id=info.run_id,
        experiment=names.get(info.experiment_id, info.experiment_id),
        name=info.run_name or "",
        status=info.status,
        start_time=info.start_time,
        metrics=dict(data.metrics),
        params=dict(data.params),
        tags={k: v for k, v in data.tags.items() if not k.startswith("mlflow.")},
    )
