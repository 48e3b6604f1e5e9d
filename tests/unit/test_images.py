"""Image build: the Dockerfiles' policy, and scripts/build_images.py without a Docker daemon."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.images import DIGEST_REF
from ml.errors import UserError
from scripts import build_images, workflow

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_scripts_support import FakeStack
except ImportError:  # pragma: no cover
    from tests.unit.test_scripts_support import FakeStack

DOCKERFILES = sorted(build_images.IMAGES_DIR.glob("*.Dockerfile"))
DIGEST_HEX = "ab" * 32
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIAL)", re.I)


# --- Dockerfile policy ----------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction: comments dropped, continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (each starts with its FROM)."""
    groups: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            groups.append([])
        groups[-1].append(ins)
    return groups


def env_names(args: str) -> list[str]:
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", args)


def test_both_images_have_a_dockerfile_and_an_ignore_file() -> None:
    assert [p.name for p in DOCKERFILES] == ["ml.Dockerfile", "serving.Dockerfile"]
    for path in DOCKERFILES:
        ignore = path.with_name(path.name + ".dockerignore").read_text()
        assert ignore.splitlines()[ignore.splitlines().index("*") + 1 :], "allow-list expected"
        for needed in ("!pyproject.toml", "!uv.lock", "!ml/"):
            assert needed in ignore.splitlines()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_from_is_pinned_by_digest(path: Path) -> None:
    stage_names = set()
    for ins, args in instructions(path):
        if ins == "FROM":
            image = args.split()[0]
            assert image in stage_names or re.search(r"@sha256:[0-9a-f]{64}$", image), image
            assert ":latest" not in image
            if " AS " in args.upper():
                stage_names.add(args.split()[-1])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_is_non_root_uid_10001_with_home_in_tmp(path: Path) -> None:
    final = stages(path)[-1]
    users = [args for ins, args in final if ins == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    env = " ".join(args for ins, args in final if ins == "ENV")
    assert "HOME=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    # everything after USER runs as 10001; nothing may need root or write outside /tmp
    after_user = final[[ins for ins, _ in final].index("USER") + 1 :]
    assert not [i for i in after_user if i[0] in {"RUN", "COPY", "ADD"}]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_no_remote_add_no_latest_no_secrets_in_env_or_args(path: Path) -> None:
    for ins, args in instructions(path):
        assert not (ins == "ADD" and re.search(r"https?://", args)), args
        assert not re.search(r"(^|[\s:])latest\b", args), args
        if ins in {"ENV", "ARG"}:
            names = env_names(args) or [args.split("=")[0]]
            assert not [n for n in names if SECRET_NAME.search(n)], args


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_environment_comes_from_the_lock_without_dev_tools(path: Path) -> None:
    runs = [args for ins, args in instructions(path) if ins == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    assert not [r for r in runs if re.search(r"\bpip install\b", r)]


def test_both_images_share_one_base_digest() -> None:
    bases = {
        tuple(args.split()[0] for ins, args in instructions(p) if ins == "FROM" and "@" in args)
        for p in DOCKERFILES
    }
    assert len(bases) == 1


def test_ml_image_runs_the_cli_and_holds_the_feast_repo() -> None:
    ins = instructions(build_images.IMAGES_DIR / "ml.Dockerfile")
    assert ("ENTRYPOINT", '["mlops"]') in ins
    from components.types import FEATURE_REPO_DIR

    assert any(i == "COPY" and a.endswith(f" {FEATURE_REPO_DIR}/") for i, a in ins)


def test_serving_image_serves_the_bentoml_service_on_3000_with_a_probe() -> None:
    from components.model_serving import PORT

    ins = instructions(build_images.IMAGES_DIR / "serving.Dockerfile")
    cmd = json.loads(next(a for i, a in ins if i == "CMD"))
    assert cmd[:3] == ["bentoml", "serve", "ml.serve.service:CreditRiskService"]
    assert cmd[cmd.index("--port") + 1] == str(PORT)
    assert ("EXPOSE", str(PORT)) in ins
    healthcheck = next(a for i, a in ins if i == "HEALTHCHECK")
    assert f"127.0.0.1:{PORT}/readyz" in healthcheck


def test_the_service_class_in_the_cmd_exists() -> None:
    source = (workflow.ROOT / "ml" / "serve" / "service.py").read_text()
    assert re.search(r"^class CreditRiskService\b", source, re.M)


def test_feast_repo_exposes_the_objects_for_the_mounted_offline_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.features.definitions import objects_for

    config = tmp_path / "feature_store.yaml"
    config.write_text("project: p\nprovider: local\noffline_store: {type: postgres}\n")
    monkeypatch.setenv("FEAST_FS_YAML_FILE_PATH", str(config))
    module = runpy.run_path(str(build_images.IMAGES_DIR / "feature_repo" / "repo.py"))
    exposed = [v for k, v in module.items() if k.startswith("_feast_object_")]
    kinds = [type(o).__name__ for o in exposed]
    assert kinds == [type(o).__name__ for o in objects_for("postgres")]
    assert "PostgreSQLSource" in kinds


# --- tags and digests -----------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "LATEST", "", "-x", "a" * 129, "a/b"])
def test_bad_tags_are_refused(tag: str) -> None:
    with pytest.raises(UserError):
        build_images.validate_tag(tag)


def test_latest_is_refused_with_a_reason() -> None:
    with pytest.raises(UserError, match="refusing the tag `latest`"):
        build_images.validate_tag("latest")


def test_default_tag_is_the_commit_and_refuses_a_dirty_tree() -> None:
    rev, now = "0123456789abcdef" * 2 + "01234567", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert build_images.default_tag(rev, False, False, now) == "0123456789ab"
    assert build_images.default_tag(rev, True, True, now) == "0123456789ab-dirty-20260102030405"
    with pytest.raises(UserError, match="uncommitted changes"):
        build_images.default_tag(rev, True, False, now)


@pytest.mark.parametrize(
    "text",
    [
        f"The push refers to repository [localhost:5001/mlops-ml]\n"
        f"5f70bf18a086: Pushed\n0123456789ab: digest: sha256:{DIGEST_HEX} size: 1573\n",
        f"Name:      localhost:5001/mlops-ml:0123\n"
        f"MediaType: application/vnd.oci.image.index.v1+json\nDigest:    sha256:{DIGEST_HEX}\n\n"
        f"Manifests:\n  Name: localhost:5001/mlops-ml:0123@sha256:{'cd' * 32}\n",
        json.dumps(
            {
                "buildx.build.ref": "default/default/x",
                "containerimage.config.digest": f"sha256:{'ef' * 32}",
                "containerimage.digest": f"sha256:{DIGEST_HEX}",
            }
        ),
    ],
    ids=["docker-push", "imagetools-inspect", "buildx-metadata"],
)
def test_digest_is_parsed_from_docker_output(text: str) -> None:
    assert build_images.parse_digest(text) == f"sha256:{DIGEST_HEX}"


def test_output_without_a_digest_is_an_error() -> None:
    with pytest.raises(UserError, match="no image digest"):
        build_images.parse_digest("error: failed to push: unauthorized\n")


# --- commands -------------------------------------------------------------------------------


def test_build_command_pushes_the_commit_tag_from_the_repo_root(tmp_path: Path) -> None:
    cmd = build_images.build_command(
        "serving", "localhost:5001/mlops-serving", "0123456789ab", "f" * 40, tmp_path / "m.json"
    )
    assert cmd[:3] == ["docker", "buildx", "build"]
    assert cmd[cmd.index("--file") + 1] == "infra/images/serving.Dockerfile"
    assert cmd[cmd.index("--tag") + 1] == "localhost:5001/mlops-serving:0123456789ab"
    assert f"REVISION={'f' * 40}" in cmd and "--push" in cmd and cmd[-1] == "."
    assert cmd[cmd.index("--metadata-file") + 1] == str(tmp_path / "m.json")


def test_build_command_refuses_latest(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="latest"):
        build_images.build_command("ml", "r.example/m", "latest", "f" * 40, tmp_path / "m")


def test_repositories_per_stack() -> None:
    assert build_images.repositories("local") == {
        "ml": "localhost:5001/mlops-ml",
        "serving": "localhost:5001/mlops-serving",
    }
    ecr = {k: f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-dev-{k}" for k in "ab"}
    with pytest.raises(UserError, match="no ECR repository for ml, serving"):
        build_images.repositories("aws-dev", ecr)
    ecr = {
        k: f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-dev-{k}"
        for k in ("ml", "serving")
    }
    assert build_images.repositories("aws-dev", ecr) == ecr
    assert build_images.ecr_region(build_images.registry_host(ecr["ml"])) == "eu-west-1"


def test_ecr_targets_are_the_repositories_their_key_parent_and_provider() -> None:
    inventory = [
        {"type": "mlops:index:AwsPlatform", "name": "aws", "parent": None},
        {"type": "pulumi:providers:aws", "name": "aws-provider", "parent": "aws"},
        {"type": "aws:kms/key:Key", "name": "aws-kms", "parent": "aws"},
        {"type": "aws:ecr/repository:Repository", "name": "aws-ecr-ml", "parent": "aws"},
        {"type": "aws:s3/bucket:Bucket", "name": "aws-artifacts", "parent": "aws"},
    ]
    platform = "urn:pulumi:aws-dev::mlops::mlops:index:AwsPlatform"
    assert build_images.ecr_targets(inventory, "aws-dev", "mlops") == [
        f"{platform}::aws",
        f"{platform}$pulumi:providers:aws::aws-provider",
        f"{platform}$aws:kms/key:Key::aws-kms",
        f"{platform}$aws:ecr/repository:Repository::aws-ecr-ml",
    ]


def test_ecr_urls_follow_from_the_render() -> None:
    inventory = [
        {"type": "aws:ecr/repository:Repository", "inputs": {"name": f"mlops-aws-dev-{i}"}}
        for i in ("ml", "serving")
    ]
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert build_images.ecr_from_render(inventory, "123456789012", "eu-west-1") == {
        "ml": f"{host}/mlops-aws-dev-ml",
        "serving": f"{host}/mlops-aws-dev-serving",
    }


def test_missing_ecr_repositories_are_created_by_a_targeted_update(monkeypatch) -> None:
    inventory = [
        {"type": "mlops:index:AwsPlatform", "name": "aws", "parent": None, "inputs": {}},
        *(
            {
                "type": "aws:ecr/repository:Repository",
                "name": f"aws-ecr-{i}",
                "parent": "aws",
                "inputs": {"name": f"mlops-aws-dev-{i}"},
            }
            for i in ("ml", "serving")
        ),
    ]
    monkeypatch.setattr(build_images.workflow, "render_inventory", lambda _s: inventory)
    stack = FakeStack("aws-dev", config={"aws:region": "eu-west-1"})
    ups: list[dict] = []
    stack.up = lambda **kw: ups.append({**kw, "env": dict(stack.workspace.env_vars)})  # type: ignore[method-assign]
    run = FakeDocker({("aws", "sts"): (0, "123456789012\n", "")})
    ecr = build_images.ensure_ecr(stack, lambda _l: None, run)
    assert ups[0]["target"] == [
        "urn:pulumi:aws-dev::mlops::mlops:index:AwsPlatform::aws",
        *(
            "urn:pulumi:aws-dev::mlops::mlops:index:AwsPlatform$aws:ecr/repository:Repository"
            f"::aws-ecr-{i}"
            for i in ("ml", "serving")
        ),
    ]
    # the program accepts the placeholder images only for this update, then refuses them again
    assert ups[0]["env"] == {"MLOPS_REGISTRIES_ONLY": "1"}
    assert stack.workspace.env_vars == {}
    assert build_images.repositories("aws-dev", ecr)["ml"].endswith("/mlops-aws-dev-ml")


class FakeDocker:
    """Records commands; answers from ``replies`` (first matching prefix wins)."""

    def __init__(self, replies: dict[tuple[str, ...], tuple[int, str, str]] | None = None):
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self.replies = replies or {}

    def __call__(self, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        self.calls.append(cmd)
        self.inputs.append(kwargs.get("input"))
        code, out, err = next(
            (
                reply
                for prefix, reply in self.replies.items()
                if tuple(cmd[: len(prefix)]) == prefix
            ),
            (0, "", ""),
        )
        if "--metadata-file" in cmd and code == 0:  # what buildx writes after a push
            meta = Path(cmd[cmd.index("--metadata-file") + 1])
            meta.write_text(json.dumps({"containerimage.digest": f"sha256:{DIGEST_HEX}"}))
        return subprocess.CompletedProcess(cmd, code, out, err)


def test_missing_docker_is_one_line_saying_how_to_install_it() -> None:
    with pytest.raises(UserError, match=r"^docker is not on PATH — install Docker"):
        build_images.require_docker(which=lambda _n: None, run=FakeDocker())


def test_docker_without_a_daemon_says_so() -> None:
    down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    run = FakeDocker({("docker", "info"): (1, "", down)})
    with pytest.raises(UserError, match="daemon is not reachable: Cannot connect"):
        build_images.require_docker(which=lambda _n: "/usr/bin/docker", run=run)


def test_build_and_push_reads_the_digest_from_the_metadata(tmp_path: Path) -> None:
    run = FakeDocker({("docker", "buildx", "imagetools"): (1, "", "not found")})
    built = build_images.build_and_push(
        "ml", "localhost:5001/mlops-ml", "abc", "f" * 40, run, lambda _l: None, tmp_path
    )
    assert [c[:3] for c in run.calls] == [
        ["docker", "buildx", "imagetools"],
        ["docker", "buildx", "build"],
    ]
    assert built.ref == f"localhost:5001/mlops-ml@sha256:{DIGEST_HEX}"
    assert DIGEST_REF.match(built.ref)


def test_an_already_pushed_tag_is_reused_not_rebuilt(tmp_path: Path) -> None:
    inspect = f"Name: r/m:abc\nDigest: sha256:{DIGEST_HEX}\n"
    run = FakeDocker({("docker", "buildx", "imagetools"): (0, inspect, "")})
    built = build_images.build_and_push(
        "ml", "localhost:5001/mlops-ml", "abc", "f" * 40, run, lambda _l: None, tmp_path
    )
    assert len(run.calls) == 1 and built.digest == f"sha256:{DIGEST_HEX}"


def test_ecr_login_pipes_the_password_and_never_puts_it_on_a_command_line() -> None:
    run = FakeDocker({("aws", "ecr", "get-login-password"): (0, "pa55word", "")})
    build_images.ecr_login("123456789012.dkr.ecr.eu-west-1.amazonaws.com", run)
    assert run.calls[0] == ["aws", "ecr", "get-login-password", "--region", "eu-west-1"]
    assert run.calls[1][:2] == ["docker", "login"] and "--password-stdin" in run.calls[1]
    assert run.inputs[1] == "pa55word"
    assert not [c for c in run.calls if "pa55word" in " ".join(c)]


def test_pin_writes_digest_refs_into_the_stack_config() -> None:
    stack = FakeStack("local")
    built = [
        build_images.Built("ml", "localhost:5001/mlops-ml", "abc", f"sha256:{DIGEST_HEX}"),
        build_images.Built(
            "serving", "localhost:5001/mlops-serving", "abc", f"sha256:{DIGEST_HEX}"
        ),
    ]
    build_images.pin(stack, built, lambda _l: None)
    assert stack.calls == [
        ("set_config", "mlops:mlImage", f"localhost:5001/mlops-ml@sha256:{DIGEST_HEX}"),
        ("set_config", "mlops:servingImage", f"localhost:5001/mlops-serving@sha256:{DIGEST_HEX}"),
    ]


def test_script_without_docker_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no docker (nor anything else) on PATH
    result = subprocess.run(
        [sys.executable, "-m", "scripts.build_images", "--stack", "local"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workflow.ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: docker is not on PATH")
    assert len(result.stderr.strip().splitlines()) == 1
