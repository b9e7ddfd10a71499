"""Delivery status notifications (RFC 3464): a recipient the next hop refuses
for good gets a report, one with NOTIFY=SUCCESS that a next hop without DSN
accepted gets a "relayed" report, one still deferred after DelayWarningTime
gets one "delayed" report — each from the null sender, through [Sender]
Address, never through the callback port, never for a report, never against
NOTIFY, and checked field by field (dsnreport.check_report)."""

from __future__ import annotations

import json
import re
import smtplib
import subprocess
import time

from conftest import Sink, daemon_pids, free_port, postern_binary
from dsnreport import check_report, spool_tail


def queued_as(reply: tuple[int, bytes]) -> str:
    """Postern's queue id from its reply to the end of data."""
    m = re.search(rb"queued as (\S+)", reply[1])
    assert reply[0] == 250 and m, reply
    return m.group(1).decode()


class Refusing(Sink):
    """A next hop (aiosmtpd) that has no mailbox for nobody@example.org."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"


def start_hop(hop: Sink):
    """Runs `hop` (an aiosmtpd handler) on a free port; the caller stops the controller."""
    from aiosmtpd.controller import Controller
    hop.port = free_port()
    ctl = Controller(hop, hostname="127.0.0.1", port=hop.port, decode_data=False)
    ctl.start()
    return hop, ctl


def start_refusing():
    return start_hop(Refusing())


def test_refused_recipient_gets_a_report(postern, sink):
    hop, ctl = start_refusing()
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("alice@example.com", ["ENVID=QQ+2B42", "RET=HDRS"])
            c.rcpt("bob@example.org")
            c.rcpt("nobody@example.org", ["NOTIFY=FAILURE", "ORCPT=rfc822;nobody+2Bx@example.org"])
            qid = queued_as(c.data(b"Subject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nsecret body\r\n"))
        assert hop.wait_for(1)[0].rcpt_tos == ["bob@example.org"]
        report = sink.wait_for(1)[0]                  # [Sender] Address, not the callback port
        assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
        check_report(report.data, action="failed", sender="alice@example.com", queue_id=qid, envid="QQ+42",
                     recipients={"nobody@example.org": {
                         "status": "5.1.1", "orcpt": "rfc822; nobody+x@example.org", "remote": "127.0.0.1",
                         "diagnostic": "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"}},
                     headers_only=True, why_headers="you asked for the headers only (RET=HDRS).",
                     original_subject=b"hello")
        assert b"secret body" not in report.data
        assert "status=bounced" in p.log_text() and "sender non-delivery notification" in p.log_text()
        time.sleep(0.5)
        assert len(sink.messages) == 1 and len(hop.messages) == 1
    finally:
        ctl.stop()


def test_a_report_on_a_large_message_reads_only_its_head(postern, sink):
    """A report on a message over the full-return limit attaches its header section only,
    and senderd reads no more than that: a 20 MiB message refused for one recipient leaves
    senderd's peak resident memory (VmHWM) where it was."""
    size = 20 * 1024 * 1024
    line = b"x" * 998 + b"\r\n"
    hop, ctl = start_refusing()
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port, settings={"Receiver": {"MaxMessageSize": "30m"}})

        def send(subject: bytes, body: bytes) -> str:
            with smtplib.SMTP("127.0.0.1", port) as c:
                c.ehlo("client.example")
                c.mail("alice@example.com")
                c.rcpt("bob@example.org")
                c.rcpt("nobody@example.org")
                return queued_as(c.data(b"Subject: " + subject + b"\r\n\r\n" + body))

        send(b"warm-up", b"x\r\n")   # threads, pools and the first report are set up
        hop.wait_for(1)
        sink.wait_for(1)
        senderd = daemon_pids(p.proc.pid)["senderd"]

        def peak_kib() -> int:
            with open(f"/proc/{senderd}/status") as status:
                return next(int(row.split()[1]) for row in status if row.startswith("VmHWM:"))

        before = peak_kib()
        qid = send(b"large", line * (size // len(line)))
        assert len(hop.wait_for(2, timeout=120)[1].data) >= size - len(line)
        report = sink.wait_for(2, timeout=60)[1]
        check_report(report.data, action="failed", sender="alice@example.com", queue_id=qid, envid=None,
                     recipients={"nobody@example.org": {
                         "status": "5.1.1", "remote": "127.0.0.1",
                         "diagnostic": "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"}},
                     headers_only=True, why_headers="the message is larger than 50000 octets.",
                     original_subject=b"large")
        grown = (peak_kib() - before) * 1024
        assert grown < size // 10, f"senderd's peak grew by {grown / 2**20:.1f} MiB for a 20 MiB message"
    finally:
        ctl.stop()


def test_no_report_when_not_wanted(postern):
    hop, ctl = start_refusing()       # both the callback and the default route: a report would land here
    try:
        port = free_port()
        p = postern(port, hop.port, callback_port=hop.port, settings={"Sender": {"DelayWarningTime": "1s"}})
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("alice@example.com")
            c.rcpt("nobody@example.org", ["NOTIFY=NEVER"])
            c.data(b"Subject: never\r\n\r\nx\r\n")
            # A report itself (null sender) that fails is never reported on.
            c.mail("")
            c.rcpt("nobody@example.org")
            c.data(b"Subject: a bounce\r\n\r\nx\r\n")
            # Accepted by a next hop without DSN, but nobody asked for SUCCESS.
            c.mail("alice@example.com")
            c.rcpt("bob@example.org", ["NOTIFY=FAILURE,DELAY"])
            c.data(b"Subject: no success wanted\r\n\r\nx\r\n")
            # Nor is a report's success reported, whatever its NOTIFY says.
            c.mail("")
            c.rcpt("bob@example.org", ["NOTIFY=SUCCESS"])
            c.data(b"Subject: a bounce delivered\r\n\r\nx\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.log_text().count("status=bounced") < 2:
            time.sleep(0.1)
        assert p.log_text().count("status=bounced") == 2, p.log_text()
        hop.wait_for(2)
        time.sleep(1.5)
        assert [m.rcpt_tos for m in hop.messages] == [["bob@example.org"]] * 2, [m.data[:200] for m in hop.messages]
        assert "notification" not in p.log_text()
    finally:
        ctl.stop()


def test_relayed_report_when_the_next_hop_lacks_dsn(postern, sink, extra_sink):
    """RFC 3461 §5.2.2: aiosmtpd offers no DSN, so NOTIFY=SUCCESS cannot go on;
    Postern reports "relayed" for exactly the recipients that asked."""
    hop = extra_sink()
    port = free_port()
    p = postern(port, sink.port, callback_port=hop.port)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        c.mail("alice@example.com", ["ENVID=rel1", "RET=FULL"])
        c.rcpt("bob@example.org", ["NOTIFY=SUCCESS"])
        c.rcpt("carol@example.org")
        c.rcpt("dave@example.org", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;dave@example.org"])
        qid = queued_as(c.data(b"Subject: relay me\r\n\r\nthe body\r\n"))
    [delivered] = hop.wait_for(1)
    assert delivered.rcpt_tos == ["bob@example.org", "carol@example.org", "dave@example.org"]
    assert delivered.rcpt_options == []          # nothing of DSN for a hop that does not offer it
    [report] = sink.wait_for(1)
    assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
    ok = {"status": "2.0.0", "remote": "127.0.0.1", "diagnostic": "250 2.0.0 Ok: stored by e2e sink"}
    r = check_report(report.data, action="relayed", sender="alice@example.com", queue_id=qid, envid="rel1",
                     recipients={"bob@example.org": ok,
                                 "dave@example.org": {**ok, "orcpt": "rfc822; dave@example.org"}},
                     headers_only=True, why_headers="a report of this kind never returns the whole message.",
                     original_subject=b"relay me")
    assert "does not send delivery reports" in r.text
    assert b"the body" not in report.data
    assert "sender delivery status notification" in p.log_text()
    assert len(sink.settle(1.5)) == 1 and len(hop.messages) == 1


class Deferring(Sink):
    """A next hop that cannot take later@ and quiet@ now (450), and takes the rest."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.split("@")[0] in ("later", "quiet"):
            return f"450 4.2.0 <{address}>: Recipient address rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"


def test_one_delay_report_after_the_warning_time(postern, sink):
    hop, ctl = start_hop(Deferring())
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port,
                    settings={"Sender": {"DelayWarningTime": "2s", "RetryIntervals": "1s"}})
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("alice@example.com", ["ENVID=late1"])
            c.rcpt("later@example.org")                        # no NOTIFY: DELAY implied
            c.rcpt("quiet@example.org", ["NOTIFY=FAILURE"])    # no delay report wanted
            c.rcpt("now@example.org")
            qid = queued_as(c.data(b"Subject: slow\r\n\r\nx\r\n"))
        assert hop.wait_for(1)[0].rcpt_tos == ["now@example.org"]
        [report] = sink.wait_for(1, timeout=30)
        assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
        r = check_report(report.data, action="delayed", sender="alice@example.com", queue_id=qid, envid="late1",
                         recipients={"later@example.org": {
                             "status": "4.2.0", "remote": "127.0.0.1",
                             "diagnostic": "450 4.2.0 <later@example.org>: Recipient address rejected: try again later"}},
                         headers_only=True, why_headers="a report of this kind never returns the whole message.",
                         original_subject=b"slow")
        assert "YOU DO NOT NEED TO RESEND YOUR MESSAGE" in r.text and "It will be tried again until" in r.text
        assert "sender delay notification" in p.log_text()
        # Recorded in the spool: later attempts (the deferred queue is looked at every 5 s) send no other.
        assert re.search(r"\nwarned 0 \d[^\n]*\nend errors\n$", spool_tail(p.dir / "spool", qid, "\nwarned ")), \
            spool_tail(p.dir / "spool", qid, "")
        # posternctl shows it: the administrator sees who was told of the delay, and when.
        show = [str(postern_binary("posternctl")), "queue", "show", qid, "--config", str(p.config)]
        shown = subprocess.run(show, capture_output=True, text=True, timeout=20)
        assert re.search(r"recipient: +<later@example\.org>\n(?: .*\n)*? +delay DSN: +\d{4}-", shown.stdout), shown.stdout
        assert shown.stdout.count("delay DSN:") == 1, shown.stdout
        shown = json.loads(subprocess.run(show + ["--json"], capture_output=True, text=True, timeout=20).stdout)
        times = {r["address"]: r["delay_dsn_time"] for r in shown["recipients"]}
        assert isinstance(times["later@example.org"], int) and times["quiet@example.org"] is None, times
        seen = p.log_text().count("to=<later@example.org>")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and p.log_text().count("to=<later@example.org>") < seen + 2:
            time.sleep(0.2)
        assert p.log_text().count("to=<later@example.org>") >= seen + 2, "no further attempts"
        assert len(sink.settle(1)) == 1
        assert p.log_text().count("sender delay notification") == 1
    finally:
        ctl.stop()


def test_utf8_address_to_a_next_hop_without_smtputf8(postern, sink):
    """RFC 6531 §3.4: a non-ASCII address cannot go to a next hop that lacks
    SMTPUTF8 (aiosmtpd with SMTPUTF8 switched off): the recipient fails with
    5.6.7 and the sender gets a report; an ASCII recipient of the same message
    is delivered."""
    from aiosmtpd.controller import Controller
    hop = Sink()
    hop.port = free_port()
    ctl = Controller(hop, hostname="127.0.0.1", port=hop.port, decode_data=False, enable_SMTPUTF8=False)
    ctl.start()
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("alice@example.com", ["grüße@example.org"], "Subject: ü\r\n\r\nx\r\n".encode(),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        report = sink.wait_for(1)[0]
        assert b"Status: 5.6.7" in report.data and "grüße@example.org".encode() in report.data
        assert hop.messages == []
        assert "status=bounced (553 5.6.7" in p.log_text()
    finally:
        ctl.stop()
