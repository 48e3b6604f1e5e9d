"""Bad configuration stops early with one line naming the key."""

import pytest

from ml.config import load_pipeline_config
from ml.errors import UserError
from ml.settings import Settings, get_settings


def test_shipped_pipeline_config_is_valid():
    config = load_pipeline_config()
    assert len(config.candidates) >= 3


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("split: {holdout_fraction: 2}\n", "split.holdout_fraction"),
        ("split: {holdout_fraction: 0.2}\ncandidates: {a: {kind: svm}}\n", "candidates.a.kind"),
        ("- not a mapping\n", ""),
    ],
)
def test_bad_pipeline_config_names_the_key(tmp_path, text, key):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_pipeline_config.__wrapped__(path)
    assert key in caught.value.line()


def test_missing_pipeline_config_says_which_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_pipeline_config.__wrapped__(tmp_path / "nope.yaml")


def test_bad_setting_names_the_environment_variable(monkeypatch):
    monkeypatch.setenv("MLOPS_N_CUSTOMERS", "12")
    get_settings.cache_clear()
    try:
        with pytest.raises(UserError, match="MLOPS_N_CUSTOMERS"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_paths_derive_from_one_build_dir(tmp_path):
    settings = Settings(build_dir=tmp_path)
    assert settings.demo_dir == tmp_path / "demo"
    assert settings.feature_repo_dir.is_relative_to(settings.demo_dir)
    assert not settings.demo_dir.exists()  # nothing is created until asked
