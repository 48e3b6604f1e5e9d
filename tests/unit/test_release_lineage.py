"""The lock hash a real training run records is the one `mlops release check` compares."""

from __future__ import annotations

from ml.lineage import file_sha256
from ml.release import consistency


def test_training_lineage_reads_the_lock_hash_of_the_run(trained_platform) -> None:
    tp = trained_platform
    lineage = consistency.training_lineage(tp.model_name, tp.champion_version)
    assert lineage.lock_sha256 == file_sha256(tp.settings.lock_file)
    lock_text = tp.settings.lock_file.read_text()
    assert consistency.lock_hash(lock_text) == lineage.lock_sha256


def test_an_unknown_version_is_one_line(trained_platform) -> None:
    import pytest

    from ml.errors import UserError

    with pytest.raises(UserError, match="not in the registry"):
        consistency.training_lineage(trained_platform.model_name, "999")
