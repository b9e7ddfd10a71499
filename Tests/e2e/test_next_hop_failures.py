"""senderd against next hops that misbehave in ways no real MTA can be made
to on demand. The servers here are scripted test doubles (raw sockets or an
aiosmtpd handler with a changed EHLO), and each says what it imitates."""

from __future__ import annotations

import socket
import smtplib
import subprocess
import threading
import time
from pathlib import Path

from conftest import free_port, postern_binary


class ScriptedServer:
    """A one-connection-at-a-time SMTP/LMTP server that answers from a
    script: `respond(line) -> list of reply lines or None to hang up`; a
    "__HANGUP__" entry closes the connection after the lines before it."""

    def __init__(self, greeting: str, respond):
        self.port = free_port()
        self.respond = respond
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.connections = 0
        self.transcript: list[str] = []
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            f = conn.makefile("rwb")
            try:
                f.write(self.greeting.encode() + b"\r\n"); f.flush()
                in_data = False
                for raw in f:
                    line = raw.decode().rstrip("\r\n")
                    self.transcript.append(line)
                    if in_data:
                        if line != ".":
                            continue
                        in_data = False
                    replies = self.respond(line)
                    if replies is None:
                        break
                    hangup = "__HANGUP__" in replies
                    for r in replies:
                        if r != "__HANGUP__":
                            f.write(r.encode() + b"\r\n")
                    f.flush()
                    if hangup:
                        break
                    if replies and replies[-1].startswith("354"):
                        in_data = True
            except OSError:
                pass
            finally:
                try:
                    conn.shutdown(socket.SHUT_RDWR)   # makefile() keeps the fd open otherwise
                except OSError:
                    pass
                f.close()
                conn.close()

    def close(self):
        self.stop = True
        self.sock.close()


def queue_show(p, qid: str) -> str:
    return subprocess.run([str(postern_binary("posternctl")), "queue", "show", "--raw", "--config", str(p.config), qid],
                          capture_output=True, text=True).stdout


def queued_ids(p) -> list[str]:
    spool = Path(p.dir) / "spool"
    return [f.name for state in ("outgoing", "deferred") for f in (spool / state).iterdir()]


def test_lmtp_server_dying_after_first_recipient(postern, sink):
    """Imitates an LMTP server (Dovecot) that crashes after delivering to the
    first recipient: that one must be recorded as delivered, only the second
    is deferred, so a retry cannot deliver it twice."""
    def respond(line: str):
        u = line.upper()
        if u.startswith("LHLO"):
            return ["250-mailbox.test", "250 PIPELINING"]
        if u.startswith(("MAIL", "RCPT", "RSET")):
            return ["250 2.1.0 Ok"]
        if u == "DATA":
            return ["354 go ahead"]
        if line == ".":
            # The reply for the first recipient, then the connection drops
            # before the second recipient's reply.
            return ["250 2.0.0 <b@example.org> delivered", "__HANGUP__"]
        return None

    server = ScriptedServer("220 mailbox.test LMTP", respond)
    try:
        port = free_port()
        rule = f"true stop SenderAddress = lmtp:inet:{server.port}@127.0.0.1\n"
        p = postern(port, sink.port, rules_first=rule, settings={"Sender": {"RetryIntervals": "1h"}})
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["b@example.org", "c@example.org"], b"Subject: lmtp crash\r\n\r\nx\r\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not list((Path(p.dir) / "spool" / "deferred").iterdir()):
            time.sleep(0.1)
        ids = queued_ids(p)
        assert len(ids) == 1, p.log_text()
        shown = queue_show(p, ids[0])
        assert "route D 0 " in shown and "route P 1 " in shown, shown
        assert "to=<b@example.org>" in p.log_text() and "status=sent" in p.log_text()
    finally:
        server.close()


def test_next_hop_refusing_xforward_without_pipelining(postern, sink):
    """Imitates a next hop that offers XFORWARD but refuses it and does not
    pipeline: delivery goes on (XFORWARD is only informative)."""
    def respond(line: str):
        u = line.upper()
        if u.startswith("EHLO"):
            return ["250-relay.test", "250 XFORWARD NAME ADDR PORT PROTO HELO"]
        if u.startswith("XFORWARD"):
            return ["501 5.5.4 Bad XFORWARD syntax"]
        if u.startswith("MAIL") or u.startswith("RCPT") or u.startswith("RSET"):
            return ["250 2.0.0 Ok"]
        if u == "DATA":
            return ["354 go ahead"]
        if line == ".":
            return ["250 2.0.0 Ok: queued"]
        if u.startswith("QUIT"):
            return None
        return ["500 what"]

    server = ScriptedServer("220 relay.test ESMTP", respond)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=server.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("odd+helo=name")
            c.sendmail("a@example.com", ["b@example.org"], b"Subject: xf\r\n\r\nx\r\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "status=sent" not in p.log_text():
            time.sleep(0.1)
        assert "status=sent" in p.log_text(), p.log_text()
        xf = [l for l in server.transcript if l.upper().startswith("XFORWARD")]
        assert xf and "HELO=odd+2Bhelo+3Dname" in xf[0], xf    # xtext (RFC 3461 §4)
        assert "restarting" not in p.log_text()                # senderd did not die
    finally:
        server.close()


def test_quit_in_the_middle_of_bdat_leaves_nothing(postern, sink):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port)
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rwb")
    f.readline()
    f.write(b"EHLO c\r\n")     # EHLO ends its group (RFC 2920): its reply first
    f.flush()
    while not f.readline().startswith(b"250 "):
        pass
    f.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 3\r\nabcQUIT\r\n")
    f.flush()
    lines = []
    while not lines or not lines[-1][:3] in (b"221", b""):
        lines.append(f.readline())
    assert lines[-1].startswith(b"221"), lines
    s.close()
    time.sleep(0.3)
    assert list((Path(p.dir) / "spool" / "incoming").iterdir()) == []


def test_stop_while_a_next_hop_stalls(postern, sink):
    """Imitates a next hop that never answers the end of data: a stopping
    senderd waits a few seconds, then cuts the connection; the message stays
    queued (nothing lost), and posternctl exits within the fixture's 10 s."""
    def respond(line: str):
        u = line.upper()
        if u.startswith("EHLO"):
            return ["250-stall.test", "250 PIPELINING"]
        if u.startswith(("MAIL", "RCPT", "RSET")):
            return ["250 2.0.0 Ok"]
        if u == "DATA":
            return ["354 go ahead"]
        if line == ".":
            time.sleep(60)          # never answers within the test
            return None
        return None

    server = ScriptedServer("220 stall.test ESMTP", respond)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=server.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["b@example.org"], b"Subject: stall\r\n\r\nx\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "." not in server.transcript:
            time.sleep(0.1)
        assert "." in server.transcript
        t0 = time.monotonic()
        assert p.stop() == 0
        assert time.monotonic() - t0 < 10
        spool = Path(p.dir) / "spool"
        assert len(list((spool / "outgoing").iterdir()) + list((spool / "deferred").iterdir())) == 1
    finally:
        server.close()


def test_temporary_refusal_is_retried_later(postern, sink):
    """Imitates a next hop that answers 451 to the first attempt (greylisting
    does this): the message is deferred, retried after RetryIntervals, and
    delivered exactly once."""
    state = {"attempts": 0, "delivered": 0}

    def respond(line: str):
        u = line.upper()
        if u.startswith("EHLO"):
            return ["250-grey.test", "250 PIPELINING"]
        if u.startswith(("MAIL", "RSET")):
            return ["250 2.0.0 Ok"]
        if u.startswith("RCPT"):
            state["attempts"] += 1
            return ["451 4.7.1 Greylisted, try again later"] if state["attempts"] == 1 else ["250 2.1.5 Ok"]
        if u == "DATA":
            return ["354 go ahead"] if state["attempts"] > 1 else ["554 5.5.1 no valid recipients"]
        if line == ".":
            state["delivered"] += 1
            return ["250 2.0.0 Ok: queued"]
        return None

    server = ScriptedServer("220 grey.test ESMTP", respond)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=server.port, settings={"Sender": {"RetryIntervals": "1s"}})
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["b@example.org"], b"Subject: grey\r\n\r\nx\r\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and state["delivered"] == 0:
            time.sleep(0.2)
        assert state["delivered"] == 1, p.log_text()
        p.wait_log("status=sent")
        assert "status=deferred (451 4.7.1 Greylisted" in p.log_text()
        time.sleep(1)
        assert state["delivered"] == 1
        assert queued_ids(p) == []
    finally:
        server.close()


def test_config_errors_are_reported_with_their_position(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[General]\nSpoolDir = /tmp/x\n[Receiver]\nMaxSesions = 10\nAddress = inet:99999@127.0.0.1\n"
                   "[Rules]\nfrom:a@b.c cont SenderAddress = inet:10025@\n")
    r = subprocess.run([str(postern_binary("posternctl")), "config", "check", "--config", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 78
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:4:1: unknown key 'MaxSesions'"), r.stderr
    assert any(l.startswith(f"{bad}:5:") and "port" in l for l in lines), r.stderr
    assert any(l.startswith(f"{bad}:7:") for l in lines), r.stderr
    # A daemon refuses to start on the same file, with the same messages.
    d = subprocess.run([str(postern_binary("receiverd")), "--config", str(bad)], capture_output=True, text=True, timeout=20)
    assert d.returncode == 78 and f"{bad}:4:1: unknown key 'MaxSesions'" in d.stderr


def test_dead_cached_connection_is_retried_on_a_new_one(postern, sink):
    """Imitates a next hop that drops idle connections without a word (a
    restart, a NAT timeout): the next message goes out on a fresh connection
    at once instead of being deferred."""
    delivered = []

    def respond(line: str):
        u = line.upper()
        if u.startswith("EHLO"):
            return ["250-drop.test", "250 PIPELINING"]
        if u.startswith(("MAIL", "RCPT", "RSET")):
            return ["250 2.0.0 Ok"]
        if u == "DATA":
            return ["354 go ahead"]
        if line == ".":
            delivered.append(1)
            return ["250 2.0.0 Ok: queued", "__HANGUP__"]   # then the connection silently goes
        return None

    server = ScriptedServer("220 drop.test ESMTP", respond)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=server.port,
                    settings={"Sender": {"RetryIntervals": "1h"}, "General": {"LogLevel": "debug"}})
        for n in range(2):
            with smtplib.SMTP("127.0.0.1", port) as c:
                c.sendmail("a@example.com", [f"r{n}@example.org"], b"Subject: drop\r\n\r\nx\r\n")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(delivered) < n + 1:
                time.sleep(0.05)
        assert len(delivered) == 2, p.log_text()
        assert "status=deferred" not in p.log_text()
        assert "cached connection was dead" in p.log_text()
        assert server.connections == 2
    finally:
        server.close()
