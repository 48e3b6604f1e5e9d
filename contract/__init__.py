"""The contract between the control plane (components, infra) and the data plane (ml).

Both planes import these modules; neither plane is imported from here, so the Pulumi program can
use them without the ML stack and the workloads without Pulumi. Every name that crosses the
boundary lives here once: environment variables (:mod:`contract.env`), paths inside the images
(:mod:`contract.paths`), the object-store layout (:mod:`contract.objectstore`), the commands Jobs
run (:mod:`contract.commands`), the traffic-policy schema (:mod:`contract.traffic`) and the
metric names rules and dashboards watch (:mod:`contract.metrics`). ``tests/contract/`` checks
the rendered manifests against the code through these definitions.
"""
