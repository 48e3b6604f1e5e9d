"""The `mlops` command line: a thin Typer layer over the ml/ modules."""
