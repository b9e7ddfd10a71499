"""SIGHUP (DESIGN.md §3): the daemons read the configuration again; a file
with errors is refused with file:line:column: message and the old
configuration stays in force. posternctl run passes SIGHUP on to all three
daemons, as `systemctl reload postern.target` would."""

from __future__ import annotations

import re
import signal
import smtplib
import time

from conftest import free_port


def wait_log(p, pattern: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(re.findall(pattern, p.log_text())) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count}x {pattern!r} not in log:\n{p.log_text()[-3000:]}")


def test_sighup_reloads_rules_and_refuses_a_bad_file(postern, sink, extra_sink):
    moved = extra_sink()
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port)
    original = p.config.read_text()
    rule = f"to:@moved.example stop SenderAddress = inet:{moved.port}@CLIENT-IP\n"
    p.config.write_text(original.replace("[Rules]\n", "[Rules]\n" + rule))
    p.proc.send_signal(signal.SIGHUP)
    wait_log(p, r"(receiverd|scannerd|senderd)\[\d+\]: configuration reloaded", 3)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["x@moved.example"], b"Subject: after reload\r\n\r\nx\r\n")
    assert moved.wait_for(1)[0].rcpt_tos == ["x@moved.example"]

    # A broken file: refused with its position, the rule above stays in force.
    good = p.config.read_text()
    p.config.write_text(good.replace("[Receiver]\n", "[Receiver]\nMaxSesions = 10\n"))
    p.proc.send_signal(signal.SIGHUP)
    line = good.split("\n").index("[Receiver]") + 2
    wait_log(p, rf"reload refused: {re.escape(str(p.config))}:{line}:1: unknown key 'MaxSesions'", 3)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["y@moved.example"], b"Subject: still\r\n\r\nx\r\n")
    assert [m.rcpt_tos for m in moved.wait_for(2)] == [["x@moved.example"], ["y@moved.example"]]
    assert sink.messages == []
