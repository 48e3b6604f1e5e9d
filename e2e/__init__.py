"""End-to-end harness: the rendered local stack run in podman containers (dev tooling)."""
