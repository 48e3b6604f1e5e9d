"""The GitHub Actions job summary: Markdown appended to ``$GITHUB_STEP_SUMMARY`` when it is set.

Outside GitHub Actions (a script run by hand) there is no summary and nothing is written.
"""

from __future__ import annotations

import os


def append(markdown: str) -> bool:
    """Append ``markdown`` to the job summary; False when not running in GitHub Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True
