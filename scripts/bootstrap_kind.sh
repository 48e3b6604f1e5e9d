#!/usr/bin/env bash
# Create a local Kubernetes cluster for the `local` stack: kind with a pinned node image and a
# local container registry on localhost:5001 (kind's documented "local registry" setup).
#
#   scripts/bootstrap_kind.sh          # create (idempotent), then print the next steps
#   scripts/bootstrap_kind.sh delete   # delete the cluster and the registry
#
# Needs: docker (or podman via KIND_EXPERIMENTAL_PROVIDER), kind, kubectl. Override the names
# with MLOPS_KIND_CLUSTER / MLOPS_REGISTRY_NAME / MLOPS_REGISTRY_PORT.
set -euo pipefail

CLUSTER="${MLOPS_KIND_CLUSTER:-mlops}"
# kind v0.32.0's default node image (pkg/apis/config/defaults/image.go at the tag), Kubernetes
# 1.36 like the AWS stacks. Why not older: the kindnetd of kind <= v0.27 vendors
# kube-network-policies < v0.8.0, whose NetworkPolicy implementation drops kubelet probes in a
# namespace with default-deny egress (kind #3875, kube-network-policies #150), and every
# namespace of this platform denies egress by default; v0.32.0 vendors a v1.0.1 pre-release.
KIND_VERSION="v0.32.0"
NODE_IMAGE="kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
REG_NAME="${MLOPS_REGISTRY_NAME:-kind-registry}"
REG_PORT="${MLOPS_REGISTRY_PORT:-5001}"
REGISTRY_IMAGE="registry:2.8.3"
# What the local stack relies on and kind does not ship (pinned Helm charts):
# - an ingress controller for mlops:ingressClass (stacks/Pulumi.local.yaml says traefik;
#   ingress-nginx, which kind's docs used, was retired upstream in March 2026);
# - metrics-server, without which every HorizontalPodAutoscaler of the platform does nothing.
TRAEFIK_CHART_VERSION="41.3.0"  # Traefik v3.7.11
METRICS_SERVER_CHART_VERSION="3.13.1"  # metrics-server v0.8.1

die() { echo "bootstrap_kind: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found — $2"; }

check_tools() {
  need docker "install Docker Engine or Docker Desktop (https://docs.docker.com/engine/install/)"
  need kind "install kind $KIND_VERSION (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
  need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
  need helm "install helm 3 (https://helm.sh/docs/intro/install/)"
  local have
  have="$(kind version | awk '{print $2}')"
  if [ "$(printf '%s\n%s\n' "$KIND_VERSION" "$have" | sort -V | head -1)" != "$KIND_VERSION" ]; then
    die "kind $have is older than $KIND_VERSION (its node images block kubelet probes under default-deny egress) — upgrade kind"
  fi
  docker info >/dev/null 2>&1 || die "the Docker daemon is not running — start it and retry"
}

start_registry() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$REG_NAME" 2>/dev/null || true)" != "true" ]; then
    docker rm -f "$REG_NAME" >/dev/null 2>&1 || true
    docker run -d --restart=always -p "127.0.0.1:${REG_PORT}:5000" --network bridge \
      --name "$REG_NAME" "$REGISTRY_IMAGE" >/dev/null
  fi
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    echo "bootstrap_kind: cluster $CLUSTER exists"
    return
  fi
  # Node images of kind v0.27+ read per-registry config from /etc/containerd/certs.d already
  # (kind's local-registry guide), so no containerd patch is needed.
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    # kind's own node labels (kubeadm's kubeletExtraArgs changed shape in v1beta4, used for 1.36)
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - containerPort: 80
        hostPort: 8080
        listenAddress: "127.0.0.1"
EOF
}

connect_registry() {
  local dir="/etc/containerd/certs.d/localhost:${REG_PORT}" node
  for node in $(kind get nodes --name "$CLUSTER"); do
    docker exec "$node" mkdir -p "$dir"
    printf '[host."http://%s:5000"]\n' "$REG_NAME" | docker exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
  done
  if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REG_NAME")" = "null" ]; then
    docker network connect kind "$REG_NAME"
  fi
  # Documents the registry for tools that read it (KEP-1755).
  kubectl --context "kind-$CLUSTER" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:${REG_PORT}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
}

install_addons() {
  local ctx="kind-$CLUSTER"
  # Traefik on the node kind maps to the host (ingress-ready=true, container port 80 -> host
  # 127.0.0.1:8080), as the IngressClass `traefik`. Chart >= 40 reads service.spec.type (not
  # service.type); a hostPort pod cannot surge on its node, so updates replace it in place.
  helm upgrade --install traefik traefik --repo https://traefik.github.io/charts \
    --version "$TRAEFIK_CHART_VERSION" --kube-context "$ctx" \
    --namespace traefik --create-namespace --wait --timeout 10m \
    --set ingressClass.enabled=true --set ingressClass.name=traefik \
    --set ingressClass.isDefaultClass=false \
    --set providers.kubernetesIngress.enabled=true \
    --set service.spec.type=ClusterIP \
    --set ports.web.hostPort=80 \
    --set updateStrategy.rollingUpdate.maxUnavailable=1 \
    --set updateStrategy.rollingUpdate.maxSurge=0 \
    --set-string nodeSelector.ingress-ready=true \
    --set 'tolerations[0].key=node-role.kubernetes.io/control-plane' \
    --set 'tolerations[0].operator=Exists' --set 'tolerations[0].effect=NoSchedule' >/dev/null
  # kind's kubelets serve self-signed certificates: metrics-server must not verify them.
  helm upgrade --install metrics-server metrics-server \
    --repo https://kubernetes-sigs.github.io/metrics-server/ \
    --version "$METRICS_SERVER_CHART_VERSION" --kube-context "$ctx" \
    --namespace kube-system --wait --timeout 5m \
    --set 'args[0]=--kubelet-insecure-tls' >/dev/null
  echo "bootstrap_kind: traefik $TRAEFIK_CHART_VERSION and metrics-server $METRICS_SERVER_CHART_VERSION installed"
}

next_steps() {
  cat <<EOF

Cluster kind-$CLUSTER is ready; images push to localhost:$REG_PORT.
Next steps (from the repository root):
  1. pulumi login --local            # or your Pulumi Cloud / S3 backend
  2. pulumi stack select local --create
     pulumi config set mlops:kubeContext kind-$CLUSTER -s local
  3. uv run python -m scripts.build_images --stack local   # push to localhost:$REG_PORT, pin digests
  4. uv run python -m scripts.up --stack local      # or: pulumi up -s local
  5. uv run python -m scripts.document --stack local
  6. uv run python -m scripts.destroy --stack local && scripts/bootstrap_kind.sh delete
EOF
}

case "${1:-create}" in
  create)
    check_tools
    start_registry
    create_cluster
    connect_registry
    install_addons
    next_steps
    ;;
  delete)
    need kind "nothing to delete without kind"
    kind delete cluster --name "$CLUSTER"
    docker rm -f "$REG_NAME" >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 [create|delete]" >&2
    exit 2
    ;;
esac
