"""posternctl's queue commands on a live spool: list, show, hold, release,
flush and delete, as an administrator uses them while a next hop is down."""

from __future__ import annotations

import re
import smtplib
import subprocess
import time
from pathlib import Path

from conftest import free_port, postern_binary


def ctl(p, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(postern_binary("posternctl")), "queue", *args, "--config", str(p.config)],
                          capture_output=True, text=True, timeout=20)


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

    listing = ctl(p, "list")
    assert listing.returncode == 0
    ids = re.findall(r"^([0-9A-Z]{20})  deferred ", listing.stdout, re.M)
    assert len(ids) == 2, listing.stdout
    assert "<b@example.org> [P] inet:" in listing.stdout and "-- 2 messages" in listing.stdout

    shown = ctl(p, "show", ids[0], "--body")
    assert shown.returncode == 0 and "state deferred" in shown.stdout and "Subject: " in shown.stdout
    assert "attempts 000001" in shown.stdout

    assert ctl(p, "hold", ids[0]).returncode == 0
    assert (spool / "hold" / ids[0]).exists()
    assert ctl(p, "delete", ids[1]).returncode == 0
    assert not any((spool / s / ids[1]).exists() for s in ("deferred", "outgoing", "hold"))
    assert ctl(p, "show", "0" * 20).returncode != 0          # unknown id: an error, not a crash

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


def test_flush_retries_deferred_mail_now(postern, sink):
    dead_port = free_port()
    port = free_port()
    p = postern(port, sink.port, callback_port=dead_port, settings={"Sender": {"RetryIntervals": "1h"}})
    spool = Path(p.dir) / "spool"
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: flush\r\n\r\nx\r\n")
    wait_until(lambda: len(list((spool / "deferred").iterdir())) == 1)
    from aiosmtpd.controller import Controller
    from conftest import Sink
    back = Sink()
    server = Controller(back, hostname="127.0.0.1", port=dead_port, decode_data=False)
    server.start()
    try:
        r = ctl(p, "flush")
        assert r.returncode == 0 and "flush requested" in r.stdout
        assert b"Subject: flush" in back.wait_for(1, timeout=10)[0].data
    finally:
        server.stop()
