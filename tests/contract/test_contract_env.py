"""Every ``MLOPS_*`` variable a pod is given is read by the code, and the required ones are given.

What the code reads is found in the code (``code_env``), not in a declared list, so a variable a
component sets that no process reads fails here with the pod and the variable.
"""

from __future__ import annotations

import pytest
from code_env import read_by_code
from rendered_pods import Container, by_name, data_keys, no_problems

from contract import commands, env

# Command (argv prefix) -> variables it cannot run without. Kept small on purpose: only what a
# step needs to find its inputs and outputs (buckets through ml.objectstore.bucket_name(role),
# the registry, the Feast configuration, the Pushgateway its metrics go to).
REQUIRED: dict[tuple[str, ...], tuple[str, ...]] = {
    commands.INGEST: (env.bucket("features"),),
    commands.MATERIALIZE: (env.bucket("features"), env.FEAST_YAML, env.PUSHGATEWAY_URL),
    commands.TRAIN: (
        env.MLFLOW_TRACKING_URI,
        env.bucket("features"),
        env.bucket("reports"),
        env.FEAST_YAML,
        env.PUSHGATEWAY_URL,
    ),
    commands.DRIFT: (env.bucket("reports"), env.PUSHGATEWAY_URL),
    commands.RETRAIN: (
        env.MLFLOW_TRACKING_URI,
        env.bucket("features"),
        env.bucket("reports"),
        env.FEAST_YAML,
        env.PUSHGATEWAY_URL,
    ),
    commands.PUBLISH_SITE: (env.MLFLOW_TRACKING_URI, env.bucket("reports")),
    commands.FEAST_APPLY: (env.bucket("features"),),  # the S3 FileSources name the bucket
    commands.SERVE[:3]: (
        env.MLFLOW_TRACKING_URI,
        env.TRAFFIC_POLICY,
        env.FEAST_YAML,
        env.bucket("reports"),
        env.POD_NAME,
    ),
}


def unread(given: list[str], read: frozenset[str]) -> list[str]:
    """The ``MLOPS_*`` names in ``given`` that no code reads."""
    return [n for n in given if n.startswith(env.PREFIX) and n not in read]


def missing(argv: list[str], given: set[str]) -> list[str]:
    """The variables ``argv``'s command requires (``REQUIRED``) that are not in ``given``."""
    need = [v for cmd, need in REQUIRED.items() if argv[: len(cmd)] == list(cmd) for v in need]
    return [v for v in need if v not in given]


@pytest.mark.parametrize(
    ("given", "bad"),
    [(["MLOPS_MODEL_NAME", "AWS_REGION"], []), (["MLOPS_NO_SUCH_THING"], ["MLOPS_NO_SUCH_THING"])],
)
def test_unread_finds_what_nothing_reads(given: list[str], bad: list[str]) -> None:
    assert unread(given, read_by_code()) == bad


@pytest.mark.parametrize(
    ("argv", "given", "bad"),
    [
        ([*commands.DRIFT], {env.bucket("reports"), env.PUSHGATEWAY_URL}, []),
        ([*commands.DRIFT, "--x"], {env.PUSHGATEWAY_URL}, [env.bucket("reports")]),
        (["mlops", "docs", "build"], set(), []),
    ],
)
def test_missing_finds_required_variables(argv: list[str], given: set[str], bad: list) -> None:
    assert missing(argv, given) == bad


def given(c: Container, objects: list[dict]) -> list[str]:
    """Names of the variables container ``c`` gets: ``env`` and every ``envFrom`` source's keys."""
    names = list(c.env)
    for source in c.spec.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            obj = by_name(objects, kind, c.namespace, source.get(field, {}).get("name", ""))
            names += [source.get("prefix", "") + k for k in data_keys(obj)] if obj else []
    return names


# Programs that run our code: mlops itself, bentoml serving ml.serve.service, feast importing the
# repository's definitions (ml.features). Any other program (mlflow server) reads no MLOPS_*.
RUNS_OUR_CODE = ("mlops", "bentoml", "feast")


def test_every_mlops_variable_given_is_read(stack) -> None:
    ours = read_by_code()
    no_problems(
        [
            f"{c.where}: {name} is given but nothing in {' '.join(c.argv()[:2])!r} reads it"
            for c in stack.containers
            for name in unread(
                given(c, stack.objects),
                ours if c.argv()[:1] and c.argv()[0] in RUNS_OUR_CODE else frozenset(),
            )
        ]
    )


def test_every_required_variable_is_given(stack) -> None:
    no_problems(
        [
            f"{c.where}: runs {' '.join(c.argv()[:3])!r} but is not given {name}"
            for c in stack.containers
            for name in missing(c.argv(), set(given(c, stack.objects)))
        ]
    )
