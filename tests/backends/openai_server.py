"""A real llama.cpp server (``llama-cpp-python[server]``) on loopback, and a small fault-injecting
proxy in front of it: the openai backend's tests and bench/bench_openai.py use both."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOOPBACK = "127.0.0.1"
SERVED_NAME = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until_ok(url: str, proc: subprocess.Popen, timeout: float, what: str) -> bool:
    """Poll ``url`` until it answers 200 (True) or ``timeout`` passes (False); a server process that
    exits meanwhile raises at once, naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.25)
    return False


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


def _die_with_parent() -> None:
    """Linux: the server gets SIGKILL when the process that started it dies (a killed test run)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class LlamaServer:
    """``python -m llama_cpp.server`` serving the embedded GGUF file on 127.0.0.1 (never another address)."""

    def __init__(self, gguf: Path, *, port: int | None = None, n_ctx: int = 2048, n_threads: int = 2,
                 log: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.gguf, self.port, self.n_ctx, self.n_threads = gguf, port or free_port(), n_ctx, n_threads
        self.log, self.extra = log, extra
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", SERVED_NAME,
             "--host", LOOPBACK, "--port", str(self.port), "--n_ctx", str(self.n_ctx),
             "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads), *self.extra],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_die_with_parent)
        if wait_until_ok(f"{self.base_url}/models", self.proc, timeout, f"llama_cpp.server (log: {self.log})"):
            return self
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer /v1/models within {timeout} s (log: {self.log})")

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


class FaultProxy:
    """A threaded HTTP proxy on loopback in front of ``upstream`` (host:port).

    ``faults`` is a list consumed one per completion request: ``("status", code, retry_after)``
    answers that status (with a ``Retry-After`` header when given) without forwarding,
    ``("delay", seconds)`` forwards after sleeping. ``served``: when set, a request for another
    model gets OpenAI's 404 ``model_not_found``. ``hits`` records (time, path, what was done).
    """

    def __init__(self, upstream_port: int, served: str | None = None) -> None:
        self.upstream_port, self.served = upstream_port, served
        self.faults: list[tuple] = []
        self.hits: list[tuple[float, str, str]] = []
        self.bodies: list[dict] = []
        """The JSON body of every POST, in arrival order (what the backend sent)."""
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (its timeout)
                    pass

            def _forward(self, method: str, body: bytes | None) -> None:
                conn = http.client.HTTPConnection(LOOPBACK, proxy.upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self._send(resp.status, data)

            def do_GET(self):  # noqa: N802
                with proxy.lock:
                    proxy.hits.append((time.monotonic(), self.path, "forward"))
                self._forward("GET", None)

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = None
                with proxy.lock:
                    if proxy.served is not None and json.loads(body).get("model") != proxy.served:
                        fault = ("404",)
                    elif proxy.faults:
                        fault = proxy.faults.pop(0)
                    proxy.hits.append((time.monotonic(), self.path, str(fault[0] if fault else "forward")))
                    proxy.bodies.append(json.loads(body))
                if fault is None:
                    return self._forward("POST", body)
                if fault[0] == "404":
                    model = json.loads(body).get("model")
                    return self._send(404, json.dumps({"error": {
                        "message": f"The model `{model}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error", "param": None, "code": "model_not_found"}}).encode())
                if fault[0] == "status":
                    _, code, after = fault
                    headers = {"Retry-After": str(after)} if after is not None else {}
                    return self._send(code, json.dumps({"error": {"message": f"injected {code}"}}).encode(),
                                      headers)
                if fault[0] == "delay":
                    time.sleep(fault[1])
                    return self._forward("POST", body)
                raise AssertionError(f"unknown fault {fault}")

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
