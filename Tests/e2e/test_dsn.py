"""Delivery status notifications (RFC 3464): a recipient the next hop refuses
for good gets a report, from the null sender, through [Sender] Address —
never through the callback port, never for a report, never against NOTIFY."""

from __future__ import annotations

import email
import smtplib
import time

from conftest import Sink, free_port


class Refusing(Sink):
    """A next hop (aiosmtpd) that has no mailbox for nobody@example.org."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"


def start_refusing():
    from aiosmtpd.controller import Controller
    hop = Refusing()
    hop.port = free_port()
    ctl = Controller(hop, hostname="127.0.0.1", port=hop.port, decode_data=False)
    ctl.start()
    return hop, ctl


def test_refused_recipient_gets_a_report(postern, sink):
    hop, ctl = start_refusing()
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("alice@example.com", ["ENVID=QQ42", "RET=HDRS"])
            c.rcpt("bob@example.org")
            c.rcpt("nobody@example.org", ["NOTIFY=FAILURE", "ORCPT=rfc822;nobody+2Bx@example.org"])
            c.data(b"Subject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nsecret body\r\n")
        assert hop.wait_for(1)[0].rcpt_tos == ["bob@example.org"]
        report = sink.wait_for(1)[0]                  # [Sender] Address, not the callback port
        assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
        msg = email.message_from_bytes(report.data)
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"
        assert msg["Auto-Submitted"] == "auto-replied"
        parts = list(msg.walk())
        status = [pt for pt in parts if pt.get_content_type() == "message/delivery-status"][0]
        text = status.as_string()
        assert "Original-Envelope-Id: QQ42" in text
        assert "Final-Recipient: rfc822; nobody@example.org" in text
        assert "Original-Recipient: rfc822; nobody+x@example.org" in text
        assert "Action: failed" in text and "Status: 5.1.1" in text
        assert "User unknown" in text
        headers = [pt for pt in parts if pt.get_content_type() == "text/rfc822-headers"]
        assert headers, "RET=HDRS: the headers only"
        assert b"secret body" not in report.data and b"Subject: hello" in report.data
        assert "status=bounced" in p.log_text() and "non-delivery notification" in p.log_text()
        time.sleep(0.5)
        assert len(sink.messages) == 1 and len(hop.messages) == 1
    finally:
        ctl.stop()


def test_no_report_when_not_wanted(postern):
    hop, ctl = start_refusing()       # both the callback and the default route: a report would land here
    try:
        port = free_port()
        p = postern(port, hop.port, callback_port=hop.port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.ehlo("client.example")
            c.mail("alice@example.com")
            c.rcpt("nobody@example.org", ["NOTIFY=NEVER"])
            c.data(b"Subject: never\r\n\r\nx\r\n")
            # A report itself (null sender) that fails is never reported on.
            c.mail("")
            c.rcpt("nobody@example.org")
            c.data(b"Subject: a bounce\r\n\r\nx\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.log_text().count("status=bounced") < 2:
            time.sleep(0.1)
        assert p.log_text().count("status=bounced") == 2, p.log_text()
        time.sleep(1.5)
        assert hop.messages == [], [m.data[:200] for m in hop.messages]
        assert "non-delivery notification" not in p.log_text()
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
