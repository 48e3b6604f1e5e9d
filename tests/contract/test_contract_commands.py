"""Every container command of the rendered stacks parses with the real CLI of its program.

Parsing only: each argv is resolved down to its leaf command with click's ``make_context``
(strict parsing, so an unknown option or command fails), and nothing is executed.
"""

from __future__ import annotations

import ast
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from rendered_pods import ROOT, Container, no_problems

from contract import commands


def _mlops() -> click.Command:
    import typer

    from ml.cli.main import app

    return typer.main.get_command(app)


def _feast() -> click.Command:
    from feast.cli.cli import cli

    return cli


def _mlflow() -> click.Command:
    from mlflow.cli import cli

    return cli


def _bentoml() -> click.Command:
    from bentoml_cli.cli import cli

    return cli


CLIS: dict[str, Callable[[], click.Command]] = {
    "mlops": _mlops,
    "feast": _feast,
    "mlflow": _mlflow,
    "bentoml": _bentoml,
}


def _errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, early exits) of click and of the click that Typer vendors (typer._click)."""
    import typer
    import typer._click.exceptions as typer_click

    return (click.ClickException, typer_click.ClickException), (click.exceptions.Exit, typer.Exit)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set the container's literal env: options with ``envvar=`` read and convert it."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def parse(argv: list[str], env: dict[str, str] | None = None) -> str | None:
    """Parse ``argv`` with its program's CLI; the reason it does not parse, or None."""
    with environment(env or {}):
        reason = _parse(argv)
    return reason if reason is not None else _bento_target(argv)


def _parse(argv: list[str]) -> str | None:
    if not argv:
        return "runs nothing (no command, no args, and no image default known)"
    program = CLIS.get(argv[0])
    if program is None:
        return f"unknown program {argv[0]!r} (known: {', '.join(CLIS)})"
    command, args, ctx = program(), argv[1:], None
    usage_errors, early_exits = _errors()
    try:
        ctx = command.make_context(argv[0], list(args), resilient_parsing=False)
        while hasattr(command, "resolve_command"):  # a group (Typer's is no click.Group)
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                return f"{ctx.command_path!r} is a group and no subcommand is given"
            name, command, rest = command.resolve_command(ctx, rest)
            ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=False)
    except early_exits as done:  # --help/--version: parses, but runs nothing useful
        return f"exits early ({done!r}): an eager option such as --help"
    except usage_errors as error:  # NoArgsIsHelpError's message is the (printed) help: empty
        return error.format_message().strip() or f"{type(error).__name__}: {argv}"
    return None


def _bento_target(argv: list[str]) -> str | None:
    """``bentoml serve module:Attr``: the module is ours and defines Attr (read, not imported)."""
    if argv[:2] != ["bentoml", "serve"] or len(argv) < 3 or ":" not in argv[2]:
        return None
    module, attr = argv[2].split(":", 1)
    source = ROOT / Path(*module.split(".")).with_suffix(".py")
    if not source.exists():
        return f"bentoml target module {module!r} is not in this repository ({source})"
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    defined |= {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    return None if attr in defined else f"{module} defines no {attr!r} for bentoml to serve"


def _literal_env(container: Container) -> dict[str, str]:
    return {k: e["value"] for k, e in container.env.items() if "value" in e}


@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["mlops", "pipeline", "train"], True),
        (["mlops", "pipeline", "no-such-command"], False),
        (["mlops", "pipeline", "train", "--no-such-option"], False),
        (["mlops", "pipeline"], False),
        (["feast", "--chdir", "/x", "apply"], True),
        (["feast", "apply", "--bogus"], False),
        (["mlflow", "server", "--host=0.0.0.0", "--port=5000"], True),
        (["mlflow", "server", "--bogus"], False),
        # The governance app is pyproject's mlflow.app entry point; an unknown app fails.
        (["mlflow", "server", f"--app-name={commands.MLFLOW_APP}"], True),
        (["mlflow", "server", "--app-name=no-such-app"], False),
        (["bentoml", "serve", "ml.serve.service:CreditRiskService", "--port", "3000"], True),
        (["bentoml", "serve", "ml.serve.service:CreditRiskService", "--bogus"], False),
        (["bentoml", "serve", "ml.serve.service:NoSuchService"], False),
        (["python", "-c", "pass"], False),
    ],
)
def test_parser_accepts_and_rejects(argv: list[str], ok: bool) -> None:
    assert (parse(argv) is None) is ok, parse(argv)


def test_every_container_command_parses(stack) -> None:
    no_problems(
        [
            f"{c.where}: {' '.join(c.argv())!r}: {reason}"
            for c in stack.containers
            if (reason := parse(c.argv(), _literal_env(c))) is not None
        ]
    )


# The steps of the loop (docs/ARCHITECTURE: "The cluster loop"): every stack runs each of them.
LOOP = {
    "FEAST_APPLY": commands.FEAST_APPLY,
    "INGEST": commands.INGEST,
    "MATERIALIZE": commands.MATERIALIZE,
    "TRAIN": commands.TRAIN,
    "DRIFT": commands.DRIFT,
    "RETRAIN": commands.RETRAIN,
    "PUBLISH_SITE": commands.PUBLISH_SITE,
    "SERVE": commands.SERVE,
    "MLFLOW_SERVER": commands.MLFLOW_SERVER,
}


def test_every_loop_command_is_run_by_some_container(stack) -> None:
    argvs = [c.argv() for c in stack.containers]
    no_problems(
        [
            f"{stack.name}: no container runs contract.commands.{name} ({' '.join(command)})"
            for name, command in LOOP.items()
            if not any(argv[: len(command)] == list(command) for argv in argvs)
        ]
    )


def _option(argv: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return values[0] if values else None


def test_the_artifact_store_the_server_writes_is_deduplicated_and_collected(stack) -> None:
    """MLflow's --artifacts-destination resolves, through MLflow's own registry, to the
    deduplicated store, and the blob collector sweeps that same store."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from ml.experiments.dedup_store import DedupArtifactRepository

    argvs = [c.argv() for c in stack.containers]
    servers = [a for a in argvs if a[:2] == list(commands.MLFLOW_SERVER)]
    collectors = [a for a in argvs if a[:3] == list(commands.ARTIFACT_GC)]
    assert servers and collectors, f"{stack.name}: no MLflow server or no artifact collector"
    destinations = {_option(a, "--artifacts-destination") for a in servers}
    stores = {_option(a, "--store") for a in collectors}
    assert len(destinations) == 1 and destinations == stores, (destinations, stores)
    repository = get_artifact_repository(destinations.pop())
    assert isinstance(repository, DedupArtifactRepository), repository
