"""The shared trained platform really is trained, registered and materialized."""

from ml import registry


def test_champion_is_registered_with_lineage(trained_platform):
    version = registry.alias_version(trained_platform.model_name, registry.CHAMPION)
    assert version is not None and str(version.version) == trained_platform.champion_version
    assert version.tags["lineage.snapshot_sha256"] == trained_platform.ingested.snapshot_sha256
    assert version.tags["lineage.feature_service"] == "credit_v1"
