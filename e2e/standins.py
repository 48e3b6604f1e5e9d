"""Local stand-ins for the platform's third-party services, on the e2e network.

Each one answers at the DNS name the rendered platform gives the pods and accepts the
credentials the rendered Secrets hold (revealed render), so the first-party pods run with their
rendered configuration unchanged:

* PostgreSQL (CloudNativePG in the local platform): TLS on (the URL says ``sslmode=require``),
  the app database, user and generated password of ``postgres-app-auth``;
* Valkey: Debian's redis-server with the generated ``default`` password;
* SeaweedFS' S3 gateway: moto's S3 server with the platform's buckets (moto does not check
  credentials: a known difference, listed in the summary);
* the Pushgateway and Prometheus (config and rules given by the harness).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from contract.objectstore import artifact_bucket
from e2e import podman
from e2e.manifests import pod_template, service_aliases

DATA_NS = "mlops-data"
POSTGRES_SCRIPT = r"""set -eu
D=/tmp/pgdata
B=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
$B/initdb -D $D -U postgres -E UTF8 --locale=C --auth-local=trust \
  --auth-host=scram-sha-256 >/dev/null
cd $D
openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key -out server.crt -days 2 \
  -subj "/CN=postgres-rw.mlops-data.svc.cluster.local" 2>/dev/null
chmod 600 server.key
printf "listen_addresses='*'\nssl=on\nssl_cert_file='server.crt'\nssl_key_file='server.key'\n" \
  >> postgresql.conf
echo "hostssl all all 0.0.0.0/0 scram-sha-256" >> pg_hba.conf
$B/pg_ctl -D $D -w -o "-c listen_addresses=''" start >/dev/null
$B/psql -q -U postgres -c "CREATE ROLE \"$APP_USER\" LOGIN PASSWORD '$APP_PASSWORD'"
$B/createdb -U postgres -O "$APP_USER" "$APP_DB"
$B/pg_ctl -D $D -w stop >/dev/null
exec $B/postgres -D $D
"""


class StandinError(AssertionError):
    """A stand-in service did not come up; the message says which and shows its log."""


def secret_data(objects: Mapping, namespace: str, name: str) -> dict[str, str]:
    obj = objects.get((namespace, "Secret", name))
    if obj is None:
        raise StandinError(f"the render has no Secret {namespace}/{name}")
    return dict(obj.get("stringData") or {})


def buckets(objects: Mapping) -> dict[str, str]:
    """role -> bucket name, from the pods' MLOPS_<ROLE>_BUCKET values and MLflow's artifacts."""
    found: dict[str, str] = {}
    for (_, kind, _), obj in objects.items():
        if kind not in ("Deployment", "Job", "CronJob"):
            continue
        for container in pod_template(obj)["spec"]["containers"]:
            for var in container.get("env") or []:
                name = var["name"]
                if name.startswith("MLOPS_") and name.endswith("_BUCKET") and "value" in var:
                    found[name.removeprefix("MLOPS_").removesuffix("_BUCKET").lower()] = var[
                        "value"
                    ]
            for arg in container.get("args") or []:
                option, _, value = str(arg).partition("=")
                if option == "--artifacts-destination":
                    found["artifacts"] = artifact_bucket(value)
    return found


@dataclass
class Standins:
    """The running stand-ins, as the harness sees them from the host."""

    image: str
    work: Path
    ips: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    s3_credentials: tuple[str, str] = ("", "")

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.ips['s3']}:8333"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.ips['prometheus']}:9090"

    def _start(self, role: str, service: str, namespace: str, args: list[str]) -> None:
        names = service_aliases(service, namespace)
        aliases = [flag for alias in names for flag in ("--network-alias", alias)]
        podman.run_detached(f"standin-{role}", [*aliases, *args])
        self.ips[role] = podman.ip_of(f"standin-{role}")

    def start_prometheus(self, config: str, rules: str) -> None:
        folder = self.work / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prometheus.yml").write_text(config)
        (folder / "rules.yml").write_text(rules)
        self._start(
            "prometheus",
            "prometheus",
            "monitoring",
            [
                "-v", f"{folder}:/etc/prometheus:ro",
                self.image, "prometheus",
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/tmp/prometheus",
                "--web.listen-address=:9090",
                "--web.enable-lifecycle",
            ],
        )  # fmt: skip
        _wait(
            "Prometheus", "standin-prometheus", lambda: _http_ok(f"{self.prometheus_url}/-/ready")
        )


def start(objects: Mapping, work: Path, image: str) -> Standins:
    """Start PostgreSQL, Valkey, S3 and the Pushgateway; return when each answers."""
    standins = Standins(image, work)
    pg = secret_data(objects, DATA_NS, "postgres-app-auth")
    database = urlsplit(secret_data(objects, "mlops", "mlops-database")["url"])
    if database.username != pg["username"] or database.password != pg["password"]:
        raise StandinError("mlops-database url and postgres-app-auth disagree")
    db_name = database.path.lstrip("/")
    standins._start(
        "postgres",
        "postgres-rw",
        DATA_NS,
        [
            "--user", "postgres",
            "--env", f"APP_USER={pg['username']}", "--env", f"APP_PASSWORD={pg['password']}",
            "--env", f"APP_DB={db_name}",
            "--entrypoint", '["bash", "-c"]', image, POSTGRES_SCRIPT,
        ],
    )  # fmt: skip
    redis_password = secret_data(objects, DATA_NS, "valkey-users")["default"]
    standins._start(
        "redis",
        "valkey",
        DATA_NS,
        [image, "redis-server", "--port", "6379", "--requirepass", redis_password,
         "--protected-mode", "no", "--save", "", "--appendonly", "no"],
    )  # fmt: skip
    standins._start(
        "s3",
        "seaweedfs-s3",
        DATA_NS,
        [image, "/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "8333"],
    )
    standins._start(
        "pushgateway",
        "pushgateway",
        "monitoring",
        [image, "prometheus-pushgateway", "--web.listen-address=:9091"],
    )
    keys = secret_data(objects, "mlops", "mlops-pipeline-s3")
    standins.s3_credentials = (keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])
    standins.buckets = buckets(objects)
    _wait_ready(standins, pg, db_name, redis_password)
    return standins


def _wait_ready(standins: Standins, pg: dict, db_name: str, redis_password: str) -> None:
    ips = standins.ips

    def postgres() -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host=ips["postgres"], dbname=db_name, user=pg["username"],
                password=pg["password"], sslmode="require", connect_timeout=3,
            ):  # fmt: skip
                return True
        except psycopg.OperationalError:
            return False

    def redis() -> bool:
        import redis as redis_client

        try:
            return bool(
                redis_client.Redis(
                    ips["redis"], 6379, password=redis_password, socket_timeout=2
                ).ping()
            )
        except redis_client.RedisError:
            return False

    def s3() -> bool:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=standins.s3_endpoint,
            aws_access_key_id=standins.s3_credentials[0],
            aws_secret_access_key=standins.s3_credentials[1],
            region_name="us-east-1",
        )
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            for name in set(standins.buckets.values()) - existing:
                client.create_bucket(Bucket=name)
            return True
        except (BotoCoreError, ClientError):
            return False

    _wait("PostgreSQL", "standin-postgres", postgres)
    _wait("Redis", "standin-redis", redis)
    _wait("S3", "standin-s3", s3)
    _wait(
        "Pushgateway",
        "standin-pushgateway",
        lambda: _http_ok(f"http://{ips['pushgateway']}:9091/-/ready"),
    )


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(what: str, container: str, check: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            print(f"e2e: stand-in {what} ready", flush=True)
            return
        time.sleep(1.0)
    raise StandinError(
        f"stand-in {what} not ready within {timeout_s:.0f} s; log tail:\n"
        f"{podman.logs(container, tail=15)}"
    )
