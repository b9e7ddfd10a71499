"""receiverd under systemd's protocols, without systemd as PID 1.

``systemd-socket-activate`` binds the listening socket, passes it as fd 3
with LISTEN_FDS/LISTEN_FDNAMES=smtp and execs receiverd (in the same PID)
when the first connection arrives. A test-owned AF_UNIX/SOCK_DGRAM socket
stands in for NOTIFY_SOCKET and records every sd_notify datagram.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (NotifySocket, free_port, postern_binary, postern_config, tail,
                      kill_session)

SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"


class Activated:
    def __init__(self, workdir: Path, notify: NotifySocket, watchdog_usec: int | None = None):
        receiverd = postern_binary("receiverd")
        assert os.access(SOCKET_ACTIVATE, os.X_OK), f"{SOCKET_ACTIVATE} missing (package systemd)"
        self.port = free_port()
        # The config names the same address; receiverd must adopt fd 3
        # ("smtp") instead of binding it again.
        self.config = postern_config(workdir, receiver_port=self.port, sender_port=free_port())
        self.log_path = workdir / "receiverd.log"
        cmd = [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{self.port}", "--fdname=smtp",
               "-E", f"NOTIFY_SOCKET={notify.path}"]
        if watchdog_usec is not None:
            cmd += ["-E", f"WATCHDOG_USEC={watchdog_usec}"]
        cmd += [str(receiverd), "--config", str(self.config)]
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                            "WATCHDOG_USEC", "WATCHDOG_PID")}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def connect(self, timeout: float = 60.0) -> tuple[socket.socket, str]:
        """Connect (this makes systemd-socket-activate exec receiverd) and
        read the greeting."""
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"socket not listening:\n{tail(self.log_path)}")
                time.sleep(0.05)
        f = s.makefile("rb")
        try:
            greeting = f.readline(1024).decode("utf-8", "replace")
        except OSError as e:
            raise AssertionError(f"no greeting: {e}\n{tail(self.log_path)}") from None
        return s, greeting

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"receiverd did not exit within {timeout:.0f}s of SIGTERM\n"
                                 f"{tail(self.log_path)}") from None

    def close(self) -> None:
        print(f"---- receiverd log ({self.log_path}):\n{tail(self.log_path)}")
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        kill_session(self.proc.pid, grace=1)


@pytest.fixture
def activated(workdir, notify_socket):
    started: list[Activated] = []

    def start(watchdog_usec: int | None = None) -> Activated:
        a = Activated(workdir, notify_socket, watchdog_usec)
        started.append(a)
        return a

    yield start
    for a in started:
        a.close()


def smtp_exchange(s: socket.socket, line: bytes) -> list[str]:
    s.sendall(line)
    f = s.makefile("rb")
    replies = []
    while True:
        r = f.readline(1024).decode("utf-8", "replace").rstrip("\r\n")
        assert r, f"connection closed after {line!r}"
        replies.append(r)
        if r[3:4] != "-":
            return replies


def test_socket_activation_ready_and_stopping(activated, notify_socket):
    rd = activated()
    s, greeting = rd.connect()
    with s:
        assert greeting.startswith("220 "), f"greeting {greeting!r}"
        notify_socket.wait_for("READY=1", timeout=15)
        ehlo = smtp_exchange(s, b"EHLO client.e2e.test\r\n")
        assert ehlo[-1].startswith("250 "), ehlo
        assert smtp_exchange(s, b"QUIT\r\n")[0].startswith("221"), "QUIT not answered 221"

    # A second connection on the inherited socket works too.
    s2, greeting2 = rd.connect(timeout=10)
    s2.close()
    assert greeting2.startswith("220 ")

    assert any(a.startswith("STATUS=") for _, a in notify_socket.assignments()), (
        f"no STATUS= sent: {notify_socket.assignments()!r}")
    # The socket systemd passed is the configured address: nothing to say about it.
    assert "is ignored" not in rd.log_path.read_text()
    # The status file for posternctl status names this very process (socket-activate execs
    # receiverd in its own pid).
    status = rd.config.parent / "run" / "receiverd.status"
    assert f"pid {rd.proc.pid}\nstate ready\n" in status.read_text()
    rc = rd.terminate()
    notify_socket.wait_for("STOPPING=1", timeout=5)
    assert rc == 0, f"receiverd exited {rc} on SIGTERM\n{tail(rd.log_path)}"
    assert f"pid {rd.proc.pid}\nstate stopping\n" in status.read_text()


def test_watchdog_pings(activated, notify_socket):
    rd = activated(watchdog_usec=400_000)
    s, greeting = rd.connect()
    s.close()
    assert greeting.startswith("220 ")
    notify_socket.wait_for("READY=1", timeout=15)
    notify_socket.wait_for("WATCHDOG=1", timeout=5, count=1)
    time.sleep(2.0)
    pings = [t for t, a in notify_socket.assignments() if a == "WATCHDOG=1"]
    assert len(pings) >= 4, f"only {len(pings)} WATCHDOG=1 in ~2 s with WATCHDOG_USEC=400000"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    # systemd would kill the service once 400 ms pass without a ping.
    assert max(gaps) < 0.4, f"watchdog gaps (s): {[round(g, 3) for g in gaps]}"
    rc = rd.terminate()
    notify_socket.wait_for("STOPPING=1", timeout=5)
    assert rc == 0, f"receiverd exited {rc} on SIGTERM"


@pytest.mark.parametrize("daemon,fdname,message", [
    ("scannerd", "scanner", b"SCAN 00000000000000000000\n"),
    ("senderd", "sender", b"FLUSH\n"),
])
def test_unix_socket_activation(workdir, notify_socket, daemon, fdname, message):
    """scannerd and senderd adopt their unix sockets from systemd by name,
    report READY=1 once a wake-up arrives, and STOPPING=1 on SIGTERM."""
    sock_path = workdir / f"{daemon}.sock"
    config = postern_config(workdir, receiver_port=free_port(), sender_port=free_port())
    log_path = workdir / f"{daemon}.log"
    cmd = [SOCKET_ACTIVATE, "-l", str(sock_path), f"--fdname={fdname}", "-E", f"NOTIFY_SOCKET={notify_socket.path}",
           str(postern_binary(daemon)), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_"))}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The path exists once systemd-socket-activate has bound it, a moment before it
        # listens: until then a connection is refused.
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(sock_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                assert time.monotonic() < deadline, f"{sock_path} not listening\n{tail(log_path)}"
                time.sleep(0.05)
        s.sendall(message)
        notify_socket.wait_for("READY=1", timeout=30)
        s.close()
        log = log_path.read_text()
        assert f"adopting passed socket fd=3 name={fdname}" in log
        # The configuration names another socket (RunDir's): said once, with both.
        setting = "[Scanner] Address" if daemon == "scannerd" else "[Sender] ControlAddress"
        assert (f"{setting} local:{workdir}/run/{daemon}.sock is ignored: listening on the socket(s) "
                f"systemd passed instead: '{fdname}' on local:{sock_path}") in log, log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, tail(log_path)
        notify_socket.wait_for("STOPPING=1", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_session(proc.pid, grace=1)
