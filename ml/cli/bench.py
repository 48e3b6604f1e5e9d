"""``mlops bench``: speed and memory figures written to ``build/bench/*.json``.

Benchmarks are measurements, not tests: they print and write figures and never assert them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ml.settings import Settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def serving(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; each measures every server.")] = 3,
    duration: Annotated[int, typer.Option(min=3, help="Measured seconds per server.")] = 10,
    concurrency: Annotated[int, typer.Option(min=1, help="Open connections kept busy.")] = 16,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes per server.")] = 2,
) -> None:
    """Serve the demo's champion via ours, ours plain, KServe and `mlflow models serve`."""
    import json

    from ml.serve.bench import run_serving_bench

    with _demo_mlflow() as settings:
        result = run_serving_bench(
            settings,
            rounds=rounds,
            duration_s=duration,
            concurrency=concurrency,
            workers=workers,
            say=lambda line: typer.echo(line, err=True),
        )
    typer.echo(json.dumps({k: result[k] for k in ("servers", "ratios", "goal")}, indent=2))
    typer.echo(f"written to {settings.bench_dir / 'serving.json'}")


@app.command("serving-profile")
def serving_profile(
    variant: Annotated[
        list[str] | None,
        typer.Option(help="name:KEY=VALUE[,KEY=VALUE] server settings (repeatable)."),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; each measures every variant.")] = 3,
    duration: Annotated[int, typer.Option(min=3, help="Measured seconds per variant.")] = 10,
    concurrency: Annotated[int, typer.Option(min=1, help="Open connections kept busy.")] = 16,
) -> None:
    """Where our server's latency tail comes from: its parts, per variant of its settings."""
    import json

    from ml.serve.profile_bench import parse_variants, run_profile_bench

    variants = parse_variants(variant) if variant else None
    with _demo_mlflow() as settings:
        result = run_profile_bench(
            settings,
            variants,
            rounds=rounds,
            duration_s=duration,
            concurrency=concurrency,
            say=lambda line: typer.echo(line, err=True),
        )
    summary = {
        name: {"client": v["median"], **{k: v["server_ms"][k] for k in ("request", "wait")}}
        for name, v in result.items()
    }
    typer.echo(json.dumps(summary, indent=1))
    typer.echo(f"written to {settings.bench_dir / 'serving-profile.json'}")


@app.command()
def features(
    requests: Annotated[int, typer.Option(min=10, help="Requests per path.")] = 1000,
) -> None:
    """Online feature retrieval: SDK and HTTP server, SQLite and Redis, 1/10/100 entities."""
    import json

    from ml.features.bench import run_features_bench
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    settings = get_settings()
    services = _service_urls(settings.build / "services" / "env")
    out = settings.bench_dir / "features.json"
    result = run_features_bench(
        out,
        settings.build / "bench" / "features-work",
        requests=requests,
        postgres_url=services.get("MLOPS_TEST_POSTGRES_URL"),
        redis_url=services.get("MLOPS_TEST_REDIS_URL"),
    )
    rows = {k: v for k, v in result.items() if isinstance(v, dict) and "p99_ms" in v}
    typer.echo(json.dumps(rows, indent=2))
    if result.get("skipped"):
        typer.echo(f"skipped: {result['skipped']} (start them with `scripts/services.sh start`)")
    typer.echo(f"written to {out}")


@app.command()
def experiments(
    sizes: Annotated[
        str, typer.Option(help="Comma-separated run counts, loaded incrementally.")
    ] = "10000,100000",
    repeats: Annotated[int, typer.Option(min=5, help="Timed repetitions per query.")] = 40,
) -> None:
    """MLflow run search on PostgreSQL at each size: p50/p95, without and with the indexes."""

    from ml.errors import UserError
    from ml.experiments.bench import run_experiments_bench
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    settings = get_settings()
    postgres = _service_urls(settings.build / "services" / "env").get("MLOPS_TEST_POSTGRES_URL")
    if not postgres:
        raise UserError("no PostgreSQL configured", "run `scripts/services.sh start` first")
    try:
        counts = sorted({int(size) for size in sizes.split(",")})
    except ValueError:
        raise UserError(
            f"--sizes {sizes!r} is not a list of integers", "e.g. 10000,100000"
        ) from None
    out = settings.bench_dir / "experiments.json"
    artifacts = settings.bench_dir / "experiments-artifacts"
    result = run_experiments_bench(postgres, counts, repeats, artifacts.as_uri())
    _update_figures(out, result)
    for size, figures in result["sizes"].items():
        for name in figures["without_indexes"]:
            before, after = figures["without_indexes"][name], figures["with_indexes"][name]
            typer.echo(
                f"{size:>7} runs  {name:<38}"
                f"  p50 {before['p50_ms']:>7.1f} → {after['p50_ms']:>6.1f} ms"
                f"  p95 {before['p95_ms']:>7.1f} → {after['p95_ms']:>6.1f} ms"
            )
    typer.echo(f"written to {out}")


@app.command()
def artifacts(
    trials: Annotated[int, typer.Option(min=2, help="Trials in the tuning sweep.")] = 50,
    candidate: Annotated[str, typer.Option(help="Pipeline candidate to tune.")] = (
        "logistic_regression"
    ),
) -> None:
    """Deduplicated artifact store vs MLflow's plain folder on a real tuning sweep."""
    import json

    from ml.experiments.dedup_bench import run_artifacts_bench
    from ml.experiments.tune_data import training_set_of

    with _demo_mlflow() as settings:  # the champion's training set, rebuilt from its manifest
        _, frame, lineage = training_set_of(None, settings)
    say = lambda line: typer.echo(line, err=True)  # noqa: E731
    result = run_artifacts_bench(settings, frame, lineage, candidate, trials, say)
    out = settings.bench_dir / "experiments.json"
    _update_figures(out, {"deduplication": result})
    typer.echo(json.dumps(result, indent=1))
    typer.echo(f"written to {out} (key: deduplication)")


@contextmanager
def _demo_mlflow() -> Iterator[Settings]:
    """The demo's registry and proxied artifacts, served by its MLflow server (restarted)."""
    import mlflow

    from ml.errors import UserError
    from ml.settings import apply_process_defaults, get_settings
    from ml.tracking import MlflowServer

    apply_process_defaults()
    settings = get_settings()
    if not (settings.mlflow_dir / "mlflow.db").exists():
        raise UserError("no demo registry in build/demo", "run `make demo` first")
    server = MlflowServer(settings.mlflow_dir, settings.mlflow_port).start()
    try:
        mlflow.set_tracking_uri(server.wait_ready())
        yield settings
    finally:
        server.stop()


def _update_figures(out: Path, figures: dict) -> None:
    """Write ``figures`` into ``out``, keeping the keys another benchmark wrote there."""
    import json

    kept = json.loads(out.read_text()) if out.exists() else {}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**kept, **figures}, indent=1) + "\n")


def _service_urls(env_file: Path) -> dict[str, str]:
    """Backing-service URLs from the environment, else from scripts/services.sh's env file."""
    import os

    urls = {k: v for k, v in os.environ.items() if k.startswith("MLOPS_TEST_")}
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            urls.setdefault(key.strip(), value.strip().strip("'\""))
    return urls
