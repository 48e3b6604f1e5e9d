from typer.testing import CliRunner
from ml.cli.main import app
from tests.integration.test_experiments_reproduce import champion_run, cli_env, copy_run  # noqa
from ml.experiments import reproduce as reproduction


def test_example(cli_env, monkeypatch):
    r = CliRunner().invoke(app, ["experiments", "reproduce", cli_env])
    print("EXIT", r.exit_code)
    print("STDERR>>>\n" + r.stderr + "<<<")
    print("STDOUT>>>\n" + r.stdout + "<<<")
    copy = copy_run(cli_env, lineage__lock_sha256="0" * 64)
    installed = reproduction.installed_version
    monkeypatch.setattr(reproduction, "installed_version",
        lambda name: "0.0.1" if name == "scikit-learn" else installed(name))
    r = CliRunner().invoke(app, ["experiments", "reproduce", copy])
    print("EXIT", r.exit_code)
    print("STDOUT>>>\n" + r.stdout + "<<<")
    r = CliRunner().invoke(app, ["experiments", "reproduce", copy, "--json"])
    print(r.stdout)
    print(reproduction.model_requirements(cli_env))
