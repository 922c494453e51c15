"""Helpers of the reliability suite: a `vaefrag serve` subprocess on 127.0.0.1 and a client that
calls Dash callbacks the way the browser does (POST /_dash-update-component).

Everything stays on 127.0.0.1, every wait is bounded, and the server is stopped by its PID.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m vaefrag serve` on a free port; ``log`` collects its stderr/stdout."""

    def __init__(self, root, cache, *, workers: int = 1, extra=(), env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "vaefrag", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--ensembles", str(root), "--cache-dir", str(cache), "--workers", str(workers), *extra]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited at start:\n" + self.log)
            try:
                if self.get("/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError("server did not start in 90 s:\n" + self.log)
        self.deps = json.loads(self.get("/_dash-dependencies")[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def request(self, method: str, path: str, body: bytes | None = None, headers=None, timeout=60):
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def get(self, path: str, headers=None):
        status, body, _ = self.request("GET", path, headers=headers)
        return status, body

    def post_json(self, path: str, payload, headers=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, data, _ = self.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        return status, data

    # ------------------------------------------------------------------------------ callbacks
    def callback(self, first_input: str, *, output_has: str | None = None) -> dict:
        """The dependency whose first input is ``first_input`` ("id.prop") (and whose output names
        ``output_has``)."""
        for dep in self.deps:
            ins = dep["inputs"]
            if ins and f"{ins[0]['id']}.{ins[0]['property']}" == first_input and (
                    output_has is None or output_has in dep["output"]):
                return dep
        raise KeyError(first_input)

    def call(self, dep: dict, values: list, states: list | None = None, *, raw=None):
        """POST one callback request: ``values`` for its inputs, ``states`` for its states (None each by
        default). Returns (status, parsed JSON or bytes)."""
        states = [None] * len(dep["state"]) if states is None else states
        payload = raw if raw is not None else {
            "output": dep["output"], "outputs": outputs_of(dep),
            "inputs": [{**i, "value": v} for i, v in zip(dep["inputs"], values)],
            "state": [{**s, "value": v} for s, v in zip(dep["state"], states)],
            "changedPropIds": [f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"]}
        status, body = self.post_json("/_dash-update-component", payload)
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its child processes (job workers)."""
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
        except psutil.Error:
            return 0

    def children(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def outputs_of(dep: dict):
    """The ``outputs`` field of a callback request for dependency ``dep``."""
    out = dep["output"]
    if out.startswith("..") and out.endswith(".."):
        parts = out[2:-2].split("...")
    else:
        parts = [out]
    specs = []
    for p in parts:
        ident, _, prop = p.rpartition(".")
        specs.append({"id": ident, "property": prop.split("@")[0]})
    return specs if out.startswith("..") else specs[0]


def response_value(body, component: str, prop: str):
    """The value the response sets on ``component.prop`` (KeyError when it does not set it)."""
    return body["response"][component][prop]


def wait_for(fn, timeout: float, step: float = 0.3):
    """Call ``fn`` until it returns a truthy value or ``timeout`` seconds pass; returns the value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None
