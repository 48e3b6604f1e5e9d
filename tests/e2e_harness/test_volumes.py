"""kubelet-style projected volumes: atomic ``..data`` switch, items/modes, subPath pinning."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from e2e.manifests import ManifestError
from e2e.volumes import mount_args, write_projected


def test_update_reaches_directory_readers_atomically(tmp_path: Path) -> None:
    write_projected(tmp_path, {"policy.json": "v1"})
    first = (tmp_path / "..data").resolve()
    write_projected(tmp_path, {"policy.json": "v2"})
    assert (tmp_path / "policy.json").read_text() == "v2"
    assert not first.exists()  # the old generation is removed after the switch


def test_items_rename_and_modes(tmp_path: Path) -> None:
    write_projected(tmp_path, {"a": "x", "b": "y"}, [{"key": "a", "path": "sub/f", "mode": 0o400}])
    assert (tmp_path / "sub" / "f").read_text() == "x"
    assert stat.S_IMODE((tmp_path / "sub" / "f").stat().st_mode) == 0o400
    assert not (tmp_path / "b").exists()


def test_missing_item_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="nope"):
        write_projected(tmp_path, {"a": "x"}, [{"key": "nope", "path": "p"}])


POD = {
    "volumes": [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "policy", "configMap": {"name": "cm"}},
    ]
}


@pytest.mark.parametrize(
    ("mount", "suffix"),
    [
        ({"name": "tmp", "mountPath": "/tmp"}, "/tmp:rw"),
        ({"name": "policy", "mountPath": "/etc/p"}, "/policy:/etc/p:ro"),
        ({"name": "policy", "mountPath": "/etc/p/x", "subPath": "k"}, "/k:/etc/p/x:ro"),
    ],
)
def test_mount_args(tmp_path: Path, mount: dict, suffix: str) -> None:
    args = mount_args(tmp_path, POD, {"volumeMounts": [mount]}, {}, {"cm": {"k": "v"}})
    assert args[0] == "-v" and args[1].endswith(suffix)
