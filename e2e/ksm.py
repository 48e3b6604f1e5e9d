"""A stand-in for kube-state-metrics: the Job series the MlopsJobFailed alert reads.

In a cluster, kube-state-metrics (shipped by kube-prometheus-stack) exports the status of every
Job from the API server. Here the harness is the Job controller, so it exports the same series
for the Jobs it ran, on the e2e network's gateway address, for the stand-in Prometheus to scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = 9199


def exposition(namespace: str, jobs: Mapping[str, bool]) -> str:
    """``kube_job_status_{failed,succeeded}`` per Job, as kube-state-metrics names them."""
    lines = [
        "# TYPE kube_job_status_failed gauge",
        "# TYPE kube_job_status_succeeded gauge",
    ]
    for name, ok in sorted(jobs.items()):
        labels = f'namespace="{namespace}",job_name="{name}"'
        lines.append(f"kube_job_status_failed{{{labels}}} {0 if ok else 1}")
        lines.append(f"kube_job_status_succeeded{{{labels}}} {1 if ok else 0}")
    return "\n".join(lines) + "\n"


def serve(
    host: str, jobs: Callable[[], Mapping[str, bool]], namespace: str
) -> ThreadingHTTPServer:
    """Start the exporter on ``host:PORT`` in a daemon thread; ``shutdown()`` stops it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(namespace, jobs()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet
            return

    server = ThreadingHTTPServer((host, PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
