"""Servers users would pick instead of ours, run by ``mlops bench serving`` in their own
environments (never the project's runtime dependencies): see :mod:`ml.serve.bench`."""
