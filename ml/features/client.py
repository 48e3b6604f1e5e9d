"""HTTP client of Feast's feature server: bounded time, one retry of a dropped read.

A pooled keep-alive connection can be closed by the server just as the client reuses it: the
request then fails with ``Server disconnected without sending a response`` or ``Connection
reset by peer`` although the server is healthy (measured with ``feast serve``, whose worker
recycling closes every open connection: see docs/features.md). ``/get-online-features`` only
reads, so sending it again on a fresh connection is safe. It is retried once, and only while
the call's time budget lasts: a slow server is not asked twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx

T = TypeVar("T")

# Errors of a connection that died under the request, before any answer: safe to resend a read.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)
# Below the server's keep-alive timeout (``serve_command``: 60 s), so that the client, not the
# server, is the side that retires an idle connection.
KEEPALIVE_EXPIRY_S = 5.0
MIN_RETRY_S = 0.05  # a retry with less time than this left would only time out


def retry_once(call: Callable[[float], T], budget_s: float, retryable: tuple) -> T:
    """``call(timeout_s)``, once more if it raised ``retryable`` with time left in the budget.

    Args:
        call: The idempotent operation; it gets the seconds it may take.
        budget_s: Time for both attempts together.
        retryable: Exceptions that mean "not done, safe to try again".

    Returns:
        What ``call`` returned.
    """
    deadline = time.monotonic() + budget_s
    try:
        return call(budget_s)
    except retryable:
        left = deadline - time.monotonic()
        if left < MIN_RETRY_S:
            raise
        return call(left)


class FeatureServerClient:
    """Reads online features over HTTP (``POST /get-online-features``) with a time budget."""

    def __init__(self, url: str, budget_s: float = 2.0) -> None:
        self.budget_s = budget_s
        self.dropped = 0  # attempts whose connection died under them (the bench reports it)
        self.http = httpx.Client(
            base_url=url,
            trust_env=False,  # loopback or in-cluster: no proxy lookups per request
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )

    def online_features(self, features: Sequence[str], customer_ids: Sequence[int]) -> dict:
        """The server's JSON answer for ``features`` (``view:feature`` refs) of the customers.

        Raises:
            httpx.HTTPError: No answer within the budget, or an error status.
        """
        body = {"features": list(features), "entities": {"customer_id": list(customer_ids)}}
        return retry_once(lambda timeout_s: self._post(body, timeout_s), self.budget_s, DROPPED)

    def _post(self, body: dict, timeout_s: float) -> dict:
        try:
            response = self.http.post("/get-online-features", json=body, timeout=timeout_s)
        except DROPPED:
            self.dropped += 1
            raise
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FeatureServerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
