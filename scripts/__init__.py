"""Build-document-delete workflow scripts (run as `uv run python -m scripts.<name>`)."""
