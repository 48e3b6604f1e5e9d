#!/usr/bin/env bash
# Debian packages the e2e harness (`python -m e2e`) needs: podman with runc, CNI plugins with
# dnsname (cluster DNS names between containers) and debootstrap (the stand-in base images,
# since base images cannot be pulled). Idempotent and quiet; run as root (CI) or via sudo.
set -euo pipefail

# Debian package -> a file that proves it is usable (so a second run is a no-op).
PACKAGES=(
  "podman:/usr/bin/podman"
  "runc:/usr/sbin/runc"
  "catatonit:/usr/libexec/podman/catatonit"
  "containernetworking-plugins:/usr/lib/cni/bridge"
  "golang-github-containernetworking-plugin-dnsname:/usr/lib/cni/dnsname"
  "debootstrap:/usr/sbin/debootstrap"
)

log() { echo "e2e_install: $*" >&2; }

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

missing=()
for entry in "${PACKAGES[@]}"; do
  pkg="${entry%%:*}" probe="${entry#*:}"
  if [[ ! -e "$probe" ]] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
    | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "all packages present"
  exit 0
fi
command -v apt-get >/dev/null || { log "error: apt-get not found; install ${missing[*]}"; exit 1; }
log "installing ${missing[*]}"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
