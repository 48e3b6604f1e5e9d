"""Which workflow action writes which governance tag or registry alias.

:mod:`ml.governance.approvals` is the only code that writes them; this table says which of its
actions does, so that the MLflow server app (:mod:`ml.governance.server_app`) can refuse the same
write to a user whose roles in ``governance.yaml`` allow none of those actions, whatever client
sends it. ``None`` means the key is not governed; an empty set means nobody may write it (an
unknown ``governance.*`` key fails closed).
"""

from __future__ import annotations

from typing import get_args

from ml import registry
from ml.governance.approvals import (
    APPROVAL_TAGS,
    APPROVED,
    AUDIT_HASH_TAG,
    CANDIDATE,
    CARD_TAG,
    FAIRNESS_TAG,
    OWNER_TAG,
    PRODUCTION,
    REJECTED,
    RELEASE_ALIASES,
    REVIEW_TAG,
    STATUS_TAG,
)
from ml.governance.config import Action, GovernanceConfig

PREFIX = "governance."
ALL_ACTIONS = frozenset(get_args(Action))

# The status a transition writes decides who may write it: `approved` is what approve writes
# (release and promote re-write it on versions that already were approved).
_STATUS_WRITERS = {
    CANDIDATE: frozenset({"register", "request"}),
    APPROVED: frozenset({"approve", "release", "promote"}),
    PRODUCTION: frozenset({"promote", "rollback"}),
    REJECTED: frozenset({"reject", "rollback"}),
}
_TAG_WRITERS = {
    OWNER_TAG: frozenset({"register"}),
    REVIEW_TAG: frozenset({"request"}),
    **dict.fromkeys(APPROVAL_TAGS, frozenset({"approve"})),
    "governance.rejected_by": frozenset({"reject"}),
    "governance.reason": frozenset({"reject", "rollback"}),
    "governance.promoted_by": frozenset({"promote"}),
    "governance.promoted_at": frozenset({"promote"}),
    AUDIT_HASH_TAG: ALL_ACTIONS,
    # The model card documents a candidate: its owner's step, before the review.
    CARD_TAG: frozenset({"register", "request"}),
    FAIRNESS_TAG: frozenset({"register", "request"}),
    "governance.fairness_reasons": frozenset({"register", "request"}),
}
_RELEASED_AS = "governance.released_as_"
_ALIAS_WRITERS = {
    registry.CHAMPION: frozenset({"promote", "rollback"}),
    registry.PREVIOUS_CHAMPION: frozenset({"promote", "rollback"}),
    # promote removes challenger/shadow from the version it makes champion.
    **{alias: frozenset({"release", "promote"}) for alias in RELEASE_ALIASES},
}
# Serving resolves any alias, so one the workflow does not know is a release manager's move.
_OTHER_ALIAS_WRITERS = frozenset({"release", "promote", "rollback"})


def actions_writing_tag(key: str, value: str | None = None) -> frozenset[str] | None:
    """The actions that write model-version tag ``key`` (with ``value``; None: any value)."""
    if not key.startswith(PREFIX):
        return None
    if key == STATUS_TAG:
        if value is None:  # a delete: whoever may write any status
            return frozenset().union(*_STATUS_WRITERS.values())
        return _STATUS_WRITERS.get(value, frozenset())
    if key.startswith(_RELEASED_AS):
        return frozenset({"release"})
    return _TAG_WRITERS.get(key, frozenset())


def actions_moving_alias(alias: str) -> frozenset[str]:
    """The actions that set or delete registry alias ``alias``."""
    return _ALIAS_WRITERS.get(alias, _OTHER_ALIAS_WRITERS)


def may_write(config: GovernanceConfig, user: str, actions: frozenset[str]) -> bool:
    """Whether one of ``user``'s roles in governance.yaml allows one of ``actions``."""
    return any(
        action in config.roles[role].actions
        for role in config.users.get(user, [])
        for action in actions
    )
