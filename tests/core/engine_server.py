"""Test support for the ``openai`` engine: a real ``transformers serve`` on 127.0.0.1 and a small
controllable proxy in front of it (forward, refuse connections, answer slowly, redirect).

Not a test module itself (it defines no tests).
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_transformers_serve(model_dir: Path, log: Path, timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    """``transformers serve MODEL_DIR`` (float32, CPU, one torch thread) on a free port, once it answers."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    handle = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir),
                             "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"],
                            stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"transformers serve did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


class Proxy:
    """Forwards to ``upstream``; ``mode`` switches behaviour: ``forward``, ``slow`` (waits ``delay``
    seconds first), ``redirect`` (307 to ``redirect_to``). ``die_after``: after that many forwarded
    completions the listening socket closes (connections are refused), as when a server is killed.
    ``revive()`` listens again on the same port."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self.delay = 0.0
        self.redirect_to = ""
        self.die_after: int | None = None
        self.completions = 0
        self.headers: list[dict[str, str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: http.server.ThreadingHTTPServer | None = None
        self.revive()

    def revive(self) -> None:
        self.close()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

            def _relay(self, method: str) -> None:
                proxy.headers.append(dict(self.headers))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", proxy.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.mode == "slow":
                    time.sleep(proxy.delay)
                answer = httpx.request(method, proxy.upstream + self.path, content=body or None,
                                       headers={"Content-Type": "application/json"}, timeout=300)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)
                if self.path.endswith("/completions"):
                    proxy.completions += 1
                    if proxy.die_after is not None and proxy.completions >= proxy.die_after:
                        proxy.die_after = None
                        threading.Thread(target=proxy.close, daemon=True).start()

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
