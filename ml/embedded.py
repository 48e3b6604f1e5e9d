"""The embedded platform: the cluster's backing services as local processes on loopback.

What the platform layer gives a pod in the cluster (``infra/platforms``), this gives the
embedded demo's steps: an MLflow tracking server (SQLite + a local artifact folder), an
S3-compatible object store with the platform's buckets (moto's S3 server, in memory: the role
SeaweedFS plays in the local cluster, and the same stand-in ``make e2e`` uses), Feast's
configuration (file registry, SQLite online store, the offline store in the object store), and
the environment that points a process at all of them, named by :mod:`contract.env`.

Every lifecycle step then runs as its cluster command (:mod:`contract.commands`) in a
subprocess with that environment (:meth:`EmbeddedPlatform.run`), so the demo exercises exactly
the code paths the Jobs run; the demo itself only plays the upstream system, the API clients
and the people, and reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contract import env, objectstore
from ml.errors import ServiceUnavailable, UserError
from ml.settings import Settings, get_settings
from ml.tracking import MlflowServer

REGION = "us-east-1"
STEP_TIMEOUT_S = 900.0
OBJECT_STORE_TIMEOUT_S = 60.0
# The image's Feast repository (infra/images/feature_repo is copied to /app/feature_repo).
FEATURE_REPO = Path(__file__).resolve().parent.parent / "infra" / "images" / "feature_repo"

FEATURE_STORE_YAML = """\
# The embedded platform's Feast configuration (written by ml/embedded.py). The feature views'
# sources are the offline tables in the object store (MLOPS_FEATURES_BUCKET is set).
project: credit_risk
provider: local
registry:
  registry_type: file
  path: {registry}
  cache_ttl_seconds: 5
online_store:
  type: sqlite
  path: {online}
offline_store:
  type: file
entity_key_serialization_version: 3
"""


class StepFailed(UserError):
    """A step's command exited non-zero; the message names it and its log."""


@dataclass
class EmbeddedPlatform:
    """The running services and the environment a step's process gets."""

    settings: Settings
    home: Path
    mlflow: MlflowServer
    object_store_url: str = ""
    buckets: dict[str, str] = field(default_factory=dict)
    _store: subprocess.Popen | None = None

    @classmethod
    def start(cls, settings: Settings, free_port) -> EmbeddedPlatform:
        """Launch both servers; :meth:`wait_ready` blocks until they answer."""
        home = platform_home(settings)
        home.mkdir(parents=True, exist_ok=True)
        platform = cls(settings, home, MlflowServer(settings.mlflow_dir, settings.mlflow_port))
        platform.mlflow.start()
        port = free_port()
        platform.object_store_url = f"http://127.0.0.1:{port}"
        with (home / "object-store.log").open("w") as log:
            platform._store = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return platform

    def wait_ready(self) -> str:
        """Wait for the object store, create the buckets, then wait for MLflow; its URI."""
        self._wait_object_store()
        self.buckets = {role: f"mlops-{role}" for role in objectstore.BUCKETS}
        client = self._s3()
        for name in self.buckets.values():
            client.create_bucket(Bucket=name)
        self._write_files()
        return self.mlflow.wait_ready()

    def stop(self) -> None:
        self.mlflow.stop()
        if self._store is not None and self._store.poll() is None:
            self._store.terminate()
            try:
                self._store.wait(10)
            except subprocess.TimeoutExpired:
                self._store.kill()

    # --- what a pod gets --------------------------------------------------------------------

    @property
    def credentials_file(self) -> Path:
        return self.home / "aws-credentials"

    @property
    def feature_store_yaml(self) -> Path:
        """In the embedded repo folder, so processes started after the demo (``mlops bench``,
        the scoring server) open the same registry and online store."""
        return self.settings.feature_repo_dir / "feature_store.yaml"

    @property
    def step_build_dir(self) -> Path:
        """The steps' local disk (``/tmp/mlops`` in a pod): cards, logs, snapshots."""
        return step_settings(self.settings).build_dir

    def step_settings(self) -> Settings:
        """The settings a step's process reads (its build folder is the steps' local disk)."""
        return step_settings(self.settings)

    def env(self) -> dict[str, str]:
        """The variables the platform gives every first-party pod, pointed at these services."""
        return {
            env.MLFLOW_TRACKING_URI: self.mlflow.uri,
            env.AWS_ENDPOINT_URL_S3: self.object_store_url,
            env.AWS_REGION: REGION,
            env.AWS_DEFAULT_REGION: REGION,
            env.AWS_SHARED_CREDENTIALS_FILE: str(self.credentials_file),
            env.FEAST_YAML: str(self.feature_store_yaml),
            env.FEATURE_REPO: str(FEATURE_REPO),
            env.MODEL_NAME: self.settings.model_name,
            env.BUILD_DIR: str(self.step_build_dir),
            **{env.bucket(role): name for role, name in self.buckets.items()},
        }

    def use_here(self) -> None:
        """Point this process at the platform too (the demo reads what the steps wrote)."""
        for key in (env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY):
            os.environ.pop(key, None)  # the credentials file is what pods get
        os.environ.update(self.env())
        os.environ.pop(env.BUILD_DIR)  # the demo keeps its own build folder
        self._use_mlflow(os.environ)
        get_settings.cache_clear()  # this process's environment changed: read it again

    def _use_mlflow(self, environment) -> None:
        """This platform's MLflow for tracking and registry, whatever the caller's shell (or
        an earlier ``mlflow.set_registry_uri``, which MLflow also exports) points at."""
        environment["MLFLOW_TRACKING_URI"] = self.mlflow.uri
        environment.pop("MLFLOW_REGISTRY_URI", None)

    def run(self, step: str, command: Sequence[str], timeout_s: float = STEP_TIMEOUT_S) -> str:
        """Run one step's command as a pod would; its output (also in ``steps/<step>.log``).

        Raises:
            StepFailed: the command exited non-zero (the message has its last line).
        """
        logs = self.settings.demo_dir / "steps"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{step}.log"
        process_env = {**os.environ, **self.env(), "PYTHONDONTWRITEBYTECODE": "1"}
        self._use_mlflow(process_env)
        executable = Path(sys.executable).parent / command[0]
        argv = [str(executable) if executable.exists() else command[0], *command[1:]]
        try:
            done = subprocess.run(
                argv,
                env=process_env,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(
                f"step {step} ({' '.join(command)}) did not finish within {timeout_s:.0f} s",
                "see the step's log under build/demo/steps",
            ) from None
        log.write_text(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise StepFailed(
                f"step {step} ({' '.join(command)}) exited {done.returncode}: {last[:300]}",
                f"see {log}",
            )
        return done.stdout

    # --- internals ---------------------------------------------------------------------------

    def _s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.object_store_url,
            region_name=REGION,
            aws_access_key_id="embedded",
            aws_secret_access_key="embedded",  # moto checks no credentials
        )

    def _wait_object_store(self) -> None:
        import httpx

        deadline = time.monotonic() + OBJECT_STORE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._store is not None and self._store.poll() is not None:
                raise ServiceUnavailable(
                    f"the embedded object store exited ({self._store.returncode})",
                    f"see {self.home / 'object-store.log'} (is the dev group installed?)",
                )
            try:
                httpx.get(self.object_store_url, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise ServiceUnavailable(
            f"the embedded object store did not answer within {OBJECT_STORE_TIMEOUT_S:.0f} s",
            f"see {self.home / 'object-store.log'}",
        )

    def _write_files(self) -> None:
        # The keys are per-run random, like a generated platform secret; moto accepts any.
        key = os.urandom(12).hex()
        self.credentials_file.write_text(
            f"[default]\naws_access_key_id = embedded\naws_secret_access_key = {key}\n"
        )
        self.credentials_file.chmod(0o600)
        data = self.settings.feature_repo_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.feature_store_yaml.write_text(
            FEATURE_STORE_YAML.format(
                registry=data / "registry.db", online=data / "online_store.db"
            )
        )
        self.step_build_dir.mkdir(parents=True, exist_ok=True)


def platform_home(settings: Settings) -> Path:
    """Where the embedded platform of ``settings``' build keeps its state."""
    return settings.demo_dir / "platform"


def step_settings(settings: Settings) -> Settings:
    """The settings the embedded platform's steps run with: their build folder is its local disk
    (so what the demo's `mlops pipeline train`/`retrain` archive is there, as on a pod's)."""
    return settings.model_copy(update={"build_dir": platform_home(settings) / "local"})
