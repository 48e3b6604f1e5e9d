"""The GitHub OIDC roles: trust scoped to the repository's main branch and environments."""

from __future__ import annotations

import json
import shutil

import pytest

from infra import render
from infra.platforms import github_ci

REPOSITORY = "acme/mlops-blueprint"
ROLE = "aws:iam/role:Role"


@pytest.fixture(scope="module")
def with_ci(tmp_path_factory: pytest.TempPathFactory) -> list[render.Resource]:
    """aws-prod rendered with a repository and its environments configured."""
    root = tmp_path_factory.mktemp("project")
    (root / "stacks").mkdir()
    shutil.copy(render.ROOT / "Pulumi.yaml", root)
    (root / "infra").symlink_to(render.ROOT / "infra")
    stack = (render.ROOT / "stacks" / "Pulumi.aws-prod.yaml").read_text()
    extra = f"  mlops:githubRepository: {REPOSITORY}\n  mlops:githubEnvironments: [aws-prod]\n"
    (root / "stacks" / "Pulumi.aws-prod.yaml").write_text(stack + extra)
    return render.render("aws-prod", root=root)


def _trust(resources: list[render.Resource], role: str) -> dict:
    [found] = [r for r in resources if r.type == ROLE and r.name.endswith(f"-github-{role}")]
    policy = found.inputs["assumeRolePolicy"]
    return json.loads(policy) if isinstance(policy, str) else policy


def test_no_ci_role_unless_a_repository_is_configured(aws_dev) -> None:
    assert not [r for r in aws_dev.resources if "-github-" in r.name]


def test_deploy_role_trusts_only_main_and_the_configured_environments(with_ci) -> None:
    [statement] = _trust(with_ci, "deploy")["Statement"]
    condition = statement["Condition"]["StringEquals"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert condition[f"{github_ci.ISSUER_HOST}:aud"] == "sts.amazonaws.com"
    assert condition[f"{github_ci.ISSUER_HOST}:sub"] == [
        f"repo:{REPOSITORY}:ref:refs/heads/main",
        f"repo:{REPOSITORY}:environment:aws-prod",
    ]
    assert "StringLike" not in statement["Condition"]  # no wildcards


def test_preview_role_is_read_only_and_trusts_pull_requests(with_ci) -> None:
    [statement] = _trust(with_ci, "preview")["Statement"]
    subjects = statement["Condition"]["StringEquals"][f"{github_ci.ISSUER_HOST}:sub"]
    assert subjects == [f"repo:{REPOSITORY}:pull_request"]
    attached = {
        r.name: r.inputs["policyArn"]
        for r in with_ci
        if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and "-github-" in r.name
    }
    assert sorted(attached.values()) == sorted([github_ci.DEPLOY_POLICY, github_ci.PREVIEW_POLICY])
    assert any(n.endswith("-github-preview-policy") for n in attached)


def test_the_account_wide_oidc_provider_is_created_once(with_ci) -> None:
    providers = [
        r for r in with_ci if r.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    ]
    github = [p for p in providers if github_ci.ISSUER_HOST in str(p.inputs.get("url"))]
    assert len(github) == 1 and github[0].inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_a_wrong_repository_is_refused_naming_the_key() -> None:
    from infra import config
    from ml.errors import UserError

    raw = {k.split(":", 1)[1]: v for k, v in render.stack_config("aws-dev").items()}
    raw |= {"region": "eu-west-1", "githubRepository": "acme"}
    with pytest.raises(UserError, match="mlops:githubRepository"):
        config.parse(raw)


def test_trust_policy_names_the_exact_subjects() -> None:
    policy = json.loads(github_ci.trust_policy("arn:oidc", ["repo:a/b:ref:refs/heads/main"]))
    assert policy["Statement"][0]["Principal"] == {"Federated": "arn:oidc"}
