"""The AWS target: VPC, EKS with IRSA, RDS Postgres, ElastiCache, S3, ECR, per-workload IAM.

Nothing is public except the NAT gateways' addresses and the EKS API endpoint. Data services
sit in private subnets, reachable only from the cluster's security group; everything is
encrypted at rest with one customer-managed KMS key and in transit with TLS. aws-dev and
aws-prod run this same code; they differ only in configuration.
"""

from __future__ import annotations

import ipaddress
import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import security
from components.types import BUCKET_ACCESS, BUCKETS, ObjectStore, service_account_name
from contract.objectstore import AUDIT_BUCKET
from infra.config import StackConfig
from infra.platforms import base
from infra.platforms.github_ci import GithubCi, GithubCiArgs

DB_NAME = DB_USER = "mlops"
STORAGE_CLASS = "gp3"
_S3_ACTIONS = {
    "r": ["s3:GetObject"],
    "rw": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
}


# EKS add-on settings. The VPC CNI enforces NetworkPolicy only when told to (its node agent,
# v1.14+); without it every policy of the platform is silently ignored on EKS.
ADDON_CONFIGURATION = {"vpc-cni": json.dumps({"enableNetworkPolicy": "true"})}


# The retention periods CloudWatch Logs accepts.
_LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)


def log_retention_days(days: int) -> int:
    """The shortest retention CloudWatch accepts that keeps at least ``days`` days."""
    return next((d for d in _LOG_RETENTION_DAYS if d >= days), _LOG_RETENTION_DAYS[-1])


def ebs_kms_statements(key_arn: pulumi.Input[str]) -> list[dict]:
    """What the EBS CSI driver needs on a customer-managed key to create encrypted volumes."""
    return [
        {
            "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": [key_arn],
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {
            "Effect": "Allow",
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            ],
            "Resource": [key_arn],
        },
    ]


def _policy(statements: list[dict]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def _assume(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


class AwsPlatform(pulumi.ComponentResource):
    """All AWS resources of a stack, and the Kubernetes provider for its EKS cluster."""

    platform: base.Platform

    def __init__(
        self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:AwsPlatform", name, None, opts)
        stack = pulumi.get_stack()
        self.cfg, self.prefix = cfg, f"mlops-{stack}"
        # Tags are applied once, by the provider, to every resource that supports them.
        provider = aws.Provider(
            f"{name}-provider",
            region=cfg.region,
            default_tags={"tags": cfg.tags(stack)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.stateful = pulumi.ResourceOptions.merge(
            self.child, pulumi.ResourceOptions(protect=cfg.protect)
        )
        self.key = aws.kms.Key(
            f"{name}-kms",
            description=f"{self.prefix}: EKS secrets, RDS, ElastiCache, S3, ECR",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=self.stateful,
        )
        private, public = self._network(name)
        cluster, node_group, oidc = self._eks(name, private, public)
        client_sg = cluster.vpc_config.cluster_security_group_id
        db_url = self._rds(name, private, client_sg)
        redis_host, token = self._elasticache(name, private, client_sg)
        buckets = self._buckets(name)
        repos = self._ecr(name)
        roles = self._workload_roles(name, oidc, buckets)
        ci_outputs = self._github_ci(name)

        k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self._kubeconfig(cluster),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
        )
        kube = pulumi.ResourceOptions(parent=self, providers={"kubernetes": k8s_provider})
        self._storage_class(name, kube)
        egress = [
            security.allow_to(
                [{"ipBlock": {"cidr": cfg.vpc_cidr}}], security.tcp_ports(5432, 6379)
            ),
            # S3 (through the gateway endpoint, still public addresses) and STS for IRSA
            security.allow_to([{"ipBlock": {"cidr": "0.0.0.0/0"}}], security.tcp_ports(443)),
        ]
        ns = base.app_namespace(name, cfg.namespace, egress, kube)
        redis_url = pulumi.Output.concat("rediss://:", token, "@", redis_host, ":6379/0")
        refs = base.connection_secrets(
            name, ns.metadata["name"], {"database": db_url, "redis": redis_url}, kube
        )
        annotations = {w: {"eks.amazonaws.com/role-arn": role.arn} for w, role in roles.items()}
        self.platform = base.Platform(
            provider=k8s_provider,
            cluster=base.cluster(cfg.namespace, ns, STORAGE_CLASS, cfg.ingress_class, annotations),
            backends=base.backends(
                refs,
                db_url,
                redis_url,
                pulumi.Output.concat(redis_host, ":6379,ssl=true,password=", token),
                object_store=ObjectStore(
                    endpoint_url=None,
                    region=str(cfg.region),
                    buckets={role: b.bucket for role, b in buckets.items()},
                ),
                egress_rules=tuple(egress),
            ),
            outputs={
                "clusterName": cluster.name,
                "kubeconfig": pulumi.Output.secret(self._kubeconfig(cluster)),
                "ecrRepositories": {k: r.repository_url for k, r in repos.items()},
                "buckets": {k: b.bucket for k, b in buckets.items()},
                **ci_outputs,
            },
        )
        self.register_outputs({"clusterName": cluster.name})

    def _github_ci(self, name: str) -> dict[str, pulumi.Output[str]]:
        """The GitHub OIDC deploy and preview roles (docs/cicd.md), when a repository is set."""
        cfg = self.cfg
        if not cfg.github_repository:
            return {}
        ci = GithubCi(
            f"{name}-github",
            GithubCiArgs(
                cfg.github_repository, list(cfg.github_environments), cfg.github_oidc_provider_arn
            ),
            pulumi.ResourceOptions(parent=self, providers={"aws": self.child.provider}),
        )
        return {
            "githubDeployRoleArn": ci.deploy_role_arn,
            "githubPreviewRoleArn": ci.preview_role_arn,
        }

    # -- network -----------------------------------------------------------------------------

    def _network(self, name: str) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.Subnet]]:
        """A VPC with a public and a private /20 per AZ, one NAT gateway per AZ (no SPOF)."""
        cfg, child = self.cfg, self.child
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cfg.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            opts=child,
        )
        self.vpc = vpc
        zones = aws.get_availability_zones_output(
            state="available",
            opts=pulumi.InvokeOutputOptions(parent=self, provider=child.provider),
        )
        cidrs = list(ipaddress.ip_network(cfg.vpc_cidr).subnets(new_prefix=20))
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            opts=child,
        )
        private, public, private_rts = [], [], []
        for i in range(cfg.availability_zones):
            az = zones.names[i]
            pub = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=str(cidrs[8 + i]),
                availability_zone=az,
                tags={"kubernetes.io/role/elb": "1", "Name": f"{self.prefix}-public-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta", subnet_id=pub.id, route_table_id=public_rt.id, opts=child
            )
            eip = aws.ec2.Eip(f"{name}-nat-{i}-eip", domain="vpc", opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=pub.id, opts=child
            )
            priv = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=str(cidrs[i]),
                availability_zone=az,
                tags={
                    "kubernetes.io/role/internal-elb": "1",
                    "Name": f"{self.prefix}-private-{i}",
                },
                opts=child,
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}-rt",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta", subnet_id=priv.id, route_table_id=rt.id, opts=child
            )
            private.append(priv)
            public.append(pub)
            private_rts.append(rt)
        # S3 traffic from the private subnets stays on the AWS network.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{cfg.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            opts=child,
        )
        return private, public

    # -- EKS ---------------------------------------------------------------------------------

    def _role(self, name: str, service: str, policies: list[str]) -> aws.iam.Role:
        role = aws.iam.Role(name, assume_role_policy=_assume(service), opts=self.child)
        for i, arn in enumerate(policies):
            aws.iam.RolePolicyAttachment(
                f"{name}-{i}", role=role.name, policy_arn=arn, opts=self.child
            )
        return role

    def _eks(
        self, name: str, private: list[aws.ec2.Subnet], public: list[aws.ec2.Subnet]
    ) -> tuple[aws.eks.Cluster, aws.eks.NodeGroup, aws.iam.OpenIdConnectProvider]:
        """EKS with private worker nodes, envelope-encrypted Secrets and an IRSA OIDC provider."""
        cfg, child = self.cfg, self.child
        managed = "arn:aws:iam::aws:policy/"
        cluster_role = self._role(
            f"{name}-eks-role", "eks.amazonaws.com", [f"{managed}AmazonEKSClusterPolicy"]
        )
        # EKS creates this group itself when it does not exist, with no expiry, and keeps it
        # after the cluster is deleted; owning it gives it a retention and lets destroy remove it.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-eks-logs",
            name=f"/aws/eks/{self.prefix}/cluster",
            # CloudWatch encrypts it with its own key: ours has no key policy for logs.<region>
            retention_in_days=log_retention_days(cfg.retention_days),
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=f"{self.prefix}",
            version=cfg.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": [s.id for s in private + public],
                "endpoint_private_access": True,
                # EKS defaults the public endpoint to 0.0.0.0/0; only the configured networks
                "endpoint_public_access": bool(cfg.api_allowed_cidrs),
                **(
                    {"public_access_cidrs": list(cfg.api_allowed_cidrs)}
                    if cfg.api_allowed_cidrs
                    else {}
                ),
            },
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": self.key.arn}},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            deletion_protection=cfg.deletion_protection,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[logs])),
        )
        node_role = self._role(
            f"{name}-node-role",
            "ec2.amazonaws.com",
            [
                f"{managed}AmazonEKSWorkerNodePolicy",
                f"{managed}AmazonEKS_CNI_Policy",
                f"{managed}AmazonEC2ContainerRegistryReadOnly",
            ],
        )
        nodes = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=[s.id for s in private],
            instance_types=cfg.node_instance_types,
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config={
                "min_size": cfg.node_min_size,
                "desired_size": cfg.node_desired_size,
                "max_size": cfg.node_max_size,
            },
            update_config={"max_unavailable": 1},
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
            ),
        )
        issuer = cluster.identities[0].oidcs[0].issuer
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        ebs_role = self._irsa_role(
            f"{name}-ebs-csi-role", oidc, "kube-system", "ebs-csi-controller-sa"
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy",
            role=ebs_role.name,
            policy_arn=f"{managed}service-role/AmazonEBSCSIDriverPolicy",
            opts=child,
        )
        # The managed policy has no KMS actions; volumes encrypted with our key need these
        # (EKS user guide, "ebs-csi": "If you use a custom KMS key").
        aws.iam.RolePolicy(
            f"{name}-ebs-csi-kms",
            role=ebs_role.name,
            policy=_policy(ebs_kms_statements(self.key.arn)),
            opts=child,
        )
        for addon in ("vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"):
            aws.eks.Addon(
                f"{name}-addon-{addon}",
                cluster_name=cluster.name,
                addon_name=addon,
                service_account_role_arn=ebs_role.arn if addon == "aws-ebs-csi-driver" else None,
                configuration_values=ADDON_CONFIGURATION.get(addon),
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[nodes])
                ),
            )
        return cluster, nodes, oidc

    def _irsa_role(
        self,
        name: str,
        oidc: aws.iam.OpenIdConnectProvider,
        namespace: str,
        service_account: str,
    ) -> aws.iam.Role:
        """A role only the given ServiceAccount (via the cluster's OIDC issuer) can assume."""
        subject = f"system:serviceaccount:{namespace}:{service_account}"

        def trust(args: list[str]) -> str:
            arn, url = args
            host = url.removeprefix("https://")
            condition = {f"{host}:sub": subject, f"{host}:aud": "sts.amazonaws.com"}
            statement = {
                "Effect": "Allow",
                "Principal": {"Federated": arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": condition},
            }
            return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

        trust_policy = pulumi.Output.all(oidc.arn, oidc.url).apply(trust)
        return aws.iam.Role(name, assume_role_policy=trust_policy, opts=self.child)

    def _kubeconfig(self, cluster: aws.eks.Cluster) -> pulumi.Output[str]:
        """A kubeconfig that authenticates with ``aws eks get-token`` (no static credentials)."""
        region = self.cfg.region

        def build(args: list[str]) -> str:
            name, endpoint, ca = args
            user = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws",
                    "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
                }
            }
            return json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": name,
                            "cluster": {"server": endpoint, "certificate-authority-data": ca},
                        }
                    ],
                    "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                    "current-context": name,
                    "users": [{"name": name, "user": user}],
                }
            )

        return pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.data
        ).apply(build)

    def _storage_class(self, name: str, opts: pulumi.ResourceOptions) -> None:
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": self.key.arn,
                # The driver's volumes carry the stack's tags, so destroy can find the ones a
                # PVC leaves behind (scripts/leftovers.py) and the bill can attribute them.
                **{
                    f"tagSpecification_{i}": f"{key}={value}"
                    for i, (key, value) in enumerate(
                        sorted(self.cfg.tags(pulumi.get_stack()).items()), start=1
                    )
                },
            },
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain" if self.cfg.protect else "Delete",
            opts=opts,
        )

    # -- data services -----------------------------------------------------------------------

    def _client_sg(
        self, name: str, port: int, client_sg: pulumi.Input[str]
    ) -> aws.ec2.SecurityGroup:
        """A security group that admits ``port`` from the EKS cluster security group only."""
        return aws.ec2.SecurityGroup(
            name,
            vpc_id=self.vpc.id,
            description=f"{self.prefix}: port {port} from EKS only",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": port,
                    "to_port": port,
                    "security_groups": [client_sg],
                }
            ],
            opts=self.child,
        )

    def _rds(
        self, name: str, private: list[aws.ec2.Subnet], client_sg: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        cfg = self.cfg
        password = random.RandomPassword(
            f"{name}-db-password", length=32, special=False, opts=self.child
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-db-subnets", subnet_ids=[s.id for s in private], opts=self.child
        )
        db = aws.rds.Instance(
            f"{name}-postgres",
            identifier_prefix=f"{self.prefix}-",
            engine="postgres",
            engine_version="17",
            instance_class=cfg.db_instance_class,
            allocated_storage=cfg.db_allocated_storage,
            max_allocated_storage=cfg.db_allocated_storage * 4,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            db_name=DB_NAME,
            username=DB_USER,
            password=password.result,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self._client_sg(f"{name}-db-sg", 5432, client_sg).id],
            publicly_accessible=False,
            multi_az=cfg.db_multi_az,
            deletion_protection=cfg.deletion_protection,
            backup_retention_period=min(cfg.retention_days, 35),
            copy_tags_to_snapshot=True,
            # Not tied to `protect`: destroy turns protection off, never the final snapshot.
            skip_final_snapshot=not cfg.final_snapshots,
            final_snapshot_identifier=self._final_snapshot_name(f"{name}-db"),
            auto_minor_version_upgrade=True,
            apply_immediately=not cfg.protect,
            opts=self.stateful,
        )
        return pulumi.Output.concat(
            f"postgresql+psycopg://{DB_USER}:",
            password.result,
            "@",
            db.address,
            f":5432/{DB_NAME}?sslmode=require",
        )

    def _elasticache(
        self, name: str, private: list[aws.ec2.Subnet], client_sg: pulumi.Input[str]
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """Redis with TLS in transit, encryption at rest and an AUTH token; Multi-AZ in prod."""
        cfg = self.cfg
        token = random.RandomPassword(
            f"{name}-redis-token", length=48, special=False, opts=self.child
        )
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-redis-subnets",
            name=f"{self.prefix}-redis",
            subnet_ids=[s.id for s in private],
            opts=self.child,
        )
        group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description=f"{self.prefix} Feast online store",
            engine="redis",
            engine_version="7.1",
            node_type=cfg.cache_node_type,
            num_cache_clusters=cfg.cache_nodes,
            port=6379,
            automatic_failover_enabled=cfg.cache_nodes > 1,
            multi_az_enabled=cfg.db_multi_az,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.arn,
            auth_token=token.result,
            subnet_group_name=subnets.name,
            security_group_ids=[self._client_sg(f"{name}-redis-sg", 6379, client_sg).id],
            snapshot_retention_limit=min(cfg.retention_days, 35),
            final_snapshot_identifier=self._final_snapshot_name(f"{name}-redis"),
            apply_immediately=not cfg.protect,
            opts=self.stateful,
        )
        return group.primary_endpoint_address, token.result

    def _final_snapshot_name(self, name: str) -> pulumi.Output[str] | None:
        """A unique name for the snapshot AWS takes when the store is deleted (None: none).

        Snapshot names are unique per account and region, so a fixed name would block the
        second delete (a replacement, or a stack created again under the same name).
        """
        if not self.cfg.final_snapshots:
            return None
        suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=self.child)
        return pulumi.Output.concat(self.prefix, "-final-", suffix.hex)

    def _buckets(self, name: str) -> dict[str, aws.s3.Bucket]:
        """Versioned, KMS-encrypted, private, TLS-only buckets; old versions expire."""
        cfg, child = self.cfg, self.child
        buckets = {}
        for role in BUCKETS:
            bucket = aws.s3.Bucket(
                f"{name}-{role}",
                bucket_prefix=f"{self.prefix}-{role}-",
                force_destroy=not cfg.protect,
                # Object Lock can only be switched on when the bucket is created.
                object_lock_enabled=role == AUDIT_BUCKET or None,
                opts=self.stateful,
            )
            versioning = aws.s3.BucketVersioning(
                f"{name}-{role}-versioning",
                bucket=bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=child,
            )
            if role == AUDIT_BUCKET:
                self._audit_lock(f"{name}-{role}", bucket, versioning)
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-{role}-encryption",
                bucket=bucket.id,
                rules=[
                    {
                        "apply_server_side_encryption_by_default": {
                            "sse_algorithm": "aws:kms",
                            "kms_master_key_id": self.key.arn,
                        },
                        "bucket_key_enabled": True,
                    }
                ],
                opts=child,
            )
            block = aws.s3.BucketPublicAccessBlock(
                f"{name}-{role}-public-access-block",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )
            aws.s3.BucketOwnershipControls(
                f"{name}-{role}-ownership",
                bucket=bucket.id,
                rule={"object_ownership": "BucketOwnerEnforced"},
                opts=child,
            )
            aws.s3.BucketPolicy(
                f"{name}-{role}-tls-only",
                bucket=bucket.id,
                policy=_policy(
                    [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                ),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[block])
                ),
            )
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-{role}-lifecycle",
                bucket=bucket.id,
                rules=[
                    {
                        "id": "expire-noncurrent",
                        "status": "Enabled",
                        "filter": {},
                        "noncurrent_version_expiration": {"noncurrent_days": cfg.retention_days},
                        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                    }
                ],
                opts=child,
            )
            buckets[role] = bucket
        return buckets

    def _audit_lock(
        self, name: str, bucket: aws.s3.Bucket, versioning: aws.s3.BucketVersioning
    ) -> aws.s3.BucketObjectLockConfiguration:
        """Write-once retention for every object version in the bucket of the audit log.

        Each append uploads the whole log as a new version; locked versions cannot be deleted or
        overwritten until they age out (GOVERNANCE: except by a principal allowed to bypass it;
        COMPLIANCE: by nobody, root included), so an edited log in the bucket leaves the original
        beside it, and ``mlops governance verify-log`` finds the edit in the current one.
        """
        cfg = self.cfg
        return aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=bucket.id,
            rule={"default_retention": {"mode": cfg.audit_lock_mode, "days": cfg.audit_lock_days}},
            opts=pulumi.ResourceOptions.merge(
                self.child, pulumi.ResourceOptions(depends_on=[versioning])
            ),
        )

    def _ecr(self, name: str) -> dict[str, aws.ecr.Repository]:
        """Immutable-tag, scan-on-push, KMS-encrypted repositories for the two images."""
        repos = {}
        for image in ("ml", "serving"):
            repo = aws.ecr.Repository(
                f"{name}-ecr-{image}",
                name=f"{self.prefix}-{image}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
                force_delete=not self.cfg.protect,
                opts=self.stateful,
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-ecr-{image}-lifecycle",
                repository=repo.name,
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": "keep the 30 most recent images",
                                "selection": {
                                    "tagStatus": "any",
                                    "countType": "imageCountMoreThan",
                                    "countNumber": 30,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),
                opts=self.child,
            )
            repos[image] = repo
        return repos

    def _workload_roles(
        self,
        name: str,
        oidc: aws.iam.OpenIdConnectProvider,
        buckets: dict[str, aws.s3.Bucket],
    ) -> dict[str, aws.iam.Role]:
        """One IRSA role per workload, allowed exactly its buckets (see BUCKET_ACCESS)."""
        roles = {}
        for workload, access in BUCKET_ACCESS.items():
            role = self._irsa_role(
                f"{name}-{workload}-role",
                oidc,
                self.cfg.namespace,
                service_account_name(workload),
            )
            statements = [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [buckets[b].arn for b in access],
                },
                *(
                    {
                        "Effect": "Allow",
                        "Action": _S3_ACTIONS[mode],
                        "Resource": [pulumi.Output.concat(buckets[b].arn, "/*")],
                    }
                    for b, mode in access.items()
                ),
                {
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": [self.key.arn],
                },
            ]
            aws.iam.RolePolicy(
                f"{name}-{workload}-s3", role=role.id, policy=_policy(statements), opts=self.child
            )
            roles[workload] = role
        return roles
