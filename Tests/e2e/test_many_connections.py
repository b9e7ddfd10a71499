"""10,000 concurrent connections (issue 12, item 4): receiverd holds ten
thousand sessions, half of them idle and half trickling a NOOP one byte every
few seconds, with bounded memory, while a normal client still gets its mail
through in under a second.

The connections are held by this process with asyncio (non-blocking sockets);
the file descriptor limit is raised here (the hard one too: tests run as
root), ``posternctl run`` and receiverd inherit it, and [Receiver] MaxSessions
is set above the crowd. Measured: the time to have all 10,000 greeted, the RSS
and PSS (/proc/PID/status, smaps_rollup) of each daemon before, while and
after they are held, and the normal client's time from connect to the 250 for
its message, and to the message's arrival at the sink. The figures are printed
at the end of the run.

Without the accept queue that systemd or posternctl run gave the listening
socket (NIO's adoption had cut it to 128), this test failed: about 200 of the
10,000 were let in by SYN cookies and never greeted."""

from __future__ import annotations

import asyncio
import os
import resource
import smtplib
import statistics
import threading
import time
from pathlib import Path

import conftest
from conftest import daemon_pids, free_port

CONNECTIONS = int(os.environ.get("MANY_CONNECTIONS", "10000"))
#: Connections opened at once (the listen backlog is 1024).
CONNECT_PARALLEL = 500
#: A trickling session sends one byte this often.
TRICKLE_SECONDS = 3.0
#: How long all connections are held while the normal client sends.
HOLD_SECONDS = 15
#: Normal messages sent while the connections are held, one at a time.
NORMAL_MESSAGES = 5
#: receiverd's growth per held session may not exceed this (NIO channel, handler and its
#: buffers, the session's 1 s timer); well above what it needs, far below a leak.
MAX_BYTES_PER_SESSION = 64 * 1024
#: Nor may it keep growing while they are held and trickle (a buffer per NOOP, say): 1 KiB
#: per session over the whole hold.
MAX_GROWTH_WHILE_HELD = CONNECTIONS * 1024


def memory(pid: int) -> dict[str, int]:
    """RSS and PSS of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss"] = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["pss"] = int(line.split()[1])
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Crowd:
    """CONNECTIONS client sessions held open from an event loop in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.greeted = 0
        self.failed: list[str] = []
        self.replies = 0        # 250s to trickled NOOPs
        self.closed_by_server = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.stop: asyncio.Event | None = None
        self.all_greeted = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, name="crowd", daemon=True)
        self.thread.start()

    async def _session(self, n: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 30)
                greeting = await asyncio.wait_for(reader.readline(), 30)
            except (OSError, asyncio.TimeoutError) as e:
                self.failed.append(f"{n}: {e!r}")
                return
        if not greeting.startswith(b"220"):
            self.failed.append(f"{n}: {greeting!r}")
            writer.close()
            return
        self.writers.append(writer)
        self.greeted += 1
        if self.greeted == CONNECTIONS:
            self.all_greeted.set()
        if n % 2:
            await self._idle(reader)
        else:
            await self._trickle(n, reader, writer)

    async def _idle(self, reader) -> None:
        if await reader.read(1024) == b"":
            self.closed_by_server += 1

    async def _trickle(self, n: int, reader, writer) -> None:
        # Spread the trickles over the interval so that they do not come in waves.
        await asyncio.sleep((n % 1000) / 1000 * TRICKLE_SECONDS)
        pending = b""
        try:
            while not self.stop.is_set():
                if not pending:
                    pending = b"NOOP\r\n"
                writer.write(pending[:1])
                pending = pending[1:]
                await writer.drain()
                if not pending:
                    line = await reader.readline()
                    if not line:
                        self.closed_by_server += 1
                        return
                    if line.startswith(b"250"):
                        self.replies += 1
                await asyncio.sleep(TRICKLE_SECONDS)
        except OSError:
            self.closed_by_server += 1

    async def _main(self) -> None:
        self.stop = asyncio.Event()
        gate = asyncio.Semaphore(CONNECT_PARALLEL)
        tasks = [asyncio.ensure_future(self._session(n, gate)) for n in range(CONNECTIONS)]
        await self.stop.wait()
        for w in self.writers:
            w.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> None:
        self.main = asyncio.run_coroutine_threadsafe(self._main(), self.loop)

    def close(self) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        try:
            self.main.result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def send_one(port: int, n: int) -> tuple[float, str]:
    """A normal client's whole transaction; seconds from connect to the 250."""
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("normal.client.test")
        c.mail("normal@client.test")
        code, _ = c.rcpt(f"normal{n}@example.org")
        assert code == 250
        code, text = c.data(f"Subject: normal {n}\r\nMessage-ID: <normal{n}@client.test>\r\n\r\nhello\r\n".encode())
        took = time.monotonic() - t0
    assert code == 250, text
    return took, text.decode()


def test_ten_thousand_connections(postern, sink):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNECTIONS + 1000
    # Raised for this process, so posternctl run and receiverd inherit it; the hard limit too
    # when it is below (tests run as root: CAP_SYS_RESOURCE).
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    try:
        port = free_port()
        # Stress mode off: this measures how many sessions receiverd holds; with it on, the
        # crowd at 99 % of MaxSessions would rightly have its idle sessions cut
        # (test_hostile_clients.py shows that).
        p = postern(port, sink.port, callback_port=sink.port,
                    settings={"Receiver": {"MaxSessions": str(CONNECTIONS + 100), "StressThreshold": "0%"}})
        pids = daemon_pids(p.proc.pid)
        assert len(pids) == 3, pids
        pid = pids["receiverd"]
        limit = next(l for l in Path(f"/proc/{pid}/limits").read_text().splitlines() if l.startswith("Max open files"))
        assert int(limit.split()[3]) >= need, f"receiverd's limit is too low: {limit}"
        took0, _ = send_one(port, 0)             # warm: first message, first connection to the sink
        sink.wait_for(1, timeout=10)
        before = {d: memory(q) for d, q in pids.items()}
        fds_before = open_fds(pid)

        crowd = Crowd(port)
        t0 = time.monotonic()
        crowd.start()
        try:
            ok = crowd.all_greeted.wait(60)
            accept_seconds = time.monotonic() - t0
            assert ok, (f"only {crowd.greeted} of {CONNECTIONS} connections greeted within 60s; "
                        f"failures: {len(crowd.failed)}, e.g. {crowd.failed[:5]}")
            held = {d: memory(q) for d, q in pids.items()}
            fds_held = open_fds(pid)
            latencies, arrivals = [], []
            hold_end = time.monotonic() + HOLD_SECONDS
            for n in range(1, NORMAL_MESSAGES + 1):
                t = time.monotonic()
                took, _ = send_one(port, n)
                latencies.append(took)
                sink.wait_for(n + 1, timeout=10)
                arrivals.append(time.monotonic() - t)
                time.sleep(max(0.0, (hold_end - time.monotonic()) / (NORMAL_MESSAGES - n + 1)))
            after = {d: memory(q) for d, q in pids.items()}
            still = crowd.greeted - crowd.closed_by_server
            replies = crowd.replies
        finally:
            crowd.close()
        deadline = time.monotonic() + 20
        while open_fds(pid) > fds_before + 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        released = {d: memory(q) for d, q in pids.items()}
        fds_released = open_fds(pid)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    per_session = (held["receiverd"]["rss"] - before["receiverd"]["rss"]) * 1024 / CONNECTIONS
    growth = (after["receiverd"]["rss"] - held["receiverd"]["rss"]) * 1024
    r = conftest.MANY_CONNECTIONS
    r["connections"] = f"{CONNECTIONS} ({CONNECTIONS // 2} idle, {CONNECTIONS - CONNECTIONS // 2} trickling one byte per {TRICKLE_SECONDS:.0f}s)"
    r["time to greet all"] = f"{accept_seconds:.2f}s"
    r["receiverd open fds"] = f"{fds_before} before, {fds_held} held, {fds_released} after closing"
    for d in ("receiverd", "scannerd", "senderd"):
        for kind in ("rss", "pss"):
            r[f"{d} {kind.upper()}"] = (
                f"{before[d][kind] / 1024:.1f} MiB before, {held[d][kind] / 1024:.1f} MiB with all held, "
                f"{after[d][kind] / 1024:.1f} MiB after {HOLD_SECONDS}s, {released[d][kind] / 1024:.1f} MiB once closed")
    r["per held session"] = f"{per_session / 1024:.1f} KiB RSS"
    r["normal client, connect to 250"] = (f"{', '.join(f'{x * 1000:.0f}' for x in latencies)} ms "
                                          f"(median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
                                          f"{took0 * 1000:.0f} ms with no crowd)")
    r["normal client, to the sink"] = (f"{', '.join(f'{x * 1000:.0f}' for x in arrivals)} ms "
                                       f"(median {statistics.median(arrivals) * 1000:.0f} ms)")
    r["crowd"] = f"{still} still connected at the end, {replies} trickled NOOPs answered"
    print("\n".join(f"{k}: {v}" for k, v in r.items()))

    assert still == CONNECTIONS, f"receiverd dropped {CONNECTIONS - still} of the held connections"
    assert replies > 0, "no trickled NOOP was ever answered"
    # The goal is "under a second"; the median of a few messages, so that one scheduling
    # hiccup of a loaded CI machine does not decide it.
    assert statistics.median(latencies) < 1.0, f"a normal client waited {latencies} s for its 250"
    assert statistics.median(arrivals) < 1.0, f"normal messages took {arrivals} s to reach the sink"
    assert per_session < MAX_BYTES_PER_SESSION, f"{per_session / 1024:.1f} KiB per held session"
    assert growth < MAX_GROWTH_WHILE_HELD, f"receiverd grew by {growth / 1048576:.1f} MiB while the sessions were held"
    assert "restarting" not in p.log_text()
