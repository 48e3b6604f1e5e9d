"""The human-written model context renders as sentences, never as a Python dict."""

from __future__ import annotations

import pytest

from ml.errors import UserError
from ml.governance import model_card


def test_the_committed_context_is_all_text() -> None:
    context = model_card._context("credit-risk")
    for key in model_card._TEXT_LISTS:
        assert all(isinstance(item, str) for item in context.get(key) or []), key
    assert any(item.startswith("Portfolio monitoring:") for item in context["intended_use"])


def test_an_unquoted_colon_item_is_refused_with_the_fix(tmp_path, monkeypatch) -> None:
    (tmp_path / "m.yaml").write_text("intended_use:\n  - Portfolio monitoring: track rates\n")
    monkeypatch.setattr(model_card, "CONTEXT_DIR", tmp_path)
    with pytest.raises(UserError) as refused:
        model_card._context("m")
    assert "intended_use" in refused.value.line() and "quote it" in refused.value.line()
