"""`vidm-rt serve` as a child process, for the serving tests and bench/serve_load.py: free ports
on 127.0.0.1, ready when Triton reports the model ready, stopped with SIGTERM (what a container
runtime sends), and a check that nothing it started outlives it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import MODEL, STATS_MODEL

READY_TIMEOUT_S = 300  # a model load on a busy CI machine; a healthy start takes seconds
ORPHAN_GRACE_S = 30


def free_ports(n: int) -> list[int]:
    """n distinct ports the kernel reports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on the port: SO_REUSEADDR, as servers set it, so that
    the closed connections' TIME_WAIT entries do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@dataclass
class Stopped:
    """How a server ended: exit status, its processes still alive, its ports still taken."""

    returncode: int
    orphans: list[int]
    busy_ports: list[int]


@dataclass
class Server:
    """One `vidm-rt serve --engine ENGINE ARGS...` with its output in `log`."""

    engine: Path
    log: Path
    args: tuple[str, ...] = ()
    ports: list[int] = field(default_factory=lambda: free_ports(3))
    process: subprocess.Popen | None = None
    stopped: Stopped | None = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.ports[0]}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports[1]}"

    @property
    def metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports[2]}/metrics"

    def start(self) -> Server:
        """Start the server and wait until its model is ready (RuntimeError with the log if it
        exits or takes longer than READY_TIMEOUT_S)."""
        grpc, http, metrics = self.ports
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vidm_rt.cli", "serve", "--engine", str(self.engine),
             "--grpc-port", str(grpc), "--http-port", str(http),
             "--metrics-port", str(metrics), *self.args],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(http_ok(f"{self.http}/v2/models/{m}/ready") for m in (MODEL, STATS_MODEL)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"vidm-rt serve did not get ready:\n{self.log.read_text()}")
            time.sleep(0.2)
        return self

    def stop(self) -> Stopped:
        """SIGTERM, then what is left: the exit status, processes of the server still alive,
        ports still taken. Idempotent."""
        if self.stopped is None and self.process is not None:
            below = descendants(self.process.pid)
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            # Helpers that outlive the server by a moment (multiprocessing's resource tracker
            # finishes when its pipe closes) are not orphans; what is still alive later is.
            deadline = time.monotonic() + ORPHAN_GRACE_S
            while any(alive(pid) for pid in below) and time.monotonic() < deadline:
                time.sleep(0.1)
            orphans = [pid for pid in below if alive(pid)]
            for pid in orphans:  # never leave them running, even when the test fails
                os.kill(pid, signal.SIGKILL)
            self.stopped = Stopped(code, orphans, [p for p in self.ports if not port_is_free(p)])
        return self.stopped
