"""Entry point of the `mlops` console command.

Every command group lives in its own module under ``ml/cli/`` and is registered here.
Groups import their heavy dependencies lazily, inside the command functions, so that
``mlops --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

app = typer.Typer(
    name="mlops",
    help="MLOps blueprint: run the ML lifecycle embedded, render the infrastructure, benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module under ml.cli, group name, help). A group module exposes a `app: typer.Typer`.
_GROUPS: list[tuple[str, str, str]] = [
    ("demo", "demo", "Run the whole ML lifecycle embedded (no cluster); outputs in build/demo/."),
    ("monitor", "monitor", "Drift and quality monitoring; measure detection quality."),
    ("pipeline", "pipeline", "Train and retrain (gated); winners become candidates in review."),
    ("data", "data", "Upstream batches: validate landing/ into the offline store, quarantine."),
    ("features", "features", "Feature store: lineage, rebuild, apply, materialize."),
    ("serve", "serve", "Serve the champion with A/B, canary and shadow variants."),
    ("abtest", "abtest", "Analyse live A/B experiments and validate the test by simulation."),
    ("experiments", "experiments", "MLflow runs: compare with significance, tune, search."),
    ("governance", "governance", "Approvals by role, audit log, model cards, permissions."),
    ("docs", "docs", "Build the static report site (MkDocs Material)."),
    ("infra", "infra", "Render and check the Pulumi program offline."),
    ("release", "release", "Release gates: image consistency, recorded approval, canary."),
    ("bench", "bench", "Benchmarks: serving vs mlflow models serve, online features."),
]


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"mlops {version('mlops-blueprint')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """MLOps blueprint: run the ML lifecycle embedded, render the infrastructure, benchmark."""


def _hide_flag_types() -> None:
    """Typer 0.29's rich help labels every flag ``<bool>``; a flag takes no value: show none."""
    from typer.core import TyperOption

    typed = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else typed(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]


_hide_flag_types()


def _register_groups() -> None:
    for module_name, group, help_text in _GROUPS:
        module = importlib.import_module(f"ml.cli.{module_name}")
        app.add_typer(module.app, name=group, help=help_text)
    platform = importlib.import_module("ml.cli.platform")
    for name in ("up", "down", "status"):
        app.command(name)(getattr(platform, name))


_register_groups()


def run() -> None:
    """Console-script entry point: user errors become one line and a non-zero exit code.

    Usage errors (unknown option, value out of range) are one line too, with exit code 2 and a
    pointer to the command's help; Typer's standalone mode would draw them in a box.
    """
    from pydantic import ValidationError
    from typer._click import exceptions as click  # Typer 0.29 vendors Click (pinned)

    from ml.errors import UserError

    try:
        code = app(standalone_mode=False, prog_name="mlops")
    except click.NoArgsIsHelpError:  # `mlops` or a bare group: Typer printed its help already
        raise SystemExit(2) from None
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "mlops"
        typer.secho(
            f"error: {error.format_message()} — see '{where} --help'",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(error.exit_code) from None
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(1) from None
    except UserError as error:
        typer.secho(f"error: {error.line()}", err=True, fg=typer.colors.RED)
        raise SystemExit(error.exit_code) from None
    except ValidationError as error:  # a value that reached a model unchecked: still one line
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or error.title
        typer.secho(
            f"error: bad value for {where}: {first['msg']} — fix it and run again",
            err=True,
            fg=typer.colors.RED,
        )
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    if isinstance(code, int) and code:  # ctx.exit(n) / typer.Exit(n) in non-standalone mode
        raise SystemExit(code)


def console() -> None:
    """The ``mlops`` executable: :func:`run`, and an error exit that skips C++ teardown.

    After pandas has read Parquet, interpreter shutdown sometimes aborts in Arrow's thread pool
    ("terminate called without an active exception", apache/arrow#34314; here about 1 exit in
    30), turning an error's exit code 2 into 134. Once the one-line error is printed there is
    nothing left to clean up, so an error exit flushes and leaves at once. A successful run
    exits normally (its atexit handlers, e.g. MLflow's, still run).
    """
    try:
        run()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        if code:
            sys.stdout.flush()
            sys.stderr.flush()
            logging.shutdown()
            os._exit(code)
        raise


if __name__ == "__main__":
    console()
