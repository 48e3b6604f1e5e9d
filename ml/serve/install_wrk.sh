#!/usr/bin/env bash
# Install the `wrk` HTTP load generator used by `mlops bench serving` (Debian package `wrk`).
# Idempotent; needs root or sudo. The benchmark falls back to a Python load generator without it.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  echo "wrk already installed: $(command -v wrk)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
echo "installed: $(command -v wrk)"
