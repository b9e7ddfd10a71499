"""`posternctl rules test` (DESIGN.md §4): per recipient, the rules visited,
the value of every parameter they set, and the resolved route."""

from __future__ import annotations

import subprocess

from conftest import postern_binary


def test_rules_test_shows_trace_and_route(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text(
        "[General]\nSpoolDir = /tmp/unused\n[Sender]\nAddress = inet:2525@127.0.0.1\n"
        "[Rule:vip]\nSenderAddress = lmtp:local:/run/vip.sock\n"
        "[Rules]\n"
        "header:Subject:regex:^urgent stop rule=vip\n"
        "to:@internal.example && client-ip:cidr:192.0.2.0/24 cont SenderAddress = inet:10026@SERVER-IP\n"
        '!(from:"" || from:"root@localhost") cont SenderAddress = inet:10025@CLIENT-IP\n')
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: Urgent: call me\r\nFrom: a@example.com\r\n\r\nbody\r\n")
    r = subprocess.run([str(postern_binary("posternctl")), "rules", "test", "--config", str(conf),
                        "--from", "a@example.com", "--rcpt", "x@internal.example", "--rcpt", "y@example.org",
                        "--client-ip", "192.0.2.9", "--server-ip", "198.51.100.1", str(msg)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.split("recipient ")[1:]
    assert blocks[0].startswith("<x@internal.example>")
    # The header rule fires first for both (its message is "urgent"), through the group.
    assert "SenderAddress = lmtp:local:/run/vip.sock (from [Rule:vip])" in blocks[0]
    assert "line 8 true sets it" in blocks[0]
    assert "route: lmtp:local:/run/vip.sock" in blocks[1]

    # Without the message its header is unknown: that rule does not apply, the others do.
    r = subprocess.run([str(postern_binary("posternctl")), "rules", "test", "--config", str(conf),
                        "--from", "a@example.com", "--rcpt", "x@internal.example", "--rcpt", "y@example.org",
                        "--client-ip", "192.0.2.9", "--server-ip", "198.51.100.1"],
                       capture_output=True, text=True, timeout=20)
    blocks = r.stdout.split("recipient ")[1:]
    assert "line 8 unknown" in blocks[0]
    assert "route: inet:10026@198.51.100.1" in blocks[0]
    assert "route: inet:10025@192.0.2.9" in blocks[1]
    r = subprocess.run([str(postern_binary("posternctl")), "rules", "test", "--config", str(conf),
                        "--from", "", "--rcpt", "y@example.org"], capture_output=True, text=True, timeout=20)
    assert "route: inet:2525@127.0.0.1" in r.stdout
