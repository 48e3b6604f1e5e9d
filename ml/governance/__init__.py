"""Governance: model cards, fairness, explanations, approvals with roles, audit trail, report site.

Modules (import what you need; nothing runs at import time):

* :mod:`~ml.governance.audit` — append-only, hash-chained audit log.
* :mod:`~ml.governance.approvals` — candidate → approved → production by roles.
* :mod:`~ml.governance.identity` — the actor: the MLflow server's user, or self-declared.
* :mod:`~ml.governance.writes` — which action writes which governance tag or alias.
* :mod:`~ml.governance.server_app` — ``mlflow server --app-name mlops-governance``.
* :mod:`~ml.governance.auto_approval` — the explicit auto-approval policies.
* :mod:`~ml.governance.permissions` — the roles as MLflow basic-auth permissions.
* :mod:`~ml.governance.fairness` — fairlearn metrics with bootstrap intervals; the fairness gate.
* :mod:`~ml.governance.explain` — permutation importance and per-prediction explanations.
* :mod:`~ml.governance.model_card` — the Markdown + HTML card of a model version.
* :mod:`~ml.governance.site` — the static report site (MkDocs Material).
"""
