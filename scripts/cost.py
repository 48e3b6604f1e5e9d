"""Offline cost estimate of a stack, per resource per hour and month, in the stack's region.

The inventory is what ``mlops infra render`` writes (a list of ``{type, name, parent, inputs}``).
Prices come from ``prices.yaml`` for the region of the inventory's AWS provider (the stack's
``aws:region``). Only resources with a fixed hourly or monthly price are counted; usage-priced
ones (S3, ECR, logs, data transfer) are listed separately so nobody mistakes the total for a
bill. An EKS version past standard support is priced at the extended-support rate. A region or
a resource class missing from the price table is an error, not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from ml.errors import UserError

PRICES_FILE = Path(__file__).with_name("prices.yaml")

# Billed by usage only: shown, not summed.
USAGE_PRICED = {
    "aws:s3/bucket:Bucket": "S3 storage and requests",
    "aws:s3/bucketV2:BucketV2": "S3 storage and requests",
    "aws:ecr/repository:Repository": "ECR image storage",
    "aws:cloudwatch/logGroup:LogGroup": "CloudWatch Logs ingestion and storage",
}


@dataclass(frozen=True)
class Line:
    resource: str
    type: str
    item: str
    quantity: float
    monthly_usd: float
    hours_per_month: int = 730

    @property
    def hourly_usd(self) -> float:
        return self.monthly_usd / self.hours_per_month


@dataclass
class Estimate:
    lines: list[Line] = field(default_factory=list)
    usage_priced: list[tuple[str, str]] = field(default_factory=list)  # (resource, what)
    prices_date: str = ""
    region: str = ""

    @property
    def total(self) -> float:
        return round(sum(line.monthly_usd for line in self.lines), 2)

    @property
    def hourly_total(self) -> float:
        return round(sum(line.hourly_usd for line in self.lines), 4)


def load_prices(path: Path = PRICES_FILE) -> dict:
    """The price table (see the header of ``scripts/prices.yaml``)."""
    return yaml.safe_load(path.read_text())


def region_of(inventory: list[dict]) -> str:
    """The region of the inventory's AWS provider (the stack's ``aws:region``).

    Raises:
        UserError: no AWS provider names a region.
    """
    regions = {
        str(r["inputs"]["region"])
        for r in inventory
        if r["type"] == "pulumi:providers:aws" and (r.get("inputs") or {}).get("region")
    }
    if len(regions) != 1:
        raise UserError(
            f"cannot tell the stack's region from its render (found {sorted(regions) or 'none'})",
            "set aws:region in the stack file",
        )
    return regions.pop()


def regional(prices: dict, region: str) -> dict:
    """The price tables of ``region`` with the shared keys (hours, date, currency).

    Raises:
        UserError: the region has no prices yet.
    """
    tables = prices["regions"].get(region)
    if tables is None:
        raise UserError(
            f"no prices for region {region} in {PRICES_FILE.name} "
            f"(has {', '.join(prices['regions'])})",
            f"add the region's on-demand prices to scripts/{PRICES_FILE.name}",
        )
    shared = {k: v for k, v in prices.items() if k != "regions"}
    return {**shared, **tables, "region": region}


def _get(inputs: dict, key: str, default=None):
    """An input by its wire name (camelCase) or its Python name (snake_case)."""
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
    value = inputs.get(key, inputs.get(snake))
    return default if value is None else value


def _hourly(prices: dict, table: str, cls: str, resource: str) -> float:
    try:
        return float(prices[table][cls])
    except KeyError:
        raise UserError(
            f"no price for {cls!r} (used by {resource}) in {PRICES_FILE.name}:{table}",
            f"add its {prices['region']} on-demand hourly price to scripts/{PRICES_FILE.name}",
        ) from None


def _node_group(r: dict, p: dict) -> list[Line]:
    inputs = r["inputs"]
    cls = (_get(inputs, "instanceTypes") or ["t3.medium"])[0]  # t3.medium is the EKS default
    nodes = int(_get(_get(inputs, "scalingConfig", {}), "desiredSize", 1))
    disk = float(_get(inputs, "diskSize", 20))
    hours = p["hours_per_month"]
    return [
        Line(
            r["name"],
            r["type"],
            f"{cls} node",
            nodes,
            nodes * hours * _hourly(p, "ec2_instance_hourly", cls, r["name"]),
        ),
        Line(
            r["name"],
            r["type"],
            "gp3 GB (node disks)",
            nodes * disk,
            nodes * disk * p["ebs_gp3_gb_month"],
        ),
    ]


def _ec2_instance(r: dict, p: dict) -> list[Line]:
    cls = _get(r["inputs"], "instanceType")
    monthly = p["hours_per_month"] * _hourly(p, "ec2_instance_hourly", cls, r["name"])
    return [Line(r["name"], r["type"], cls, 1, monthly)]


def _rds_instance(r: dict, p: dict) -> list[Line]:
    inputs = r["inputs"]
    cls = _get(inputs, "instanceClass")
    azs = 2 if _get(inputs, "multiAz", False) else 1  # Multi-AZ runs a standby: twice the price
    storage = float(_get(inputs, "allocatedStorage", 20))
    label = f"{cls}{' Multi-AZ' if azs == 2 else ''}"
    return [
        Line(
            r["name"],
            r["type"],
            label,
            1,
            azs * p["hours_per_month"] * _hourly(p, "rds_instance_hourly", cls, r["name"]),
        ),
        Line(
            r["name"], r["type"], "storage GB", storage, azs * storage * p["rds_storage_gb_month"]
        ),
    ]


def _elasticache(r: dict, p: dict) -> list[Line]:
    inputs = r["inputs"]
    cls = _get(inputs, "nodeType")
    if _get(inputs, "numCacheClusters") is not None:
        nodes = int(_get(inputs, "numCacheClusters"))
    elif _get(inputs, "numCacheNodes") is not None:
        nodes = int(_get(inputs, "numCacheNodes"))
    else:
        shards = int(_get(inputs, "numNodeGroups", 1))
        nodes = shards * (1 + int(_get(inputs, "replicasPerNodeGroup", 0)))
    monthly = nodes * p["hours_per_month"] * _hourly(p, "elasticache_node_hourly", cls, r["name"])
    return [Line(r["name"], r["type"], f"{cls} node", nodes, monthly)]


def _flat(item: str, price_key: str, hourly: bool = True) -> Callable[[dict, dict], list[Line]]:
    def line(r: dict, p: dict) -> list[Line]:
        monthly = p[price_key] * (p["hours_per_month"] if hourly else 1)
        return [Line(r["name"], r["type"], item, 1, monthly)]

    return line


def _eks_cluster(r: dict, p: dict) -> list[Line]:
    """Standard support, or the extended-support rate once the version is past it."""
    from infra.config import EKS_STANDARD_SUPPORT_ENDS

    version = str(_get(r["inputs"], "version", ""))
    ends = EKS_STANDARD_SUPPORT_ENDS.get(version)
    extended = ends is None or p["today"] > ends  # unknown here = older than the table
    key = "eks_extended_support_hourly" if extended else "eks_cluster_hourly"
    item = f"EKS control plane {version}" + (" (extended support)" if extended else "")
    return [Line(r["name"], r["type"], item, 1, p[key] * p["hours_per_month"])]


PRICED: dict[str, Callable[[dict, dict], list[Line]]] = {
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache,
    "aws:elasticache/cluster:Cluster": _elasticache,
    "aws:ec2/natGateway:NatGateway": _flat("NAT gateway (+ per-GB)", "nat_gateway_hourly"),
    "aws:ec2/eip:Eip": _flat("public IPv4 address", "public_ipv4_hourly"),
    "aws:lb/loadBalancer:LoadBalancer": _flat("load balancer (+ LCUs)", "load_balancer_hourly"),
    "aws:alb/loadBalancer:LoadBalancer": _flat("load balancer (+ LCUs)", "load_balancer_hourly"),
    "aws:kms/key:Key": _flat("KMS key", "kms_key_month", hourly=False),
    "aws:secretsmanager/secret:Secret": _flat("secret", "secret_month", hourly=False),
}


def estimate(
    inventory: list[dict],
    prices: dict | None = None,
    region: str | None = None,
    today: date | None = None,
) -> Estimate:
    """On-demand cost of the fixed-price resources in ``inventory``, in the stack's region.

    Args:
        region: default: the region of the inventory's AWS provider.
        today: decides whether the EKS version is past standard support (default: today).

    Raises:
        UserError: no prices for the region, or a class or node type without a price.
    """
    region = region or region_of(inventory)
    prices = {
        **regional(prices or load_prices(), region),
        "today": today or datetime.now(UTC).date(),
    }
    result = Estimate(prices_date=str(prices["date"]), region=region)
    for resource in inventory:
        kind = resource["type"]
        if kind in PRICED:
            lines = PRICED[kind]({**resource, "inputs": resource.get("inputs") or {}}, prices)
            result.lines += [
                Line(
                    ln.resource,
                    ln.type,
                    ln.item,
                    ln.quantity,
                    round(ln.monthly_usd, 2),
                    prices["hours_per_month"],
                )
                for ln in lines
            ]
        elif kind in USAGE_PRICED:
            result.usage_priced.append((resource["name"], USAGE_PRICED[kind]))
    return result


def to_markdown(est: Estimate, stack: str) -> str:
    """The estimate as a Markdown table, with its assumptions stated."""
    rows = [
        f"# Cost estimate: {stack}",
        "",
        f"On-demand {est.region} prices from `scripts/prices.yaml` dated {est.prices_date};"
        " 730 hours a month; fixed-price resources only.",
        "",
        "| resource | type | item | quantity | USD / hour | USD / month |",
        "|---|---|---|---:|---:|---:|",
    ]
    rows += [
        f"| {ln.resource} | `{ln.type}` | {ln.item} | {ln.quantity:g} | {ln.hourly_usd:,.4f} "
        f"| {ln.monthly_usd:,.2f} |"
        for ln in est.lines
    ]
    rows += [f"| **total** | | | | **{est.hourly_total:,.4f}** | **{est.total:,.2f}** |", ""]
    if est.usage_priced:
        rows += ["Billed by usage, not included above:", ""]
        rows += [f"- {name}: {what}" for name, what in est.usage_priced]
        rows.append("")
    rows.append(
        "Not included: data transfer, NAT/LB per-GB and LCU charges, and anything Kubernetes"
        " creates outside Pulumi (e.g. load balancers of `type: LoadBalancer` Services)."
    )
    return "\n".join(rows) + "\n"
