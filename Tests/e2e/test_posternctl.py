"""posternctl's queue commands on a live spool: list, show, hold, release,
flush and delete, as an administrator uses them while a next hop is down;
and status, while the daemons run and after they stopped."""

from __future__ import annotations

import json
import re
import smtplib
import subprocess
import time
from pathlib import Path

from conftest import free_port, postern_binary


def ctl(p, *args: str) -> subprocess.CompletedProcess:
    return run(p, "queue", *args)


def run(p, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(postern_binary("posternctl")), *args, "--config", str(p.config)],
                          capture_output=True, text=True, timeout=20)


def peak_memory(p, *args: str, out: Path) -> int:
    """Runs posternctl with its output to the file `out`; returns its peak resident memory
    in bytes, as GNU time reports it. (Python's own wait4 would not do: the kernel carries
    the high-water mark of the memory a child was started from, here pytest's, across exec.)"""
    usage = out.with_name(out.name + ".rss")
    with open(out, "wb") as f:
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(usage), str(postern_binary("posternctl")), *args,
                            "--config", str(p.config)], stdout=f, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, (args, r.stderr)
    return int(usage.read_text().split()[-1]) * 1024


def wait_until(pred, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_queue_administration(postern, sink):
    dead_port = free_port()        # the next hop, down until the test starts a server there
    port = free_port()
    p = postern(port, sink.port, callback_port=dead_port, settings={"Sender": {"RetryIntervals": "1h"}})
    spool = Path(p.dir) / "spool"
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: one\r\n\r\nx\r\n")
        c.sendmail("a@example.com", ["c@example.org"], b"Subject: two\r\n\r\nx\r\n")
    wait_until(lambda: len(list((spool / "deferred").iterdir())) == 2)

    # The quarantine exists, empty, before anything was quarantined (scannerd makes it).
    empty = run(p, "quarantine", "list")
    assert empty.returncode == 0 and "-- 0 messages" in empty.stdout, (empty.returncode, empty.stdout, empty.stderr)

    listing = ctl(p, "list")
    assert listing.returncode == 0
    ids = re.findall(r"^([0-9A-Z]{20})  deferred ", listing.stdout, re.M)
    assert len(ids) == 2, listing.stdout
    assert "<b@example.org> [P] inet:" in listing.stdout and "-- 2 messages" in listing.stdout
    # Why it waits (senderd's reason, as in its log line) and until when (the file's mtime).
    why = re.search(r"status=deferred \((.*)\)$", p.log_text(), re.M).group(1)
    assert f"\n            ({why})\n" in listing.stdout, listing.stdout
    mtime = (spool / "deferred" / ids[0]).stat().st_mtime
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    assert f"        next attempt {expected} (in " in listing.stdout, listing.stdout
    entry = next(m for m in json.loads(ctl(p, "list", "--json").stdout)["messages"] if m["queue_id"] == ids[0])
    assert entry["next_attempt_time"] == int(mtime) and entry["attempts"] == 1
    assert entry["recipients"][0]["delay_reason"] == why and entry["recipients"][0]["status"] == "pending"

    shown = ctl(p, "show", ids[0])
    assert shown.returncode == 0 and "state:          deferred, next attempt" in shown.stdout
    assert re.search(rf"    last error: \S+Z: {re.escape(why)}\n", shown.stdout), shown.stdout
    body = ctl(p, "show", ids[0], "--body")
    assert body.returncode == 0 and body.stdout.startswith("Received: ") and "Subject: " in body.stdout
    assert "attempts 000001\nend verdict\nerror 0 " in ctl(p, "show", ids[0], "--raw").stdout

    held = ctl(p, "hold", ids[0])
    assert held.returncode == 0 and f"posternctl: {ids[0]}: held (deferred/ -> hold/) by user=root uid=0" in held.stderr
    assert (spool / "hold" / ids[0]).exists()
    deleted = ctl(p, "delete", ids[1])
    assert deleted.returncode == 0 and f"posternctl: {ids[1]}: deleted from deferred/ by user=" in deleted.stderr
    assert not any((spool / s / ids[1]).exists() for s in ("deferred", "outgoing", "hold"))
    unknown = ctl(p, "show", "0" * 20)
    assert unknown.returncode == 66 and unknown.stderr == f"posternctl: {'0' * 20}: no such message in scan/ outgoing/ deferred/ hold/ corrupt/\n"

    # The route in the queue file still points at the dead port: bring a server up there.
    from aiosmtpd.controller import Controller
    from conftest import Sink
    back = Sink()
    ctl_server = Controller(back, hostname="127.0.0.1", port=dead_port, decode_data=False)
    ctl_server.start()
    try:
        assert ctl(p, "release", ids[0]).returncode == 0     # scanned already: straight to delivery
        assert b"Subject: one" in back.wait_for(1)[0].data
        wait_until(lambda: not any(list(spool.joinpath(s).iterdir()) for s in ("deferred", "outgoing", "hold")))
        # With the hop up again, new mail goes straight through.
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["d@example.org"], b"Subject: three\r\n\r\nx\r\n")
        assert b"Subject: three" in back.wait_for(2)[1].data    # the hop is up: no deferral needed
    finally:
        ctl_server.stop()


def deferring(postern, sink, *messages: bytes, settings: dict | None = None):
    """Postern whose callback port refuses connections, with `messages` sent and waiting in
    `deferred/`: returns it, that port, and the queue ids (in the order of their files)."""
    dead_port = free_port()
    port = free_port()
    p = postern(port, sink.port, callback_port=dead_port, settings={**(settings or {}), "Sender": {"RetryIntervals": "1h"}})
    spool = Path(p.dir) / "spool"
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        for data in messages:
            c.sendmail("a@example.com", ["b@example.org"], data)
    wait_until(lambda: len(list((spool / "deferred").iterdir())) == len(messages), timeout=60)
    return p, dead_port, sorted(f.name for f in (spool / "deferred").iterdir())


def test_show_prints_a_message_of_any_size_a_chunk_at_a_time(postern, sink, tmp_path):
    """`queue show --body` and `--raw` stream the queue file: a 20 MiB message raises
    posternctl's peak memory by less than 4 MiB over a small message's (a copy of it
    would be 20, a read buffer and a copy 40), and comes out byte for byte."""
    line = b"x" * 998 + b"\r\n"
    large = b"Subject: large\r\n\r\n" + line * (20 * 2**20 // len(line))
    p, _, _ = deferring(postern, sink, b"Subject: small\r\n\r\nx\r\n", large, settings={"Receiver": {"MaxMessageSize": "30m"}})
    spool = Path(p.dir) / "spool"
    small_id, large_id = sorted((f.stat().st_size, f.name) for f in (spool / "deferred").iterdir())
    peaks = {}
    for (_, id), name in ((small_id, "small"), (large_id, "large")):
        for flag in ("--body", "--raw"):
            peaks[name, flag] = peak_memory(p, "queue", "show", id, flag, out=tmp_path / f"{name}{flag}")
    body = (tmp_path / "large--body").read_bytes()
    assert body.startswith(b"Received: ") and body.endswith(large) and len(body) < len(large) + 1000
    assert (tmp_path / "large--raw").read_bytes() == (spool / "deferred" / large_id[1]).read_bytes()
    for flag in ("--body", "--raw"):
        grown = peaks["large", flag] - peaks["small", flag]
        assert grown < 4 * 2**20, f"show {flag}: posternctl's peak grew by {grown / 2**20:.1f} MiB for a 20 MiB message"


def test_show_to_an_output_it_cannot_write_is_an_io_error(postern, sink, tmp_path):
    """`queue show --body` and `--raw` whose standard output refuses the bytes (here opened
    read-only) exit 74 (EX_IOERR) and say it was stdout, whether the kernel's copy
    (sendfile) or a write failed."""
    p, _, [qid] = deferring(postern, sink, b"Subject: small\r\n\r\nx\r\n")
    (tmp_path / "readonly").write_bytes(b"")
    for flag in ("--body", "--raw"):
        with open(tmp_path / "readonly", "rb") as out:
            r = subprocess.run([str(postern_binary("posternctl")), "queue", "show", qid, flag, "--config", str(p.config)],
                               stdout=out, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 74, (flag, r.returncode, r.stderr)
        assert "stdout: Bad file descriptor" in r.stderr, (flag, r.stderr)


def test_flush_retries_deferred_mail_now(postern, sink):
    p, dead_port, _ = deferring(postern, sink, b"Subject: flush\r\n\r\nx\r\n")
    spool = Path(p.dir) / "spool"
    from aiosmtpd.controller import Controller
    from conftest import Sink
    back = Sink()
    server = Controller(back, hostname="127.0.0.1", port=dead_port, decode_data=False)
    server.start()
    try:
        r = ctl(p, "flush")
        assert r.returncode == 0 and "posternctl: flush of deferred/ requested by user=root uid=0" in r.stderr
        assert b"Subject: flush" in back.wait_for(1, timeout=10)[0].data
    finally:
        server.stop()


def test_status_up_then_down(postern, sink):
    """status: the three daemons from their RunDir/NAME.status and a live pid,
    the spool's depth, the oldest deferred message and the last delivery error."""
    dead_port = free_port()
    port = free_port()
    p = postern(port, sink.port, callback_port=dead_port, settings={"Sender": {"RetryIntervals": "1h"}})
    spool = Path(p.dir) / "spool"
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: one\r\n\r\nx\r\n")
        c.sendmail("a@example.com", ["c@example.org"], b"Subject: two\r\n\r\nx\r\n")
    wait_until(lambda: len(list((spool / "deferred").iterdir())) == 2)
    oldest = sorted(f.name for f in (spool / "deferred").iterdir())[0]
    pids = {name: int(pid) for name, pid in re.findall(r"(receiverd|scannerd|senderd)\[(\d+)\]: ready", p.log_text())}

    up = run(p, "status")
    assert up.returncode == 0, up.stdout + up.stderr
    for name in ("receiverd", "scannerd", "senderd"):
        assert re.search(rf"^{name} +up +pid {pids[name]} since ", up.stdout, re.M), up.stdout
    assert "deferred 2" in up.stdout and f"oldest deferred: {oldest} (arrived " in up.stdout
    assert re.search(r"^last delivery error: \S+Z [0-9A-Z]{20} <[bc]@example.org> ", up.stdout, re.M), up.stdout

    doc = json.loads(run(p, "status", "--json").stdout)
    assert [(d["name"], d["state"], d["pid"]) for d in doc["daemons"]] == [
        (n, "up", pids[n]) for n in ("receiverd", "scannerd", "senderd")]
    assert doc["spool"]["states"]["deferred"] == 2 and doc["spool"]["states"]["hold"] == 0
    assert doc["oldest_deferred"]["queue_id"] == oldest and doc["oldest_deferred"]["age_seconds"] >= 0
    why = re.search(r"status=deferred \((.*)\)$", p.log_text(), re.M).group(1)
    assert doc["last_delivery_error"]["text"] == why

    p.stop()
    down = run(p, "status")
    assert down.returncode == 69, down.stdout
    for name in ("receiverd", "scannerd", "senderd"):
        assert re.search(rf"^{name} +down +pid {pids[name]} stopped since ", down.stdout, re.M), down.stdout
    doc = json.loads(run(p, "status", "--json").stdout)
    assert {d["state"] for d in doc["daemons"]} == {"down"}
