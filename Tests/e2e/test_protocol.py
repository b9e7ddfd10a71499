"""receiverd's SMTP/LMTP server as a client sees it, and what reaches the
next hop: replies, limits, refusals (DESIGN.md §6, issue 2 item 7).

Every test runs the real ``posternctl run`` and delivers to a real aiosmtpd
sink; ``smtp-sink`` (Postfix's own test server, which records the envelope
parameters it was given) stands in for the next hop where DSN parameters
must be seen."""

from __future__ import annotations

import re
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port, wait_port
from smtpclient import RawSession

QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Z]{20})$")


def start(postern, sink, **kw):
    port = free_port()
    return postern(port, sink.port, callback_port=kw.pop("callback_port", sink.port), **kw), port


def begin(s: RawSession, greeting: bool = True) -> None:
    """Greeting (unless read already), EHLO, MAIL FROM and one RCPT, all accepted."""
    if greeting:
        assert s.reply()[0] == 220
        assert s.code("EHLO c") == 250
    assert s.code("MAIL FROM:<a@example.com>") == 250
    assert s.code("RCPT TO:<b@example.org>") == 250


def send_data(s: RawSession, body: bytes) -> tuple[int, list[str]]:
    assert s.code("DATA") == 354
    s.send(body)
    return s.reply()


def test_ehlo_announces_extensions(postern, sink):
    _, port = start(postern, sink)
    with RawSession(port) as s:
        assert s.reply()[0] == 220
        code, lines = s.cmd("EHLO client.example")
        assert code == 250
        keywords = {l.split()[0] for l in lines[1:]}
        assert {"PIPELINING", "SIZE", "8BITMIME", "DSN", "SMTPUTF8", "ENHANCEDSTATUSCODES", "XFORWARD"} <= keywords
        size = [l for l in lines if l.startswith("SIZE ")][0]
        assert int(size.split()[1]) == 10 * 1024 * 1024


def test_command_order_and_syntax_errors(postern, sink):
    _, port = start(postern, sink)
    with RawSession(port) as s:
        s.reply()
        assert s.cmd("MAIL FROM:<a@example.com>")[0] == 503          # no EHLO yet
        assert s.code("EHLO c") == 250
        assert s.code("RCPT TO:<b@example.org>") == 503               # no MAIL
        assert s.code("DATA") == 503
        assert s.code("FOO bar") == 500
        assert s.code("MAIL FROM:a@example.com>") == 501
        assert s.code("MAIL FROM:<a@example.com> FROB=1") == 555
        assert s.code("MAIL FROM:<a@example.com> BODY=BINARYMIME") == 501
        assert s.code("MAIL FROM:<a@example.com>") == 250
        assert s.code("MAIL FROM:<a@example.com>") == 503             # nested
        assert s.code("RCPT TO:<üser@example.org>") == 553            # no SMTPUTF8
        assert s.code("RCPT TO:<b@example.org> NOTIFY=SOMETIMES") == 501
        assert s.code("DATA") == 554                                  # no valid recipients
        assert s.code("RSET") == 250
        assert s.code("NOOP") == 250
        assert s.code("QUIT") == 221


def test_pipelined_transaction(postern, sink):
    _, port = start(postern, sink)
    with RawSession(port) as s:
        s.reply()
        s.cmd("EHLO c")
        # Everything up to DATA in one write, as a PIPELINING client does (RFC 2920).
        s.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
        assert [s.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        s.send("Subject: p\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        code, text = s.reply()
        assert code == 250 and QUEUED.match(f"250 {text[0]}")
        assert s.reply()[0] == 221
    got = sink.wait_for_recipients(2)
    assert sorted(r for m in got for r in m.rcpt_tos) == ["b@example.org", "c@example.org"]


@pytest.mark.parametrize("smuggled", [
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
])
def test_smuggling_is_refused(postern, sink, smuggled):
    """An end-of-data other than CRLF.CRLF never ends the data; the message
    that contains one is refused and nothing of it is delivered, while the
    following honest message in the same session is."""
    _, port = start(postern, sink)
    with RawSession(port) as s:
        begin(s)
        payload = (b"Subject: smuggle\r\n\r\nbefore" + smuggled +
                   b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                   b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
        code, text = send_data(s, payload)
        assert code == 550 and text[0].startswith("5.5.2"), text
        # The session is still in step: an honest message goes through.
        assert s.code("MAIL FROM:<a@example.com>") == 250
        assert s.code("RCPT TO:<b@example.org>") == 250
        assert send_data(s, b"Subject: honest\r\n\r\nok\r\n.\r\n")[0] == 250
    got = sink.wait_for(1)
    time.sleep(0.5)
    assert len(sink.messages) == 1
    assert b"Subject: honest" in got[0].data and b"evil" not in got[0].data
    assert got[0].rcpt_tos == ["b@example.org"]


def test_bare_lf_command_and_overlong_lines(postern, sink):
    _, port = start(postern, sink)
    with RawSession(port) as s:
        s.reply()
        s.send("EHLO c\n")
        assert s.reply()[0] == 500
        s.send("NOOP " + "x" * 9000 + "\r\n")
        code, text = s.reply()
        assert code == 500 and "too long" in text[0]
        assert s.code("EHLO c") == 250                                 # still usable
        begin(s, greeting=False)
        code, _ = send_data(s, b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n")
        assert code == 550


def test_message_size_limit(postern, sink):
    _, port = start(postern, sink, settings={"Receiver": {"MaxMessageSize": "2k"}})
    with RawSession(port) as s:
        s.reply()
        s.cmd("EHLO c")
        assert s.code("MAIL FROM:<a@example.com> SIZE=5000") == 552
        assert s.code("MAIL FROM:<a@example.com>") == 250
        s.cmd("RCPT TO:<b@example.org>")
        code, text = send_data(s, b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 60 + b".\r\n")
        assert code == 552 and text[0].startswith("5.3.4")
    time.sleep(0.5)
    assert sink.messages == []


def test_too_many_recipients(postern, sink):
    _, port = start(postern, sink, settings={"Receiver": {"MaxRecipients": "3"}})
    with RawSession(port) as s:
        s.reply()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<a@example.com>")
        codes = [s.code(f"RCPT TO:<r{i}@example.org>") for i in range(5)]
        assert codes == [250, 250, 250, 452, 452]
        assert send_data(s, b"Subject: r\r\n\r\nx\r\n.\r\n")[0] == 250
    got = sink.wait_for_recipients(3)
    assert sorted(r for m in got for r in m.rcpt_tos) == [f"r{i}@example.org" for i in range(3)]


def test_client_outside_protected_networks(postern, sink):
    _, port = start(postern, sink, settings={"Receiver": {"ProtectedNetworks": "192.0.2.0/24"}})
    with RawSession(port) as s:
        code, text = s.reply()
        assert code == 554 and text[0].startswith("5.7.1")
        assert s.closed_by_peer()


def test_idle_client_times_out(postern, sink):
    _, port = start(postern, sink, settings={"Receiver": {"CommandTimeout": "2s"}})
    with RawSession(port, timeout=15) as s:
        s.reply()
        s.cmd("EHLO c")
        t0 = time.monotonic()
        code, text = s.reply()                   # the server speaks first: 421
        assert code == 421 and text[0].startswith("4.4.2")
        assert 1.5 < time.monotonic() - t0 < 10
        assert s.closed_by_peer()


def test_slow_client_inside_data_times_out(postern, sink):
    """A client that trickles one byte every half second is never silent for
    DataTimeout, but falls below the minimum data rate: 421, nothing kept."""
    p, port = start(postern, sink, settings={"Receiver": {"DataTimeout": "2s"}})
    with RawSession(port, timeout=20) as s:
        begin(s)
        assert s.code("DATA") == 354
        t0 = time.monotonic()
        s.sock.settimeout(0.5)
        got = b""
        while time.monotonic() - t0 < 15 and b"421" not in got:
            try:
                s.sock.sendall(b"x")
                got += s.sock.recv(1024)
            except socket.timeout:
                continue
            except OSError:
                break
        assert got.startswith(b"421 4.4.2"), got
        assert 2 <= time.monotonic() - t0 < 10
    time.sleep(0.3)
    assert list((p.dir / "spool" / "incoming").iterdir()) == []
    assert sink.messages == []


def test_mail_loop_is_refused(postern, sink):
    _, port = start(postern, sink)
    with RawSession(port) as s:
        begin(s)
        hops = b"".join(b"Received: from hop%d by hop%d\r\n" % (i, i + 1) for i in range(60))
        code, text = send_data(s, hops + b"Subject: loop\r\n\r\nx\r\n.\r\n")
        assert code == 554 and text[0].startswith("5.4.6")


def test_lmtp_replies_per_recipient(postern, sink):
    _, port = start(postern, sink, protocol="lmtp")
    with RawSession(port) as s:
        assert "LMTP" in s.reply()[1][0]
        assert s.code("EHLO c") == 500                                 # LMTP wants LHLO
        assert s.code("LHLO c") == 250
        begin(s, greeting=False)
        s.cmd("RCPT TO:<c@example.org>")
        assert s.code("DATA") == 354
        s.send("Subject: lmtp\r\n\r\nx\r\n.\r\n")
        replies = [s.reply() for _ in range(2)]
        assert [c for c, _ in replies] == [250, 250]
        assert "<b@example.org>" in replies[0][1][0] and "<c@example.org>" in replies[1][1][0]
    sink.wait_for_recipients(2)


def test_body_reaches_next_hop_byte_for_byte(postern, sink):
    """Dots, 8-bit text, a 998-octet line, trailing blank lines and a body
    without a final newline all arrive as sent, below Postern's headers."""
    _, port = start(postern, sink)
    body = (b"line one\r\n.\r\n..two dots\r\n.leading\r\n\xc3\xa9t\xc3\xa9 8bit\r\n" +
            b"x" * 998 + b"\r\n\r\n\r\n tab\tand space \r\nlast")
    headers = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: exact\r\n"
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], headers + b"\r\n" + body,
                   mail_options=["BODY=8BITMIME"])
    got = sink.wait_for(1)[0]
    data = got.data
    # Postern adds exactly its guard and Received: fields above the original header.
    added, original = data.split(b"From: a@example.com\r\n", 1)
    names = [l.split(b":")[0] for l in added.split(b"\r\n") if l and not l[:1].isspace()]
    assert names == [b"X-Postern-Guard", b"Received"]
    # smtplib adds the final CRLF the body lacked (RFC 5321 §4.1.1.4); all else is exact.
    assert b"From: a@example.com\r\n" + original == headers + b"\r\n" + body + b"\r\n"
    assert "BODY=8BITMIME" in got.mail_options


@pytest.mark.parametrize("dots", ["none", "in lines", "at line starts"])
def test_large_body_reaches_next_hop_byte_for_byte(postern, sink, dots):
    """A 1 MiB message goes out as it is stored (senderd sends it from the
    queue file with sendfile) when no line starts with a dot; with dots at
    line starts it goes through the dot-stuffer. Both arrive exact, as do
    messages that need no stuffing but have dots inside lines."""
    _, port = start(postern, sink)
    line = {"none": b"A" * 74, "in lines": b"end. of a sentence.. and more" + b"x" * 45,
            "at line starts": b".leading dot" + b"y" * 62}[dots]
    lines = [b"%07d" % i + b"z" * 69 for i in range(14000)]
    lines[1::997] = [line] * len(lines[1::997])
    body = b"\r\n".join(lines) + b"\r\n"
    headers = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: large\r\n"
    assert len(body) > 1024 * 1024
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], headers + b"\r\n" + body)
    data = sink.wait_for(1)[0].data
    added, original = data.split(b"From: a@example.com\r\n", 1)
    assert b"From: a@example.com\r\n" + original == headers + b"\r\n" + body


def test_esmtp_parameters_pass_through(postern):
    """DSN and BODY parameters reach the next hop unchanged; smtp-sink (which
    offers DSN, unlike aiosmtpd) records the MAIL and RCPT arguments it got."""
    import shutil
    import tempfile
    dump = Path(tempfile.mkdtemp(prefix="postern-smtp-sink."))
    dump.chmod(0o777)            # smtp-sink writes as nobody
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", f"{dump}/%M.", f"127.0.0.1:{sink_port}", "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(sink_port, 10, sink, "smtp-sink")
        port = free_port()
        postern(port, sink_port, callback_port=sink_port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("a@example.com", ["BODY=8BITMIME", "RET=HDRS", "ENVID=QQ314159"])
            c.rcpt("b@example.org", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;orig@example.org"])
            c.rcpt("c@example.org", ["NOTIFY=NEVER"])
            code, _ = c.data(b"Subject: dsn\r\n\r\n\xc3\xa9\r\n")
            assert code == 250
        deadline = time.monotonic() + 20
        files = []
        while time.monotonic() < deadline and not files:
            files = list(dump.iterdir())
            time.sleep(0.1)
        assert len(files) == 1
        text = files[0].read_bytes().decode("utf-8", "replace")
        assert "X-Mail-Args: <a@example.com> BODY=8BITMIME RET=HDRS ENVID=QQ314159" in text
        assert "X-Rcpt-Args: <b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig@example.org" in text
        assert "X-Rcpt-Args: <c@example.org> NOTIFY=NEVER" in text
    finally:
        sink.terminate()
        sink.wait(5)
        shutil.rmtree(dump, ignore_errors=True)


def test_null_sender_goes_to_default_route(postern, sink, extra_sink):
    """The seed rule sends checked mail back to CLIENT-IP's callback port but
    DSNs (null sender) and FilterMail's mail to [Sender] Address."""
    callback = extra_sink()
    port = free_port()
    postern(port, sink.port, callback_port=callback.port)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("", ["b@example.org"], b"Subject: dsn\r\n\r\nbounce\r\n")
        c.sendmail("someone@example.com", ["b@example.org"], b"Subject: normal\r\n\r\nx\r\n")
    assert b"Subject: dsn" in sink.wait_for(1)[0].data
    assert b"Subject: normal" in callback.wait_for(1)[0].data
    time.sleep(0.5)
    assert len(sink.messages) == 1 and len(callback.messages) == 1


def test_recipients_with_different_routes_are_delivered_separately(postern, sink, extra_sink):
    other = extra_sink()
    port = free_port()
    rule = f"to:@other.example stop SenderAddress = inet:{other.port}@CLIENT-IP\n"
    postern(port, sink.port, callback_port=sink.port, rules_first=rule)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["x@example.org", "y@other.example", "z@example.org"], b"Subject: split\r\n\r\nx\r\n")
    assert sorted(sink.wait_for_recipients(2)[0].rcpt_tos) == ["x@example.org", "z@example.org"]
    assert other.wait_for(1)[0].rcpt_tos == ["y@other.example"]


def test_unreachable_next_hop_is_retried(postern, sink):
    """The next hop is down: the message waits in deferred/ and goes out
    once the hop is back (RetryIntervals = 1s)."""
    from aiosmtpd.controller import Controller
    from conftest import Sink
    late = Sink()
    late.port = free_port()
    port = free_port()
    p = postern(port, sink.port, callback_port=late.port, settings={"Sender": {"RetryIntervals": "1s"}})
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: later\r\n\r\nx\r\n")
    deferred = Path(p.dir) / "spool" / "deferred"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not list(deferred.iterdir()):
        time.sleep(0.1)
    assert len(list(deferred.iterdir())) == 1, p.log_text()
    assert "status=deferred" in p.log_text()
    ctl = Controller(late, hostname="127.0.0.1", port=late.port, decode_data=False)
    ctl.start()
    try:
        assert b"Subject: later" in late.wait_for(1, timeout=30)[0].data
        time.sleep(0.3)
        assert list(deferred.iterdir()) == []
    finally:
        ctl.stop()


def test_full_disk_gets_452_never_250(postern, sink, tmp_path):
    """The spool's file system is full: the client gets 452 4.3.1, no partial
    file stays behind, and once there is room again mail flows."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        port = free_port()
        postern(port, sink.port, callback_port=sink.port, settings={"General": {"SpoolDir": str(mnt / "spool")}})
        big = b"Subject: big\r\n\r\n" + (b"b" * 76 + b"\r\n") * 5000      # ~390 KB
        with RawSession(port) as s:
            begin(s)
            code, text = send_data(s, big + b".\r\n")
            assert code == 452 and text[0].startswith("4.3.1"), text
            assert list((mnt / "spool" / "incoming").iterdir()) == []
            begin(s, greeting=False)
            assert send_data(s, b"Subject: small\r\n\r\nfits\r\n.\r\n")[0] == 250
        got = sink.wait_for(1)
        assert b"Subject: small" in got[0].data
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_lmtp_next_hop(postern, extra_sink):
    """SenderAddress with the lmtp: prefix: senderd speaks LMTP (LHLO, one
    reply per recipient) to a real LMTP server (aiosmtpd's)."""
    box = extra_sink(lmtp=True)
    port = free_port()
    rule = f"true stop SenderAddress = lmtp:inet:{box.port}@127.0.0.1\n"
    postern(port, box.port, rules_first=rule)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org", "c@example.org"], b"Subject: to lmtp\r\n\r\nx\r\n")
    got = box.wait_for(1)
    assert sorted(got[0].rcpt_tos) == ["b@example.org", "c@example.org"]


def test_bdat_chunks(postern, sink):
    """CHUNKING (RFC 3030): pipelined BDAT chunks, binary-exact, then LAST."""
    _, port = start(postern, sink)
    part1 = b"Subject: chunked\r\n\r\n.leading dot stays\r\n"
    part2 = b"..two\r\nend\r\n"
    with RawSession(port) as s:
        s.reply()
        code, lines = s.cmd("EHLO c")
        assert "CHUNKING" in lines
        s.send(b"BDAT 5\r\nhello")                     # no transaction: refused, and its bytes
        assert s.reply()[0] == 503                     # are skipped, not read as commands
        s.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
               + b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
        assert [s.reply()[0] for _ in range(3)] == [250, 250, 250]
        code, text = s.reply()
        assert code == 250 and "queued as" in text[0]
        assert s.code("MAIL FROM:<a@example.com>") == 250
        s.cmd("RCPT TO:<b@example.org>")
        s.send(b"BDAT 5\r\nab\ncd")                    # a bare LF inside a chunk
        assert s.reply()[0] == 250
        assert s.code("DATA") == 503                   # no DATA once BDAT began
        s.send(b"BDAT 0 LAST\r\n")
        assert s.reply()[0] == 550
    got = sink.wait_for(1)[0]
    assert got.data.endswith(part1 + part2)
    time.sleep(0.5)
    assert len(sink.messages) == 1


def test_connections_to_the_next_hop_are_reused(postern, sink):
    """Twenty messages, each sent once the one before has been delivered,
    travel over a single connection to the next hop, not twenty."""
    _, port = start(postern, sink)
    for i in range(20):
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", [f"r{i}@example.org"], b"Subject: reuse\r\n\r\nx\r\n")
        sink.wait_for(i + 1)
    peers = {m.peer for m in sink.messages}
    assert len(peers) == 1, peers


def test_smtputf8_passes_through(postern, sink):
    """An internationalised address (RFC 6531) goes through with SMTPUTF8."""
    _, port = start(postern, sink)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        assert c.has_extn("smtputf8")
        c.sendmail("jöran@exämple.com", ["grüße@example.org"], "Subject: ü\r\n\r\nç\r\n".encode(),
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    got = sink.wait_for(1)[0]
    assert got.mail_from == "jöran@exämple.com"
    assert got.rcpt_tos == ["grüße@example.org"]
    assert "SMTPUTF8" in got.mail_options


def test_quoted_local_parts_survive_the_spool(postern, sink):
    """Quoted local parts (RFC 5321 §4.1.2) are kept exactly through the spool
    file and delivered; nothing lands in corrupt/."""
    p, port = start(postern, sink)
    with RawSession(port) as s:
        s.reply()
        s.cmd("EHLO c")
        assert s.code('MAIL FROM:<"john doe"@example.com>') == 250
        assert s.code('RCPT TO:<"a\\\\b"@example.org>') == 250
        assert send_data(s, b"Subject: quoted\r\n\r\nx\r\n.\r\n")[0] == 250
    got = sink.wait_for(1)[0]
    assert got.mail_from == '"john doe"@example.com'
    assert got.rcpt_tos == ['"a\\\\b"@example.org']
    assert list((p.dir / "spool" / "corrupt").iterdir()) == []
