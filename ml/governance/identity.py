"""Who is acting: the MLflow server's authenticated user, or a self-declared name.

When the tracking server authenticates (``--app-name mlops-governance`` or ``basic-auth``), it
reports the user this process's credentials (``MLFLOW_TRACKING_USERNAME`` or
``~/.mlflow/credentials``) belong to, and that user is the actor: a different ``--user`` is an
error, not an alias. Only a server without authentication (the embedded demo, a local store in
tests) leaves the name to the caller; the audit entry then says ``identity: self-declared``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.errors import ServiceUnavailable, UserError
from ml.governance.config import GovernanceConfig

SELF_DECLARED = "self-declared"
AUTHENTICATED = "mlflow-authenticated"
CURRENT_USER_PATH = "/api/2.0/mlflow/users/current"


@dataclass(frozen=True)
class Actor:
    user: str
    identity: str  # SELF_DECLARED or AUTHENTICATED, recorded in the audit entry


def resolve_actor(
    declared: str | None, config: GovernanceConfig, tracking_uri: str | None = None
) -> Actor:
    """The actor of a transition: the server's authenticated user, else ``declared``.

    The authenticated MLflow username is read through ``config.mlflow_users`` (a workload
    account acts as its governance user).

    Raises:
        UserError: ``declared`` differs from the authenticated user, or nobody is named where
            the server does not authenticate.
    """
    authenticated = authenticated_user(tracking_uri)
    if authenticated is not None:
        authenticated = config.governance_user(authenticated)
    if authenticated is None:
        if not declared:
            raise UserError(
                "the MLflow server does not authenticate, so say who you are",
                "pass --user NAME (or set MLOPS_USER)",
            )
        return Actor(declared, SELF_DECLARED)
    if declared and declared != authenticated:
        raise UserError(
            f"you are authenticated to MLflow as {authenticated!r}, not {declared!r}",
            "drop --user, or use that user's MLflow credentials",
        )
    return Actor(authenticated, AUTHENTICATED)


def authenticated_user(tracking_uri: str | None = None) -> str | None:
    """The user the tracking server authenticated this process as; None without server auth."""
    import mlflow
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    uri = tracking_uri or mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None  # a local store: no server, nobody to vouch for the name
    response = http_request(
        get_default_host_creds(uri), CURRENT_USER_PATH, "GET", max_retries=1, timeout=10
    )
    if response.status_code == 404:  # the route exists only where the server authenticates
        return None
    if response.status_code == 401:
        raise UserError(
            f"the MLflow server at {uri} refused your credentials",
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials)",
        )
    if response.status_code != 200:
        raise ServiceUnavailable(
            f"cannot ask {uri} who you are (HTTP {response.status_code})",
            "check that the MLflow server is up",
        )
    try:
        return response.json()["user"]["username"]
    except (ValueError, KeyError, TypeError):  # a page, not the auth API: no authentication
        return None
