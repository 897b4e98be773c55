"""A `cbam-serve serve` child process for tests and load tools, and one HTTP request helper (stdlib only).

The server listens on 127.0.0.1 and a free port and is configured only through CBAM_* variables, as the container
and the cluster start it; it runs from the repository root, so the default model path resolves.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServerError(RuntimeError):
    """The server exited before it answered its probe, or did not answer in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of one request; an error status is returned, not raised. Connection failures raise OSError."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class LocalServer:
    """`binary serve`, started and ready (its `probe` answered 200) when the constructor returns.

    `settings` are CBAM_* variables laid over this process's environment; a value of None removes the variable (so
    `{"CBAM_API_KEY": None}` means no key even when the caller's environment has one). The server's stderr goes to a
    file, not a pipe, so a chatty server never blocks on it; `stderr()` reads it. As a context manager it kills the
    process if it still runs at the end; `stop()` is the graceful way (SIGTERM, which drains).
    """

    def __init__(self, binary: str | Path, settings: dict[str, str | None] | None = None, *, probe: str = "/healthz",
                 startup_timeout_s: float = 60.0):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.address}"
        env = {**os.environ, "CBAM_HOST": "127.0.0.1", "CBAM_PORT": str(self.port), "CBAM_LOG_LEVEL": "warning"}
        for name, value in (settings or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([str(binary), "serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        try:
            self._wait_until_ready(probe, startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_until_ready(self, probe: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise ServerError(f"cbam-serve serve exited with {self.process.returncode}: {self.stderr()[-2000:]}")
            if time.monotonic() > deadline:
                raise ServerError(f"cbam-serve serve did not answer GET {probe} within {timeout_s:.0f} s")
            try:
                if request(self.base + probe, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self) -> None:
        """Kills the process if it still runs and closes the log."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *_) -> None:
        self.close()
