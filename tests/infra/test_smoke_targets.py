"""The deploy smoke test checks every first-party Service of the rendered stack, by its probe."""

from __future__ import annotations

import pytest

from ml.errors import UserError
from scripts import smoke


def test_every_first_party_service_has_a_health_check(rendered) -> None:
    services = [
        o["metadata"]["name"]
        for o in rendered.kinds("Service")
        if o["metadata"].get("labels", {}).get(smoke.PART_OF) == smoke.FIRST_PARTY
    ]
    found = {t.service: t.path for t in smoke.targets(rendered.objects)}
    assert services and sorted(found) == sorted(services)
    assert found["serving"] == "/readyz"


def test_a_first_party_service_without_a_probe_is_an_error(aws_dev) -> None:
    [service] = [o for o in aws_dev.kinds("Service") if o["metadata"]["name"] == "serving"]
    with pytest.raises(UserError, match="Service serving selects no Deployment"):
        smoke.targets([service])
