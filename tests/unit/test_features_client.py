"""The feature server client: a dropped connection is retried once, within the time budget.

A fake server on loopback plays each connection from a script: ``close`` reads the request and
hangs up without answering (what an exiting ``feast serve`` worker does), ``hang`` never
answers, ``answer`` replies 200, ``slow-close`` waits 0.4 s, then hangs up.
"""

import json
import socket
import threading
import time

import httpx
import pytest

from ml.features.client import FeatureServerClient

ANSWER = json.dumps({"metadata": {"feature_names": ["customer_id"]}, "results": []}).encode()


class FakeServer:
    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for action in self.script:
            conn, _ = self.sock.accept()
            self.connections += 1
            conn.recv(65536)
            if action == "answer":
                head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(ANSWER)}\r\n\r\n"
                conn.sendall(head.encode() + ANSWER)
                conn.recv(65536)  # keep-alive: wait for the client to go
            elif action == "hang":
                time.sleep(2)
            elif action == "slow-close":
                time.sleep(0.4)
            conn.close()


def test_a_dropped_connection_is_retried_once():
    server = FakeServer(["close", "answer"])
    with FeatureServerClient(server.url, budget_s=2) as client:
        assert client.online_features(["v:f"], [1])["results"] == []
    assert server.connections == 2 and client.dropped == 1


def test_a_second_drop_is_not_retried_again():
    server = FakeServer(["close", "close", "answer"])
    with FeatureServerClient(server.url, budget_s=2) as client, pytest.raises(httpx.HTTPError):
        client.online_features(["v:f"], [1])
    assert server.connections == 2


def test_no_retry_once_the_budget_is_spent():
    server = FakeServer(["slow-close", "answer"])
    with FeatureServerClient(server.url, budget_s=0.4) as client, pytest.raises(httpx.HTTPError):
        client.online_features(["v:f"], [1])
    assert server.connections == 1


def test_a_silent_server_times_out_within_the_budget_without_retry():
    server = FakeServer(["hang", "answer"])
    started = time.monotonic()
    with (
        FeatureServerClient(server.url, budget_s=0.3) as client,
        pytest.raises(httpx.TimeoutException),
    ):
        client.online_features(["v:f"], [1])
    assert time.monotonic() - started < 1.0 and server.connections == 1
