"""The GitHub Actions identities of an AWS stack: OIDC federation, no long-lived keys.

GitHub's OIDC token names the workflow's repository and either its branch
(``repo:<owner>/<name>:ref:refs/heads/main``), its environment
(``repo:<owner>/<name>:environment:<env>``, for jobs that declare one) or a pull request
(``repo:<owner>/<name>:pull_request``). Two roles trust exactly those subjects, nothing wider:

* **deploy** (workflows on main and the configured environments): ``pulumi up``/``destroy``,
  which creates IAM roles, EKS, RDS, so it needs administrator rights in its account;
* **preview** (pull requests): read-only, enough for ``pulumi preview`` and ``refresh``.

The OIDC provider exists once per account: the first stack creates it, any other stack in the
same account names it with ``mlops:githubOidcProviderArn``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

ISSUER_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
DEPLOY_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
PREVIEW_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
MAX_SESSION_SECONDS = 2 * 3600  # an EKS create-or-replace plus the smoke test fits in it


def deploy_subjects(repository: str, environments: list[str]) -> list[str]:
    """The token subjects allowed to deploy: main, and jobs in the named environments."""
    return [
        f"repo:{repository}:ref:refs/heads/main",
        *(f"repo:{repository}:environment:{env}" for env in environments),
    ]


def preview_subjects(repository: str) -> list[str]:
    return [f"repo:{repository}:pull_request"]


def trust_policy(provider_arn: str, subjects: list[str]) -> str:
    """Only tokens for AWS STS from exactly ``subjects`` may assume the role."""
    condition = {f"{ISSUER_HOST}:aud": AUDIENCE, f"{ISSUER_HOST}:sub": subjects}
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": condition},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _trust_output(provider_arn: pulumi.Input[str], subjects: list[str]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(provider_arn).apply(lambda arn: trust_policy(arn, subjects))


@dataclass(frozen=True)
class GithubCiArgs:
    repository: str
    """owner/name of the repository whose workflows act on the stack."""
    environments: list[str] = field(default_factory=list)
    """GitHub environments whose jobs may deploy (e.g. ``aws-prod``)."""
    provider_arn: str | None = None
    """An existing GitHub OIDC provider of the account; None creates one."""


class GithubCi(pulumi.ComponentResource):
    """The GitHub OIDC provider (or a reference to it) and the deploy and preview roles."""

    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: GithubCiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:GithubCi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider_arn: pulumi.Input[str]
        if args.provider_arn:
            provider_arn = args.provider_arn
        else:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-oidc",
                url=f"https://{ISSUER_HOST}",
                client_id_lists=[AUDIENCE],
                opts=child,
            ).arn
        roles = {
            "deploy": (deploy_subjects(args.repository, args.environments), DEPLOY_POLICY),
            "preview": (preview_subjects(args.repository), PREVIEW_POLICY),
        }
        arns = {}
        for role_name, (subjects, policy) in roles.items():
            role = aws.iam.Role(
                f"{name}-{role_name}",
                description=f"GitHub Actions of {args.repository}: {role_name}",
                assume_role_policy=_trust_output(provider_arn, subjects),
                max_session_duration=MAX_SESSION_SECONDS,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-{role_name}-policy", role=role.name, policy_arn=policy, opts=child
            )
            arns[role_name] = role.arn
        self.deploy_role_arn = arns["deploy"]
        self.preview_role_arn = arns["preview"]
        self.register_outputs(
            {"deployRoleArn": self.deploy_role_arn, "previewRoleArn": self.preview_role_arn}
        )
