"""A throwaway ``redis-server`` for tests and benchmarks: loopback, a free port, no persistence.

Usage::

    server = RedisServer.start()        # raises RedisUnavailable (with the reason) if it can't
    server.url                          # redis://127.0.0.1:PORT/0
    server.kill(); server.restart()     # the same port again (state lost, as after a crash)
    RedisServer.start(password="pw")    # clients must authenticate (redis://:pw@...)
    server.stop()

``redis_server_binary()`` finds the binary (``$VENUEGUARD_REDIS_SERVER`` or ``redis-server`` on
the PATH, Debian's package); tests skip with its reason when there is none.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

__all__ = ["RedisServer", "RedisUnavailable", "free_port", "redis_server_binary"]


class RedisUnavailable(RuntimeError):
    """No redis-server binary, or it did not start; the message says which."""


def redis_server_binary() -> str:
    path = os.environ.get("VENUEGUARD_REDIS_SERVER") or shutil.which("redis-server")
    if not path:
        raise RedisUnavailable("redis-server not found (Debian: apt-get install redis-server; "
                               "or set VENUEGUARD_REDIS_SERVER)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    binary: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def start(cls, port: int | None = None, timeout_s: float = 10.0, *,
              password: str | None = None) -> RedisServer:
        server = cls(port or free_port(), redis_server_binary(), password=password)
        server.restart(timeout_s)
        return server

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start (again) on the same port, empty."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
             "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RedisUnavailable(f"redis-server exited: {err.strip()[:300]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RedisUnavailable(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash: clients see their connections drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
