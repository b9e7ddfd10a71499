"""Prometheus metrics (DESIGN.md §7): each daemon serves GET /metrics on the
address [Metrics] gives it; counters follow the mail that went through."""

from __future__ import annotations

import re
import smtplib
import time
import urllib.request

from conftest import free_port


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_follow_the_mail(postern, sink):
    ports = {name: free_port() for name in ("Receiver", "Scanner", "Sender")}
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Metrics": {k: f"inet:{v}@127.0.0.1" for k, v in ports.items()}})
    with smtplib.SMTP("127.0.0.1", port) as c:
        for i in range(3):
            c.sendmail("a@example.com", ["b@example.org", "c@example.org"], b"Subject: m\r\n\r\nx\r\n")
        c.mail("a@example.com")
        c.rcpt("b@example.org")
        code, _ = c.data(b"Received: x\r\n" * 60 + b"\r\nloop\r\n")
        assert code == 554
    sink.wait_for_recipients(6)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = scrape(ports["Sender"])
        if s.get('postern_delivered_recipients_total{status="sent"}') == 6:
            break
        time.sleep(0.2)
    r = scrape(ports["Receiver"])
    assert r['postern_received_messages_total{result="queued"}'] == 3
    assert r['postern_received_messages_total{result="refused"}'] == 1
    assert r["postern_receiver_commit_seconds_count"] == 3
    assert r["postern_received_bytes_total"] > 0
    c = scrape(ports["Scanner"])
    assert c['postern_scanned_messages_total{verdict="pass"}'] == 3
    s = scrape(ports["Sender"])
    assert s['postern_delivered_recipients_total{status="sent"}'] == 6
    assert s["postern_delivery_delay_seconds_count"] == 6
    assert s['postern_spool_messages{state="deferred"}'] == 0
    assert 'postern_spool_messages{state="corrupt"}' in s
    # Anything but /metrics is 404.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ports['Sender']}/", timeout=5)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
