"""`mlops monitor ...`: the drift-monitor job and the detection-quality experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from contract import env
from contract.objectstore import RETRAIN_TRIGGER_KEY
from ml.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(no_args_is_help=True, help="Detect drift, measure the detectors.")


@app.command()
def drift(
    reference: Annotated[
        str | None,
        typer.Option(
            help="Reference window: Parquet/CSV path or s3:// URL "
            "(default: the reports bucket's training reference)."
        ),
    ] = None,
    current: Annotated[
        str | None,
        typer.Option(
            help="Current window: Parquet/CSV path or s3:// URL "
            "(default: the newest prediction-log batches in the reports bucket)."
        ),
    ] = None,
    push_gateway: Annotated[
        str | None,
        typer.Option(
            envvar=env.PUSHGATEWAY_URL, help="Pushgateway host:port or URL to push gauges to."
        ),
    ] = None,
    window_records: Annotated[
        int,
        typer.Option(
            envvar="MLOPS_DRIFT_WINDOW_RECORDS", min=1, help="Newest live predictions compared."
        ),
    ] = 5000,
    window_seconds: Annotated[
        float,
        typer.Option(
            envvar="MLOPS_DRIFT_WINDOW_SECONDS", min=1, help="...no older than this (seconds)."
        ),
    ] = 3600.0,
    min_records: Annotated[
        int,
        typer.Option(
            envvar="MLOPS_DRIFT_MIN_RECORDS",
            min=10,
            help="Fewer live predictions is 'not enough traffic' (exit 0, no verdict).",
        ),
    ] = 200,
    report_html: Annotated[
        Path | None, typer.Option(help="Write Evidently's drift report here.")
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(help="Write the full drift report (Evidently's, plots, index.html) here."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the verdicts as JSON here.")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(help="Write the gauges in Prometheus' text format here (as pushed)."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Family-wise level of the alarm.")] = 0.01,
) -> None:
    """Compare the current window with the reference, print a verdict, set and push the gauges.

    Without --reference/--current (the CronJob), both windows come from the reports bucket
    (MLOPS_REPORTS_BUCKET); the verdict is written back there and, on drift, a retraining
    request that `mlops pipeline retrain` consumes. Exits 0 whether or not drift is found (the
    verdict is data; alerts fire from the gauges) and when there is not enough traffic yet.
    """
    from ml.monitor.drift import DriftConfig, detect, evidently_report_html
    from ml.monitor.push import push, set_gauges
    from ml.monitor.windows import WindowConfig

    window = WindowConfig(window_records, window_seconds, min_records)
    reports = _reports_bucket(reference, current)
    ref_frame, cur_frame = _windows(reference, current, reports, window)
    if reports is not None and len(cur_frame) < window.min_records:
        typer.echo(
            f"not enough traffic: {len(cur_frame)} live predictions in the window "
            f"(need {window.min_records}); no verdict"
        )
        if push_gateway:
            from ml.monitor.push import push_heartbeat

            push_heartbeat(
                push_gateway
            )  # the monitor is alive: MlopsDriftMonitorStale stays quiet
        return
    config = DriftConfig(alpha=alpha, features=_shared_features(ref_frame, cur_frame))
    result = detect(ref_frame, cur_frame, config)
    set_gauges(result, _labelled_quality(_with_labels(cur_frame, reports), config))
    if report_html:
        evidently_report_html(ref_frame, cur_frame, report_html, config, result)
    if report_dir:
        from ml.monitor.report import write_monitoring_report

        write_monitoring_report(ref_frame, cur_frame, report_dir, config, result)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=2))
    if metrics_file:
        _write_exposition(metrics_file)
    if reports is not None:
        from ml.monitor.windows import publish

        publish(reports, result, len(cur_frame))
    if push_gateway:
        push(push_gateway)
    typer.echo(result.verdict())
    if reports is not None and result.drift_detected:
        typer.echo(f"retraining requested: {reports.url(RETRAIN_TRIGGER_KEY)}")


def _write_exposition(path: Path) -> None:
    """The monitor's gauges exactly as a scrape or a push sends them (a textfile collector)."""
    from prometheus_client import generate_latest

    from ml.metrics import registry

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(generate_latest(registry()[0]))


def _reports_bucket(reference: str | None, current: str | None):
    """The reports bucket when a window must come from it, else ``None`` (embedded mode)."""
    from ml.objectstore import Bucket, configured

    if reference is not None and current is not None:
        return None
    if not configured("reports"):
        raise UserError(
            "no --reference/--current and no reports bucket",
            f"pass both files, or set {env.bucket('reports')} (the CronJob has it)",
        )
    return Bucket.for_role("reports")


def _windows(reference, current, reports, window):
    from ml.monitor import windows

    ref = _read(reference) if reference is not None else windows.reference(reports)
    cur = _read(current) if current is not None else windows.current(reports, window)
    return ref, cur


# Columns of a window that are not model inputs.
_NOT_FEATURES = {
    "score",
    "prediction",
    "request_id",
    "application_id",
    "timestamp",
    "model_version",
}


def _shared_features(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[str, ...]:
    """Model inputs both windows carry: the reference's columns minus score, label and ids."""
    from ml.data.generate import FEATURE_COLUMNS, LABEL

    if set(FEATURE_COLUMNS) <= set(reference.columns):
        return FEATURE_COLUMNS  # the usual case; a missing one is reported by detect()
    shared = [c for c in reference.columns if c in current.columns]
    features = tuple(c for c in shared if c not in _NOT_FEATURES | {LABEL})
    if not features:
        raise UserError(
            "the reference and current windows share no feature column",
            "retrain (it rewrites the reference) or check the prediction log's features",
        )
    return features


# Fewer labelled predictions than this give no quality gauge (the AUC would be noise).
MIN_LABELLED = 50


def _with_labels(frame: pd.DataFrame, reports) -> pd.DataFrame:
    """Files carry their labels; the cluster's window is joined to the known outcomes."""
    if reports is None:
        return frame
    from ml.monitor.windows import labelled

    joined = labelled(frame)
    return joined if len(joined) >= MIN_LABELLED else joined.iloc[0:0]


def _labelled_quality(frame: pd.DataFrame, config):
    """Quality of the window when it carries both the score and the label, else ``None``."""
    from ml.monitor.quality import quality

    needed = {config.prediction_column, config.target_column}
    if not needed <= set(frame.columns):
        return None
    labelled = frame.dropna(subset=list(needed))
    if labelled.empty:
        return None
    return quality(labelled, score=config.prediction_column, label=config.target_column)


def _read(location: str) -> pd.DataFrame:
    import pandas as pd

    if location.startswith("s3://"):
        return _read_s3(location)
    path = Path(location)
    if not path.is_file():
        raise UserError(f"no such file: {path}", "pass an existing Parquet or CSV file")
    readers = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise UserError(f"cannot read {path.name}", "use a .parquet or .csv file")
    try:
        return reader(path)
    except Exception as error:  # any parser error is the file's fault, not a bug
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"could not read {path}: {first}", "check the file's format") from None


def _read_s3(url: str) -> pd.DataFrame:
    """Parquet from the object store via pyarrow's S3 filesystem (honours AWS_ENDPOINT_URL_S3)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(url).to_pandas()
    except OSError as error:
        first = str(error).splitlines()[0]
        raise UserError(
            f"could not read {url}: {first}", "check the URL and the pod's S3 access"
        ) from None


@app.command()
def evaluate(
    windows: Annotated[
        int, typer.Option(min=2, help="Drifted windows per scenario and size.")
    ] = 30,
    null_windows: Annotated[
        int | None, typer.Option(min=2, help="No-drift windows (default: 5 x --windows).")
    ] = None,
    window_size: Annotated[int, typer.Option(min=100, help="Rows per current window.")] = 1000,
    seed: Annotated[int | None, typer.Option(help="Seed (default: MLOPS_SEED).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output JSON (default: build/eval/drift.json).")
    ] = None,
) -> None:
    """Measure false-positive, detection rate and delay: ours vs Evidently's default preset."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ml.monitor.evaluation import EvaluationConfig, evaluate, total_windows
    from ml.settings import get_settings

    settings = get_settings()
    config = EvaluationConfig(
        n_windows=windows,
        n_null_windows=null_windows or 5 * windows,
        window_size=window_size,
        seed=settings.seed if seed is None else seed,
    )
    out = out or settings.build / "eval" / "drift.json"
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("windows", total=total_windows(config))
        doc = evaluate(config, lambda label: bar.update(task, advance=1, description=label))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    for line in summary_lines(doc):
        typer.echo(line)
    typer.echo(f"wrote {out} in {doc['runtime_s']} s")


def summary_lines(doc: dict) -> list[str]:
    """A plain-text table of ``drift.json``: one line per scenario size."""
    ours, default = doc["ours"], doc["evidently_default"]
    low, high = doc["fpr_ci95"]["ours"]
    lines = [
        f"FPR ours {ours['fpr']:.3f} (95% CI {low:.3f}-{high:.3f}, "
        f"{doc['n_null_windows']} windows), Evidently default {default['fpr']:.3f}",
        f"{'scenario':<10}{'size':>6}  {'ours rate':>9} {'delay':>6}  {'default rate':>12}",
    ]
    for scenario, sizes in ours["scenarios"].items():
        for size, mine in sizes.items():
            theirs = default["scenarios"][scenario][size]
            mark = " *" if doc["material"].get(scenario) == size else ""
            delay = "-" if mine["delay_windows"] is None else f"{mine['delay_windows']:.2f}"
            lines.append(
                f"{scenario:<10}{size:>6}  {mine['detection_rate']:>9.2f} {delay:>6}  "
                f"{theirs['detection_rate']:>12.2f}{mark}"
            )
    lines.append(f"* material size; targets met: {doc['targets_met']}")
    return lines
