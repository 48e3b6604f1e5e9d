"""A pandas reference for Feast's point-in-time join, with TTLs and created-time tie-breaks.

``ml.data.generate.point_in_time_frame`` joins without TTLs (it is how labels are drawn). The
feature store applies each view's TTL, so tests compare it with this join instead: for every
entity row, per view, the latest feature row with ``event_ts - ttl <= feature_ts <= event_ts``
(both ends inclusive, as in Feast); among rows with the same feature timestamp the one created
last wins.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from ml.features import definitions


def point_in_time_reference(
    entity_df: pd.DataFrame,
    sources: dict[str, pd.DataFrame],
    ttls: dict[str, timedelta | None] | None = None,
) -> pd.DataFrame:
    """Join ``entity_df`` with each source as of its ``event_timestamp``.

    Args:
        entity_df: needs ``customer_id`` and ``event_timestamp``; other columns pass through.
        sources: feature view name → its source rows (``customer_id``, ``event_timestamp``,
            ``created_timestamp`` and the view's features).
        ttls: per view; defaults to the definitions' TTLs; ``None`` for a view means no TTL.

    Returns:
        ``entity_df`` (in its row order) with every view's features, NaN where none is valid.
    """
    ttls = ttls if ttls is not None else {v.name: v.ttl for v in definitions.FEATURE_VIEWS}
    frame = entity_df.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    frame = frame.sort_values("event_timestamp", kind="stable")
    for view, rows in sources.items():
        features = [f.name for f in _view(view).features]
        right = rows.sort_values(["event_timestamp", "created_timestamp"], kind="stable")
        right = right.drop_duplicates(["customer_id", "event_timestamp"], keep="last")
        right = right[["customer_id", "event_timestamp", *features]].rename(
            columns={"event_timestamp": "_feature_ts"}
        )
        frame = pd.merge_asof(
            frame,
            right,
            left_on="event_timestamp",
            right_on="_feature_ts",
            by="customer_id",
            direction="backward",
            allow_exact_matches=True,
            tolerance=pd.Timedelta(ttls[view]) if ttls.get(view) else None,
        ).drop(columns="_feature_ts")
    return frame.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def _view(name: str):
    return next(v for v in definitions.FEATURE_VIEWS if v.name == name)
