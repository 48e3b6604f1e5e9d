"""Model serving: traffic policy, fast request path, BentoML service, experiments, rollout.

Modules import their heavy dependencies (MLflow, Feast, BentoML) inside functions, so that
importing the package is cheap and nothing happens at import time.
"""
