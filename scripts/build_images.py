"""Build the ML and serving images, push them to the stack's registry, pin their digests.

    uv run python -m scripts.build_images --stack local       # kind's registry, localhost:5001
    uv run python -m scripts.build_images --stack aws-dev     # the stack's ECR repositories
    uv run python -m scripts.build_images --stack local --dry-run   # print the commands only

Each image (``infra/images/<image>.Dockerfile``, context: the repository root) is built with
``docker buildx build --push``, tagged with the git commit (never ``latest``; a dirty working
tree is refused unless ``--allow-dirty``), and its pushed digest is written into the stack
config as ``repo@sha256:...`` (``mlops:mlImage``, ``mlops:servingImage``) through the
Automation API, so ``pulumi up`` deploys exactly the bytes that were pushed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from infra.config import REGISTRIES_ONLY_ENV
from ml.errors import UserError
from scripts import workflow

IMAGES_DIR = workflow.ROOT / "infra" / "images"
# image -> stack config key (components/images.py reads these)
CONFIG_KEYS = {"ml": "mlImage", "serving": "servingImage"}
LOCAL_REGISTRY = f"localhost:{os.environ.get('MLOPS_REGISTRY_PORT', '5001')}"
METADATA_DIR = workflow.BUILD / "images"
# Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
INSTALL_DOCKER = (
    "install Docker Engine with the buildx plugin (https://docs.docker.com/engine/install/) "
    "and run again"
)

Run = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class Built:
    """One pushed image: ``ref`` (``repo@sha256:...``) is what the stack config records."""

    image: str
    repo: str
    tag: str
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.repo}@{self.digest}"


# --- pure parts (unit-tested) ---------------------------------------------------------------


def validate_tag(tag: str) -> str:
    """``tag`` if it is a valid, immutable-looking Docker tag.

    Raises:
        UserError: ``latest`` (it moves, so it pins nothing) or not a valid tag.
    """
    if tag.lower() == "latest":
        raise UserError("refusing the tag `latest`", "tag with the git commit (the default)")
    if not TAG.match(tag):
        raise UserError(f"{tag!r} is not a valid image tag", "use letters, digits, '_', '.', '-'")
    return tag


def parse_digest(text: str) -> str:
    """The image digest in ``docker push`` / ``imagetools inspect`` output or buildx metadata.

    Understands ``<tag>: digest: sha256:<hex> size: N`` (push), ``Digest: sha256:<hex>``
    (``docker buildx imagetools inspect``) and the ``containerimage.digest`` key of
    ``--metadata-file`` JSON; the first matching line wins.

    Raises:
        UserError: no digest in ``text``.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        digest = json.loads(stripped).get("containerimage.digest", "")
        if DIGEST.fullmatch(digest):
            return digest
    for line in text.splitlines():
        if re.search(r"\bdigest:", line, re.IGNORECASE):
            found = DIGEST.search(line)
            if found:
                return found.group(0)
    raise UserError("no image digest in the docker output", "check the push succeeded")


def repositories(stack_name: str, ecr: dict[str, str] | None = None) -> dict[str, str]:
    """Repository (without tag) of each image for ``stack_name``.

    Args:
        ecr: AWS stacks: the stack output ``ecrRepositories`` (image -> repository URL).

    Raises:
        UserError: an AWS stack without its ECR repositories.
    """
    if not workflow.is_aws(stack_name):
        return {image: f"{LOCAL_REGISTRY}/mlops-{image}" for image in CONFIG_KEYS}
    missing = sorted(set(CONFIG_KEYS) - set(ecr or {}))
    if missing:
        raise UserError(
            f"stack {stack_name} has no ECR repository for {', '.join(missing)} yet",
            "run again without --no-create-registry, or `pulumi up` the stack once",
        )
    return {image: (ecr or {})[image] for image in CONFIG_KEYS}


def dry_run_repositories(stack_name: str) -> dict[str, str]:
    """Repositories to show in ``--dry-run``; AWS ones are placeholders (no stack is opened)."""
    if not workflow.is_aws(stack_name):
        return repositories(stack_name)
    ecr = "<account>.dkr.ecr.<region>.amazonaws.com"
    return {image: f"{ecr}/mlops-{stack_name}-{image}" for image in CONFIG_KEYS}


def registry_host(repo: str) -> str:
    return repo.split("/", 1)[0]


def ecr_region(host: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com`` -> ``<region>``."""
    match = re.match(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$", host)
    if not match:
        raise UserError(f"{host} is not an ECR registry", "check the ecrRepositories output")
    return match.group(1)


def build_command(image: str, repo: str, tag: str, revision: str, metadata: Path) -> list[str]:
    """``docker buildx build ... --push`` for one image, context the repository root."""
    dockerfile = IMAGES_DIR / f"{image}.Dockerfile"
    return [
        "docker",
        "buildx",
        "build",
        "--file",
        str(dockerfile.relative_to(workflow.ROOT)),
        "--tag",
        f"{repo}:{validate_tag(tag)}",
        "--build-arg",
        f"REVISION={revision}",
        "--platform",
        "linux/amd64",
        "--metadata-file",
        str(metadata),
        "--push",
        ".",
    ]


def inspect_command(repo: str, tag: str) -> list[str]:
    return ["docker", "buildx", "imagetools", "inspect", f"{repo}:{tag}"]


def ecr_targets(inventory: Sequence[dict], stack_name: str, project: str) -> list[str]:
    """URNs of what a targeted ``up`` must create for the ECR repositories to exist.

    The repositories, their lifecycle policies and the KMS key they are encrypted with, plus
    everything those need that a fresh stack does not have yet: their parent components and
    the explicit AWS provider. Pulumi refuses an untargeted create ("untargeted create of
    ... is not allowed") rather than create a dependency that is not listed.
    """
    by_name = {r["name"]: r for r in inventory}
    wanted = ("aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:", "aws:kms/key:Key")
    needed: dict[str, dict] = {}
    for resource in (r for r in inventory if r["type"].startswith(wanted)):
        needed[resource["name"]] = resource
        parent = resource.get("parent")
        while parent and parent in by_name:
            needed.setdefault(parent, by_name[parent])
            parent = by_name[parent].get("parent")
    for provider in (r for r in inventory if r["type"] == "pulumi:providers:aws"):
        needed[provider["name"]] = provider
    return [
        _urn(r, by_name, stack_name, project)
        for r in inventory
        if r["name"] in needed and needed[r["name"]] is r
    ]


def _urn(resource: dict, by_name: dict[str, dict], stack_name: str, project: str) -> str:
    # urn:pulumi:<stack>::<project>::<ancestor types, outermost first, '$'-joined>::<name>
    types, parent = [resource["type"]], resource.get("parent")
    while parent and parent in by_name:
        types.insert(0, by_name[parent]["type"])
        parent = by_name[parent].get("parent")
    return f"urn:pulumi:{stack_name}::{project}::{'$'.join(types)}::{resource['name']}"


# --- effects --------------------------------------------------------------------------------


def require_docker(
    which: Callable[[str], str | None] = shutil.which, run: Run = subprocess.run
) -> None:
    """Docker CLI on PATH, its daemon reachable and buildx installed.

    Raises:
        UserError: one of the three is missing (the message says which and what to do).
    """
    if which("docker") is None:
        raise UserError("docker is not on PATH", INSTALL_DOCKER)
    info = _call(run, ["docker", "info", "--format", "{{.ServerVersion}}"])
    if info.returncode != 0:
        raise UserError(
            f"the Docker daemon is not reachable: {_last_line(info)}",
            "start Docker (or set DOCKER_HOST) and run again",
        )
    if _call(run, ["docker", "buildx", "version"]).returncode != 0:
        raise UserError("docker buildx is not installed", INSTALL_DOCKER)


def git_state(run: Run = subprocess.run) -> tuple[str, bool]:
    """``(full commit hash of HEAD, whether tracked files have uncommitted changes)``.

    Raises:
        UserError: not a git checkout.
    """
    head = _call(run, ["git", "rev-parse", "HEAD"])
    if head.returncode != 0:
        raise UserError("not a git checkout", "build from a clone of the repository")
    status = _call(run, ["git", "status", "--porcelain", "--untracked-files=no"])
    return head.stdout.strip(), bool(status.stdout.strip())


def default_tag(revision: str, dirty: bool, allow_dirty: bool, now: datetime) -> str:
    """The short commit; for an allowed dirty tree ``<commit>-dirty-<UTC time>``.

    A dirty build gets a unique tag because registries with immutable tags (ECR here) refuse
    to overwrite one, and because two dirty builds of one commit are different images.

    Raises:
        UserError: a dirty tree without ``allow_dirty`` (the image would not be the commit).
    """
    if not dirty:
        return revision[:12]
    if not allow_dirty:
        raise UserError(
            "the working tree has uncommitted changes",
            "commit them (the image tag is the commit), or pass --allow-dirty",
        )
    return f"{revision[:12]}-dirty-{now:%Y%m%d%H%M%S}"


def ecr_login(host: str, run: Run = subprocess.run) -> None:
    """``aws ecr get-login-password | docker login --password-stdin`` (the password is piped,
    never printed or put on a command line)."""
    region = ecr_region(host)
    password = _call(run, ["aws", "ecr", "get-login-password", "--region", region])
    if password.returncode != 0:
        raise UserError(
            f"cannot get an ECR login password: {_last_line(password)}",
            "log in to AWS (`aws sso login` or AWS_PROFILE=...) and run again",
        )
    login = ["docker", "login", "--username", "AWS", "--password-stdin", host]
    result = _call(run, login, input=password.stdout)
    if result.returncode != 0:
        raise UserError(f"docker login to {host} failed: {_last_line(result)}", "check IAM access")


def build_and_push(
    image: str,
    repo: str,
    tag: str,
    revision: str,
    run: Run = subprocess.run,
    out: Callable[[str], None] = print,
    metadata_dir: Path = METADATA_DIR,
) -> Built:
    """Build and push one image; its digest from buildx's metadata, else ``imagetools``.

    A tag that the registry already has is not rebuilt: the tag is the commit, and immutable
    repositories would refuse the push anyway; its digest is read back instead.
    """
    existing = _call(run, inspect_command(repo, tag))
    if existing.returncode == 0 and DIGEST.search(existing.stdout):
        out(f"{repo}:{tag} is already pushed; reusing it")
        return Built(image, repo, tag, parse_digest(existing.stdout))
    metadata_dir.mkdir(parents=True, exist_ok=True)
    metadata = metadata_dir / f"{image}.json"
    metadata.unlink(missing_ok=True)
    cmd = build_command(image, repo, tag, revision, metadata)
    out("build: " + " ".join(cmd))
    result = run(cmd, cwd=workflow.ROOT, check=False)
    if result.returncode != 0:
        raise UserError(f"building the {image} image failed", "see the docker output above")
    if metadata.exists():
        digest = parse_digest(metadata.read_text())
    else:
        digest = parse_digest(_call(run, inspect_command(repo, tag)).stdout)
    return Built(image, repo, tag, digest)


def pin(stack: workflow.StackLike, built: Sequence[Built], out: Callable[[str], None]) -> None:
    """Write each image's ``repo@sha256:...`` into the stack config."""
    from pulumi.automation import ConfigValue

    from components.images import DIGEST_REF

    for b in built:
        if not DIGEST_REF.match(b.ref):
            raise UserError(f"{b.ref} is not a digest reference", "report this as a bug")
        stack.set_config(workflow.config_key(CONFIG_KEYS[b.image]), ConfigValue(b.ref))
        out(f"pinned {workflow.config_key(CONFIG_KEYS[b.image])} = {b.ref}")


def ecr_from_render(inventory: Sequence[dict], account: str, region: str) -> dict[str, str]:
    """Image -> repository URL from the ECR repositories' ``name`` inputs in the render.

    Repository names are fixed by the program (``mlops-<stack>-<image>``), so their URLs are
    known without the stack outputs, which a targeted update may leave unset.
    """
    names = [
        r["inputs"]["name"] for r in inventory if r["type"] == "aws:ecr/repository:Repository"
    ]
    host = f"{account}.dkr.ecr.{region}.amazonaws.com"
    return {
        image: f"{host}/{name}"
        for image in CONFIG_KEYS
        for name in names
        if name.endswith(f"-{image}")
    }


def ensure_ecr(
    stack: workflow.StackLike, out: Callable[[str], None], run: Run = subprocess.run
) -> dict[str, str]:
    """The stack's ECR repositories, creating them (and their KMS key) first when missing."""
    ecr = workflow.plain_outputs(stack).get("ecrRepositories") or {}
    if set(CONFIG_KEYS) <= set(ecr):
        return ecr
    inventory = workflow.render_inventory(stack.name)
    targets = ecr_targets(inventory, stack.name, workflow.project_name())
    out(f"{stack.name}: creating the ECR repositories first (targeted update: {len(targets)})")
    # The stack still has placeholder images (that is why we build); the program refuses them
    # unless told that this update creates the registries only.
    stack.workspace.env_vars[REGISTRIES_ONLY_ENV] = "1"
    try:
        stack.up(target=targets, on_output=out, color="auto")
    finally:
        stack.workspace.env_vars.pop(REGISTRIES_ONLY_ENV, None)
    region = getattr(stack.get_all_config().get("aws:region"), "value", None) or "us-east-1"
    return ecr_from_render(inventory, aws_account(run), region)


def aws_account(run: Run = subprocess.run) -> str:
    """The AWS account id of the current credentials."""
    cmd = ["aws", "sts", "get-caller-identity", "--query", "Account", "--output", "text"]
    result = _call(run, cmd)
    if result.returncode != 0:
        raise UserError(
            f"cannot read the AWS account: {_last_line(result)}",
            "log in to AWS (`aws sso login` or AWS_PROFILE=...) and run again",
        )
    return result.stdout.strip()


def _call(run: Run, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return run(cmd, capture_output=True, text=True, check=False, cwd=workflow.ROOT, **kwargs)


def _last_line(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or "").strip() or (result.stdout or "").strip() or "no output"
    return text.splitlines()[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument("--tag", help="image tag (default: the git commit; never `latest`)")
    parser.add_argument("--allow-dirty", action="store_true", help="build uncommitted changes")
    parser.add_argument("--dry-run", action="store_true", help="print the build commands only")
    parser.add_argument(
        "--no-create-registry",
        action="store_true",
        help="AWS: fail instead of creating missing ECR repositories with a targeted update",
    )
    args = parser.parse_args(argv)
    if not args.dry_run:
        require_docker()
    revision, dirty = git_state()
    allow_dirty = args.allow_dirty or args.dry_run
    tag = validate_tag(args.tag or default_tag(revision, dirty, allow_dirty, datetime.now(UTC)))
    if args.dry_run:
        for image, repo in dry_run_repositories(args.stack).items():
            print(
                " ".join(build_command(image, repo, tag, revision, METADATA_DIR / f"{image}.json"))
            )
        return
    stack = workflow.open_stack(args.stack)
    ecr = None
    if workflow.is_aws(args.stack):
        ecr = workflow.plain_outputs(stack).get("ecrRepositories")
        if not args.no_create_registry:
            ecr = ensure_ecr(stack, print)
    repos = repositories(args.stack, ecr)
    if workflow.is_aws(args.stack):
        ecr_login(registry_host(repos["ml"]))
    built = [build_and_push(image, repo, tag, revision) for image, repo in repos.items()]
    pin(stack, built, print)


if __name__ == "__main__":
    workflow.run_cli(main)
