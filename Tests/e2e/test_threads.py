"""The daemons' event loops (docs/architecture.md): receiverd runs one per CPU for
its clients' sessions; scannerd and senderd run one each, so that the steps of a
message in them do not hop between threads. Mail sent over several sessions at
once goes through, and `/proc/PID/task/*/comm` shows the loops (NIO names them
NIO-SGLTN-…)."""

from __future__ import annotations

import os
import smtplib
import threading
from pathlib import Path

import pytest

from conftest import daemon_pids, free_port


def event_loops(pid: int) -> int:
    """Threads of `pid` that are NIO event loops of the process's singleton group."""
    return sum(1 for t in Path(f"/proc/{pid}/task").iterdir()
               if (t / "comm").read_text().startswith("NIO-SGLTN-"))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                    reason="with one CPU every daemon has one event loop anyway")
def test_scannerd_and_senderd_run_one_event_loop(postern, sink):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port)

    def send(k: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as c:
            for i in range(5):
                c.sendmail("a@example.com", [f"r{k}.{i}@example.org"], b"Subject: t\r\n\r\nbody\r\n")

    sessions = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in sessions:
        t.start()
    for t in sessions:
        t.join()
    sink.wait_for_recipients(20)
    pids = daemon_pids(p.proc.pid)
    assert event_loops(pids["scannerd"]) == 1
    assert event_loops(pids["senderd"]) == 1
    # receiverd keeps one per CPU NIO counts (affinity and the cgroup's CPU quota).
    assert event_loops(pids["receiverd"]) >= 2


def test_the_loop_count_nio_reads_from_the_environment_wins(postern, sink):
    """`NIO_SINGLETON_GROUP_LOOP_COUNT` (docs/operations.md, "Threads") sets every daemon's
    loops, scannerd's and senderd's one included; mail still goes through."""
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port, wrapper=["env", "NIO_SINGLETON_GROUP_LOOP_COUNT=3"])
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["r@example.org"], b"Subject: t\r\n\r\nbody\r\n")
    sink.wait_for_recipients(1)
    pids = daemon_pids(p.proc.pid)
    assert {name: event_loops(pid) for name, pid in pids.items()} == {"receiverd": 3, "scannerd": 3, "senderd": 3}
