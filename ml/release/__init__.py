"""Taking a model version live from CI or by hand: the stages of ``mlops release``.

``consistency`` checks the serving image against the model's training environment, ``approval``
waits for the governance state machine's recorded approval (it never approves), and ``canary``
drives the canary rollout's decisions into the audit log.
"""
