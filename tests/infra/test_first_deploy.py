"""Defects a first ``pulumi up`` meets that no manifest schema shows (issue 11).

Each test reads the real render (or the real config loader) and fails on the code as it was
before the fix.
"""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import set_all_config, set_mocks

from components.charts import CHARTS
from infra import config, render
from ml.errors import UserError
from scripts import build_images

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


# --- placeholders are refused when deploying -----------------------------------------------


class _NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return args.name + "_id", args.inputs

    def call(self, args):
        return {}


def _load_outside_render(stack: str, monkeypatch, **env: str):
    """``config.load()`` as ``pulumi up`` runs it: the real engine, not the offline render."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    set_mocks(_NoResources(), project="mlops", stack=stack, preview=False)
    set_all_config(render.stack_config(stack))
    return config.load()


@pytest.mark.parametrize("stack", ["local", "aws-dev", "aws-prod"])
def test_deploying_a_committed_stack_file_refuses_its_placeholder_images(
    stack, monkeypatch
) -> None:
    with pytest.raises(UserError) as refused:
        _load_outside_render(stack, monkeypatch)
    line = refused.value.line()
    assert "placeholder" in line and f"scripts.build_images --stack {stack}" in line


def test_the_registries_only_update_and_the_render_accept_placeholders(monkeypatch) -> None:
    cfg = _load_outside_render("aws-dev", monkeypatch, MLOPS_REGISTRIES_ONLY="1")
    assert config.placeholders(cfg)
    assert render.render("aws-dev")  # the offline render keeps the stack file as it is


def test_real_images_pass() -> None:
    raw = {k.split(":", 1)[1]: v for k, v in render.stack_config("aws-dev").items()}
    raw["region"] = "eu-west-1"
    repo = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-dev"
    raw["mlImage"] = f"{repo}-ml:abc123@sha256:{'ab' * 32}"
    raw["servingImage"] = f"{repo}-serving:abc123@sha256:{'cd' * 32}"
    cfg = config.parse({k: v for k, v in raw.items() if k in config.fields() or k == "region"})
    assert config.placeholders(cfg) == []
    config.refuse_placeholders(cfg, "aws-dev")  # no error
    raw["mlImage"] = raw["mlImage"].replace("210987654321", "123456789012")
    cfg = config.parse({k: v for k, v in raw.items() if k in config.fields() or k == "region"})
    assert config.placeholders(cfg) == ["mlops:mlImage names the placeholder account 123456789012"]


# --- Helm releases --------------------------------------------------------------------------


def test_every_release_is_a_pinned_chart_with_a_first_install_timeout(rendered) -> None:
    pinned = {(c.name, c.version) for c in CHARTS.values()}
    for release in rendered.of_type(HELM_RELEASE):
        inputs = release.inputs
        assert (inputs["chart"], inputs["version"]) in pinned, release.name
        # Helm's 300 s default is too short for a fresh cluster pulling every image
        assert inputs.get("timeout", 300) >= 600, release.name


# --- the targeted update that creates the registries ------------------------------------------


def test_registry_targets_include_everything_a_fresh_stack_lacks(aws_dev) -> None:
    inventory = [r.as_json() for r in aws_dev.resources]
    targets = set(build_images.ecr_targets(inventory, "aws-dev", "mlops"))
    by_name = {r["name"]: r for r in inventory}
    urn = {r["name"]: build_images._urn(r, by_name, "aws-dev", "mlops") for r in inventory}
    repos = [r for r in inventory if r["type"] == "aws:ecr/repository:Repository"]
    assert repos and all(urn[r["name"]] in targets for r in repos)
    for resource in repos:
        parent = resource["parent"]
        while parent:  # Pulumi will not create an untargeted parent
            assert urn[parent] in targets, parent
            parent = by_name[parent]["parent"]
    providers = [r for r in inventory if r["type"] == "pulumi:providers:aws"]
    assert providers and all(urn[p["name"]] in targets for p in providers)
    assert not any(":eks/" in t or ":rds/" in t for t in targets)


# --- EKS ------------------------------------------------------------------------------------


def _aws_raw(**override: object) -> dict[str, str]:
    import json

    raw = {
        k.split(":", 1)[1]: v for k, v in render.stack_config("aws-dev").items() if "mlops:" in k
    }
    raw["region"] = "eu-west-1"
    for key, value in override.items():
        raw[key] = value if isinstance(value, str) else json.dumps(value)
    return raw


def test_the_deployed_eks_version_is_in_standard_support_today(aws_dev, aws_prod) -> None:
    from datetime import date

    for stack in (aws_dev, aws_prod):
        (cluster,) = stack.of_type("aws:eks/cluster:Cluster")
        ends = config.EKS_STANDARD_SUPPORT_ENDS[cluster.inputs["version"]]
        assert ends > date(2026, 12, 5), "pick a version in standard support when deploying"
    with pytest.raises(UserError, match="not an EKS version known here"):
        config.parse(_aws_raw(kubernetesVersion="1.29"))
    old = config.parse(_aws_raw(kubernetesVersion="1.32", apiAllowedCidrs=["198.51.100.7/32"]))
    with pytest.raises(UserError, match=r"mlops:kubernetesVersion: EKS 1\.32 left standard"):
        config.refuse_undeployable(old, "aws-dev", today=date(2026, 12, 5))


def test_a_version_past_standard_support_is_refused_at_deploy_time() -> None:
    from datetime import date

    cfg = config.parse(_aws_raw(kubernetesVersion="1.35", apiAllowedCidrs=["198.51.100.7/32"]))
    config.refuse_undeployable(cfg, "aws-dev", today=date(2027, 3, 27))
    with pytest.raises(UserError, match="left standard support on 2027-03-27"):
        config.refuse_undeployable(cfg, "aws-dev", today=date(2027, 3, 28))


def test_the_eks_api_is_reachable_only_from_configured_networks(aws_dev) -> None:
    (cluster,) = aws_dev.of_type("aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]  # the stack file sets none: no public endpoint
    assert vpc["endpointPublicAccess"] is False and "publicAccessCidrs" not in vpc
    with pytest.raises(UserError, match=r"mlops:apiAllowedCidrs.*whole internet"):
        config.parse(_aws_raw(apiAllowedCidrs=["0.0.0.0/0"]))
    with pytest.raises(UserError, match=r"mlops:apiAllowedCidrs.*not a CIDR"):
        config.parse(_aws_raw(apiAllowedCidrs=["my laptop"]))
    with pytest.raises(UserError, match="mlops:apiAllowedCidrs"):
        config.refuse_undeployable(config.parse(_aws_raw()), "aws-dev")


def _render_with(stack: str, root, **config: object) -> list:
    """Render ``stack`` with its stack file's ``config`` changed (a copy under ``root``)."""
    import shutil

    import yaml

    shutil.copy(render.ROOT / "Pulumi.yaml", root)
    (root / "stacks").mkdir()
    stack_file = yaml.safe_load((render.ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    stack_file["config"].update({f"mlops:{k}": v for k, v in config.items()})
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(stack_file))
    (root / "infra").symlink_to(render.ROOT / "infra")
    return render.render(stack, root=root)


def test_configured_networks_reach_the_public_endpoint(tmp_path) -> None:
    resources = _render_with("aws-dev", tmp_path, apiAllowedCidrs=["198.51.100.7/32"])
    (cluster,) = [r for r in resources if r.type == "aws:eks/cluster:Cluster"]
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.7/32"]


def test_vpc_cni_enforces_network_policies(aws_dev) -> None:
    import json

    (cni,) = [
        a for a in aws_dev.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"
    ]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_ebs_csi_driver_may_use_the_key_its_storage_class_encrypts_with(aws_dev) -> None:
    import json

    (storage_class,) = aws_dev.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    key = storage_class.inputs["parameters"]["kmsKeyId"]
    policies = [
        json.loads(p.inputs["policy"])
        for p in aws_dev.of_type("aws:iam/rolePolicy:RolePolicy")
        if "ebs-csi" in p.name
    ]
    granted = {
        action
        for policy in policies
        for statement in policy["Statement"]
        if key in statement["Resource"]
        for action in statement["Action"]
    }
    assert {"kms:CreateGrant", "kms:GenerateDataKey*", "kms:Decrypt"} <= granted


def test_control_plane_logs_go_to_a_group_the_stack_owns(aws_dev) -> None:
    (cluster,) = aws_dev.of_type("aws:eks/cluster:Cluster")
    (group,) = aws_dev.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert group.inputs["retentionInDays"] >= 7


# --- the local stack's charts ---------------------------------------------------------------


def _at(values: dict, path: str):
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _releases(local, key: str) -> list:
    chart = CHARTS[key]
    return [r for r in local.of_type(HELM_RELEASE) if r.inputs["chart"] == chart.name]


def test_chart_storage_defaults_on_host_paths_are_overridden_for_baseline(local) -> None:
    namespaces = {
        o["metadata"]["name"]: o["metadata"].get("labels", {}) for o in local.kinds("Namespace")
    }
    for key, chart in CHARTS.items():
        for release in _releases(local, key):
            level = namespaces[release.inputs["namespace"]]["pod-security.kubernetes.io/enforce"]
            if level == "privileged":
                continue
            for path in chart.host_path_defaults:
                value = _at(release.inputs["values"], path)
                volumes = value if isinstance(value, list) else [value]
                assert value and all(
                    v and v.get("type") not in (None, "hostPath") for v in volumes
                ), f"{chart.name}: {path} stays hostPath, which Pod Security {level} forbids"


def test_values_are_given_where_the_pinned_chart_reads_them(local) -> None:
    for key, chart in CHARTS.items():
        for release in _releases(local, key):
            for path, since in chart.reads_since:
                if _at(release.inputs["values"], path) is not None:
                    assert _version(chart.version) >= _version(since), (
                        f"{chart.name} {chart.version} does not read {path} (from {since})"
                    )


def test_the_platform_buckets_are_created_by_the_store(local) -> None:
    (seaweedfs,) = _releases(local, "seaweedfs")
    created = {b["name"] for b in _at(seaweedfs.inputs["values"], "s3.createBuckets")}
    from components.types import BUCKETS

    assert created == {f"mlops-{role}" for role in BUCKETS}


def test_feast_apply_waits_for_a_ready_database(local) -> None:
    (database,) = local.of_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    annotations = database.inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/waitFor"] == "condition=Ready"
    (apply,) = [r for r in local.of_type("kubernetes:batch/v1:Job") if r.name.endswith("apply")]
    assert database.name in apply.depends_on
    for release in _releases(local, "seaweedfs") + _releases(local, "valkey"):
        assert release.name in apply.depends_on


# --- teardown ---------------------------------------------------------------------------------


def test_production_stores_leave_a_final_snapshot_even_unprotected(tmp_path) -> None:
    from scripts.destroy import UNPROTECT_KEYS

    # what destroy applies to a protected stack before `pulumi destroy`
    resources = _render_with("aws-prod", tmp_path, **dict.fromkeys(UNPROTECT_KEYS, False))
    (db,) = [r for r in resources if r.type == "aws:rds/instance:Instance"]
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"].startswith("mlops-aws-prod-final-")
    (cache,) = [r for r in resources if r.type.endswith("replicationGroup:ReplicationGroup")]
    assert cache.inputs["finalSnapshotIdentifier"].startswith("mlops-aws-prod-final-")
    assert db.inputs["finalSnapshotIdentifier"] != cache.inputs["finalSnapshotIdentifier"]


def test_volumes_the_cluster_creates_carry_the_stack_tag(aws_dev) -> None:
    (storage_class,) = aws_dev.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    specs = {
        v
        for k, v in storage_class.inputs["parameters"].items()
        if k.startswith("tagSpecification_")
    }
    assert "stack=aws-dev" in specs  # what scripts/leftovers.py lists and deletes by


# --- credentials reach programs as files -------------------------------------------------------

# Read by `mlflow server` from its environment only (no file option): the one exception.
ENV_ONLY_SECRETS = {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_FLASK_SERVER_SECRET_KEY"}


def test_secrets_reach_containers_as_files_where_the_program_reads_one(rendered) -> None:
    from tests.infra.conftest import pod_spec, workloads

    for obj in workloads(rendered):
        pod = pod_spec(obj)
        for container in pod["containers"]:
            from_secrets = {
                e["name"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            assert from_secrets <= ENV_ONLY_SECRETS, (obj["metadata"].get("name"), from_secrets)


def test_each_credentials_file_is_where_its_reader_looks(local) -> None:
    from contract import env, paths
    from tests.infra.conftest import pod_spec, workloads

    for obj in workloads(local):
        pod = pod_spec(obj)
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        for container in pod["containers"]:
            variables = {e["name"]: e.get("value") for e in container.get("env", [])}
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if env.AWS_SHARED_CREDENTIALS_FILE in variables:
                assert variables[env.AWS_SHARED_CREDENTIALS_FILE] == paths.AWS_CREDENTIALS_PATH
                assert mounts.get(paths.AWS_CREDENTIALS_DIR) in secret_volumes
            if env.MLFLOW_TRACKING_URI in variables:  # a client of the MLflow server
                assert mounts.get(paths.MLFLOW_CREDENTIALS_DIR) in secret_volumes
                home = variables.get("HOME")
                assert f"{home}/.mlflow" == paths.MLFLOW_CREDENTIALS_DIR


# --- each workload is its own MLflow user ------------------------------------------------------


def test_each_mlflow_client_authenticates_as_itself_and_only_the_users_job_as_admin(local) -> None:
    from contract import env, paths
    from tests.infra.conftest import pod_spec, workloads

    seen = {}
    for obj in workloads(local):
        pod = pod_spec(obj)
        (container,) = pod["containers"]
        if env.MLFLOW_TRACKING_URI not in {e["name"] for e in container.get("env", [])}:
            continue
        by_name = {v["name"]: v for v in pod["volumes"]}
        (mount,) = [
            m for m in container["volumeMounts"] if m["mountPath"] == paths.MLFLOW_CREDENTIALS_DIR
        ]
        seen[obj["metadata"]["name"]] = by_name[mount["name"]]["secret"]["secretName"]
    assert seen.pop("mlflow-users") == "mlflow-credentials"  # the admin, in this Job only
    assert "mlflow-credentials" not in seen.values()
    assert seen["serving"] == "mlflow-serving-credentials"
    assert seen["pipeline-train"] == seen["pipeline-retrain"] == "mlflow-pipeline-credentials"
    assert seen["monitoring-drift"] == "mlflow-monitor-credentials"


def test_workload_users_read_by_default_and_write_what_they_create(local) -> None:
    import configparser

    from components.experiment_tracking import _AUTH_INI, WORKLOAD_USERS

    auth = configparser.ConfigParser()
    auth.read_string(_AUTH_INI.format(database_url="x", admin_user="a", admin_password="p"))
    assert auth["mlflow"]["default_permission"] == "READ"
    secrets = {s["metadata"]["name"] for s in local.kinds("Secret")}
    assert {f"mlflow-{user}-credentials" for user in WORKLOAD_USERS} <= secrets
    assert "mlflow-workload-users" in secrets
