"""Faults under load (issue 12, item 3): while Postfix's smtp-source sends a
steady stream of numbered messages, the spool's file system fills up, the
next hop misbehaves, clamd dies, daemons are killed; then the fault goes away
and the test waits for the queue to drain.

For every message the client started, the test knows what receiverd answered
(faultload.Tap), how often it reached the sink, and whether it is still in the
spool. A scenario fails when a message that got a 250 is neither delivered
nor in the spool (lost: a 250 for an unsaved message, or a spool file gone),
when a refused message is delivered anyway (the client's retry would deliver
it twice), when mail is delivered twice other than in flight (a next hop that
took the message and lost its answer: then at most once per lost answer; when
senderd is killed the hop is silent, so nothing is in flight), when the spool
does not drain by itself once the fault is gone, or when the fault did not
show the way it must (452 4.3.1 for a full disk, 451 4.7.1 with clamd down).

The spool's file system is a small tmpfs mounted in a mount namespace of
posternctl's own (unshare; the tests run as root); a filler file keeps it full.

Each scenario adds a row to the summary table printed at the end of the run:
scenario | sent | accepted (250) | refused (4xx/5xx) | no reply | delivered |
duplicates | left in spool | lost. "no reply" counts transactions cut by a
killed receiverd before its answer (never a 250, so never counted as lost).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import daemon_pids, free_port
from faultload import (LoopThread, NextHop, SmtpSource, Tally, Tap, account, sink_keys, spool_count,
                       spool_keys, table)
from scanners import start_clamd

#: smtp-source sessions; each sends a message, waits a second (-w 1) and sends the next.
SESSIONS = int(os.environ.get("FAULT_SESSIONS", "16"))
#: Seconds of load per scenario.
LOAD_SECONDS = int(os.environ.get("FAULT_LOAD_SECONDS", "10"))
#: How long the queue may take to drain once the fault is gone: senderd looks at deferred/
#: every 5 s (DeliveryService.deferredScanInterval), RetryIntervals is 1 s here.
DRAIN_SECONDS = 45

ROWS: list[Tally] = []

#: smtp-source's -l for a spool file (with envelope and verdict) a little under 4 KiB, so that
#: the delivery error senderd appends after a failed attempt needs a page of its own.
LENGTH_NEAR_PAGE = 3110

#: senderd gives up on a silent or stalled next hop within seconds, and retries at once.
FAST_SENDER = {"ConnectTimeout": "2s", "CommandTimeout": "2s", "DataTimeout": "2s", "RetryIntervals": "1s"}


def report(row: Tally) -> None:
    ROWS.append(row)
    conftest.FAULT_TABLE[:] = table(ROWS)
    print("\n".join(table([row])))


@pytest.fixture
def lt():
    loop = LoopThread()
    yield loop
    loop.close()


class Filler:
    """Keeps a file system full: appends to a file until ENOSPC, and again
    whenever something was freed, until ``free()`` removes the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stop = threading.Event()
        self.full = threading.Event()
        self.thread = threading.Thread(target=self._run, name="filler", daemon=True)

    def start(self) -> "Filler":
        self.thread.start()
        assert self.full.wait(10), f"{self.path}: the file system never filled up"
        return self

    def _run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            big, page = b"\0" * 65536, b"\0" * 4096
            while not self.stop.is_set():
                try:
                    os.write(fd, big)
                    continue
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                try:
                    while True:
                        os.write(fd, page)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                self.full.set()
                self.stop.wait(0.02)
        finally:
            os.close(fd)

    def free(self) -> None:
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join(10)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def tmpfs_wrapper(mountpoint: Path, size: str) -> list[str]:
    """posternctl in a mount namespace of its own with a tmpfs on `mountpoint`: the
    mount goes away with the last process in it, whatever happens to the test."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            f'mount -t tmpfs -o size={size},mode=0755 postern-faults "{mountpoint}" && exec "$0" "$@"']


def run_scenario(name: str, p, tap: Tap, spool: Path, sink, timeline, *, max_duplicates: int = 0,
                 total: int | None = None, length: int = 3000) -> Tally:
    """Load, the timeline's actions at their times (seconds after the load starts), then
    the drain; the row of the table. Fails on any lost message."""
    total = total or SESSIONS * LOAD_SECONDS
    src = SmtpSource(tap, total, SESSIONS, length=length, log=p.dir / "smtp-source.log").start()
    t0 = time.monotonic()
    try:
        for at, action in timeline:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            action()
        src.wait(timeout=LOAD_SECONDS * 4 + 30)
    finally:
        src.stop()
    load_end = time.monotonic()
    assert src.runs and src.runs[-1][1] == 0, f"smtp-source failed: {src.runs}"
    deadline = load_end + DRAIN_SECONDS
    empty_since = None
    while time.monotonic() < deadline:
        accepted = {x.key for x in tap.snapshot() if x.accepted}
        if spool_count(spool) == 0:
            if accepted <= set(sink_keys(sink)):
                break
            # Nothing left to deliver (hold/ and corrupt/ are not counted): once the last
            # delivery had time to land, what is missing is lost or parked; no use waiting.
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since > 3:
                break
        else:
            empty_since = None
        time.sleep(0.25)
    sink.settle(1.5)
    row = account(name, tap.snapshot(), sink, spool)
    row.extra.append(f"load {load_end - t0:.1f}s, drained {time.monotonic() - load_end:.1f}s after it")
    if any(rc != 0 for _, rc, _ in src.runs):
        row.extra.append(f"smtp-source started {len(src.runs)} times (it gives up on a lost connection)")
    report(row)
    problems = row.problems(max_duplicates() if callable(max_duplicates) else max_duplicates)
    if row.left:
        problems.append(f"{row.left} accepted messages still in the spool {time.monotonic() - load_end:.0f}s "
                        f"after the load: delivery did not resume by itself")
    assert row.sent == total, f"{row.sent} of {total} messages started"
    assert not problems, "; ".join(problems) + diagnosis(p, spool)
    return row


def diagnosis(p, spool: Path) -> str:
    """What a failed scenario's reader needs: where the messages are, Postern's complaints."""
    where = {state: len(keys) for state, keys in spool_keys(spool).items()}
    complaints = [l for l in p.log_text().splitlines()
                  if re.search(r"\b(error|warning|critical):|restarting", l)
                  and "lost connection" not in l and "queue file write error" not in l]
    return (f"\nload messages in the spool by state: {where}\n---- Postern's errors and warnings "
            f"({len(complaints)}, the first 30):\n" + "\n".join(complaints[:30]))


def no_restarts(p) -> None:
    assert "restarting" not in p.log_text(), \
        "a daemon died during the fault:\n" + "\n".join(l for l in p.log_text().splitlines() if "restarting" in l)


# ---------------------------------------------------------------- the spool's file system fills up

def start_on_tmpfs(postern, sink, tmp_path, size="4m", settings=None, callback_port=None):
    mnt = tmp_path / "spoolfs"
    mnt.mkdir()
    port = free_port()
    p = postern(port, sink.port, callback_port=callback_port or sink.port, wrapper=tmpfs_wrapper(mnt, size),
                settings={"General": {"SpoolDir": str(mnt / "spool")}, **(settings or {})})
    # The tmpfs as posternctl sees it, from outside its mount namespace.
    inside = Path(f"/proc/{p.proc.pid}/root") / mnt.relative_to("/")
    assert (inside / "spool" / "scan").is_dir(), "the spool is not on the private tmpfs"
    with open(f"/proc/{p.proc.pid}/mounts") as f:
        assert any(l.split()[1] == str(mnt) and l.split()[2] == "tmpfs" for l in f), "no tmpfs in posternctl's namespace"
    return p, port, inside


def test_spool_file_system_fills_up(postern, sink, lt, tmp_path):
    """The spool's tmpfs is kept full from 2 s to 7 s of the load: clients get 452 4.3.1,
    never a 250 for a message that was not saved; once the filler file is removed,
    mail is accepted and delivered again without anyone's help."""
    p, port, fs = start_on_tmpfs(postern, sink, tmp_path)
    tap = Tap(lt, port)
    filler = Filler(fs / "filler")
    marks = {}

    def fill():
        filler.start()
        marks["full"] = time.monotonic()

    def free():
        filler.free()
        marks["free"] = time.monotonic()

    try:
        row = run_scenario("spool file system full", p, tap, fs / "spool", sink, [(2, fill), (7, free)])
    finally:
        filler.free()
    txns = tap.snapshot()
    refused_while_full = [x for x in txns if x.refused]
    assert refused_while_full, "the full file system refused nothing"
    assert {(x.code, x.text.split(" ", 1)[0]) for x in refused_while_full} == {(452, "4.3.1")}, row.codes
    after = [x for x in txns if x.started > marks["free"] + 0.5]
    assert after and all(x.accepted for x in after), "mail was not accepted again once there was room"
    no_restarts(p)


def fill_once_the_hop_holds_mail(hop: NextHop, filler: Filler) -> None:
    """Fills the disk as soon as senderd has an attempt waiting on the silent hop (the
    load comes in waves, one a second: mail accepted on a full disk would never reach it)."""
    deadline = time.monotonic() + 3
    while hop.met("silent") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    filler.start()


def test_daemons_killed_while_the_disk_is_full(postern, sink, lt, tmp_path):
    """The next hop stops answering at 1.5 s, so mail waits in senderd's attempts and in
    deferred/; the spool's file system is full from the first attempt on the silent hop
    to 8 s. Meanwhile receiverd (in the
    middle of a transaction), scannerd and senderd (with attempts open and mail waiting) are
    each killed with SIGKILL; posternctl run starts them again, on the full disk. Nothing
    accepted is lost, nothing is delivered twice (the hop was silent: no delivery was in
    flight when senderd died), and the queue drains by itself once the faults are gone. A
    client cut off by the killed receiverd had no reply, so it still has its message."""
    hop = NextHop(lt, sink.port)
    try:
        p, port, fs = start_on_tmpfs(postern, sink, tmp_path, settings={"Sender": FAST_SENDER},
                                     callback_port=hop.port)
        tap = Tap(lt, port)
        filler = Filler(fs / "filler")
        kills: dict[str, int] = {}
        waiting: dict[str, int] = {}

        def down():
            hop.mode = "silent"

        def kill(name):
            def action():
                if name == "receiverd":
                    tap.wait_open(2.0)   # aim at a session in the middle of a transaction
                waiting[name] = sum(len(v) for k, v in spool_keys(fs / "spool").items() if k != "corrupt")
                pid = daemon_pids(p.proc.pid).get(name)
                assert pid, f"{name} is not running"
                os.kill(pid, signal.SIGKILL)
                kills[name] = pid
            return action

        def up():
            filler.free()
            hop.mode = "relay"

        try:
            row = run_scenario("kill -9 while disk full", p, tap, fs / "spool", sink,
                               [(1.5, down), (1.5, lambda: fill_once_the_hop_holds_mail(hop, filler)),
                                (3.5, kill("receiverd")), (4.5, kill("scannerd")), (5.5, kill("senderd")), (8, up)])
        finally:
            filler.free()
        row.extra.append("load messages in the spool at each kill: "
                         + ", ".join(f"{k} {v}" for k, v in waiting.items())
                         + f"; silent hop: {hop.faulty('silent')}")
        conftest.FAULT_TABLE[:] = table(ROWS)
        log = p.log_text()
        for name, pid in kills.items():
            assert f"{name}[{pid}] killed by signal 9; restarting" in log, f"{name} was not restarted"
        assert len(daemon_pids(p.proc.pid)) == 3
        assert waiting.get("senderd", 0) > 0, "senderd was killed with no mail waiting"
    finally:
        hop.close()


def test_spool_full_while_the_next_hop_is_down(postern, sink, lt, tmp_path):
    """The next hop stops answering at 1.5 s, so mail waits in deferred/; as soon as an
    attempt waits on it, and until 8 s, the spool's file system is full too: senderd's
    attempts (2 s each) time out and are recorded on a full disk. When
    both faults are gone, everything waiting is delivered by itself: a deferral that
    cannot record its error text must not park mail in hold/."""
    hop = NextHop(lt, sink.port)
    try:
        p, port, fs = start_on_tmpfs(postern, sink, tmp_path, settings={"Sender": FAST_SENDER},
                                     callback_port=hop.port)
        tap = Tap(lt, port)
        filler = Filler(fs / "filler")

        def down():
            hop.mode = "silent"

        def fill():
            fill_once_the_hop_holds_mail(hop, filler)

        def up():
            filler.free()
            hop.mode = "relay"

        try:
            row = run_scenario("disk full, next hop down", p, tap, fs / "spool", sink,
                               [(1.5, down), (1.5, fill), (8, up)], length=LENGTH_NEAR_PAGE)
        finally:
            filler.free()
        held = [l for l in p.log_text().splitlines() if "moved to hold/" in l]
        row.extra.append(f"silent hop: {hop.faulty('silent')}; {len(held)} moved to hold/")
        conftest.FAULT_TABLE[:] = table(ROWS)
        assert hop.met("silent") > 0
        assert not held, "\n".join(held[:5])
    finally:
        hop.close()


# ---------------------------------------------------------------- the next hop misbehaves

NEXT_HOP_FAULTS = {
    "stall": "next hop stalls mid-DATA",
    "reset": "next hop resets the connection",
    "421": "next hop answers 421",
    "silent": "next hop accepts, never replies",
    "swallow": "next hop takes DATA, reply lost",
}


@pytest.mark.parametrize("mode", list(NEXT_HOP_FAULTS))
def test_next_hop_fault(postern, sink, lt, mode):
    """From 2 s to 7 s of the load the next hop misbehaves (a scripted double, see
    faultload.NextHop); then it relays to the sink again. Deferred mail is retried and
    delivered exactly once; nothing is lost and nothing is left. The one exception is the
    in-flight message whose 250 the hop took and never sent (``swallow``): senderd cannot
    know it arrived, so it is delivered again, at most once per lost answer."""
    hop = NextHop(lt, sink.port)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port, settings={"Sender": FAST_SENDER})
        tap = Tap(lt, port)

        def fault():
            hop.mode = mode

        def heal():
            hop.mode = "relay"

        def lost_answers() -> int:
            return hop.connections["swallow (end of data)"]

        row = run_scenario(NEXT_HOP_FAULTS[mode], p, tap, p.dir / "spool", sink, [(2, fault), (7, heal)],
                           max_duplicates=lost_answers if mode == "swallow" else 0)
        deferred = len(re.findall(r"status=deferred", p.log_text()))
        met = lost_answers() if mode == "swallow" else hop.met(mode)
        row.extra.append((f"{met} ends of data whose 250 was dropped" if mode == "swallow"
                          else f"fault met by {hop.faulty(mode)}") + f"; {deferred} deferrals")
        conftest.FAULT_TABLE[:] = table(ROWS)
        assert met > 0 and deferred > 0, \
            f"the fault never showed: connections {dict(hop.connections)}, deferrals {deferred}"
        if mode == "swallow":
            assert row.duplicates > 0, "a message whose answer was lost was not delivered again"
        assert row.refused == 0, "a next hop's trouble must not reach the client"
        no_restarts(p)
    finally:
        hop.close()


# ---------------------------------------------------------------- clamd dies and comes back

def test_clamd_killed_and_back(postern, sink, lt, tmp_path):
    """Before-queue scanning with ClamAV: clamd is killed at 2 s and started again at
    6 s. Meanwhile clients get 451 4.7.1 (ProcessingErrors = tempfail), never a 250 for
    an unscanned message; afterwards mail flows again."""
    clamd = start_clamd(tmp_path)
    marks = {}
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=sink.port,
                    settings={"Scanner": {"BeforeQueueFilters": "ClamAV"},
                              "ClamAV": {"Address": clamd.address},
                              "Receiver": {"ProcessingErrors": "tempfail"}})
        tap = Tap(lt, port)

        def kill():
            os.killpg(clamd.process.pid, signal.SIGKILL)
            clamd.process.wait(10)
            marks["down"] = time.monotonic()

        def restart():
            nonlocal clamd
            clamd = start_clamd(tmp_path)
            marks["up"] = time.monotonic()

        row = run_scenario("clamd killed, restarted", p, tap, p.dir / "spool", sink, [(2, kill), (6, restart)])
        txns = tap.snapshot()
        refused = [x for x in txns if x.refused]
        assert refused, "nothing was refused while clamd was down"
        assert {(x.code, x.text.split(" ", 1)[0]) for x in refused} == {(451, "4.7.1")}, row.codes
        accepted_while_down = [x for x in txns if x.accepted and marks["down"] + 0.2 < x.ended < marks["up"] - 0.5]
        assert not accepted_while_down, f"{len(accepted_while_down)} messages got a 250 while clamd was down"
        after = [x for x in txns if x.started > marks["up"] + 0.5]
        assert after and all(x.accepted for x in after), "mail was not accepted again once clamd was back"
        no_restarts(p)
    finally:
        clamd.stop()
