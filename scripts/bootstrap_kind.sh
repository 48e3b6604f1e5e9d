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
# Kubernetes 1.32 (what the manifests are validated against), pinned by digest as the kind
# v0.27.0 release notes publish it.
NODE_IMAGE="kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f"
REG_NAME="${MLOPS_REGISTRY_NAME:-kind-registry}"
REG_PORT="${MLOPS_REGISTRY_PORT:-5001}"
REGISTRY_IMAGE="registry:2.8.3"

die() { echo "bootstrap_kind: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found — $2"; }

check_tools() {
  need docker "install Docker Engine or Docker Desktop (https://docs.docker.com/engine/install/)"
  need kind "install kind v0.27+ (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
  need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
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
  # containerd reads per-registry config from /etc/containerd/certs.d (kind local-registry guide)
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
  - |-
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
nodes:
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          kubeletExtraArgs:
            node-labels: "ingress-ready=true"
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

next_steps() {
  cat <<EOF

Cluster kind-$CLUSTER is ready; images push to localhost:$REG_PORT.
Next steps (from the repository root):
  1. Build the ML and serving images (infra/images/), push them to localhost:$REG_PORT, and
     set their digests as mlops:mlImage / mlops:servingImage in stacks/Pulumi.local.yaml.
  2. pulumi login --local            # or your Pulumi Cloud / S3 backend
  3. pulumi stack select local --create
     pulumi config set mlops:kubeContext kind-$CLUSTER -s local
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
