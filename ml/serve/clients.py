"""What API clients send: scoring requests for applications (the demo's and the e2e's clients)."""

from __future__ import annotations

import pandas as pd


def scoring_requests(applications: pd.DataFrame, n: int, factor: float = 1.0) -> list[dict]:
    """Requests for the latest ``n`` applications, loan amounts scaled by ``factor``."""
    rows = applications.sort_values("application_id").tail(n)
    return [
        {
            "customer_id": int(r.customer_id),
            "application_id": int(r.application_id),
            "loan_amount": round(float(r.loan_amount) * factor, 2),
            "term_months": int(r.term_months),
        }
        for r in rows.itertuples()
    ]
