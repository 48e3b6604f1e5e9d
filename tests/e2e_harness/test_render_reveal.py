"""`render(..., reveal=True)`: real random passwords in clear, files 0600; default unchanged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from infra.render import SECRET, render


def _database_url(out: Path) -> str:
    doc = yaml.safe_load((out / "manifests" / "mlops_secret_mlops-database.yaml").read_text())
    return doc["stringData"]["url"]


@pytest.fixture(scope="module")
def outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reveal")
    for name, reveal in (("plain", False), ("first", True), ("second", True)):
        render("local", root / name, reveal=reveal)
    return {name: root / name for name in ("plain", "first", "second")}


def test_default_render_stays_redacted(outs: dict[str, Path]) -> None:
    assert SECRET in _database_url(outs["plain"])


@pytest.mark.parametrize("name", ["first", "second"])
def test_revealed_url_is_clear_and_private(outs: dict[str, Path], name: str) -> None:
    assert SECRET not in _database_url(outs[name])
    for path in [outs[name] / "inventory.json", *(outs[name] / "manifests").glob("*.yaml")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_revealed_passwords_are_random(outs: dict[str, Path]) -> None:
    assert _database_url(outs["first"]) != _database_url(outs["second"])
