"""Postfix -> Postern -> Postfix -> sink, in callback mode.

    swaks/smtplib --SMTP--> Postfix :A --content_filter--> Postern :F
        --SenderAddress = inet:B@CLIENT-IP--> Postfix :B --relayhost--> sink

Postern must hand each message back byte-identical apart from the two
header fields it adds at the top: one ``Received:`` naming itself
("by <Hostname> (Postern) ... id <QUEUE-ID>") and one ``X-Postern-Guard:``.
Postfix must log Postern's reply ``250 2.0.0 Ok: queued as <QUEUE-ID>``.
"""

from __future__ import annotations

import re
import smtplib
import subprocess
import uuid
from pathlib import Path

from conftest import (POSTERN_HOSTNAME, POSTFIX_HOSTNAME, Received, field_name,
                      free_port, postern_binary, split_message)

SENDER = "alice@example.org"

# Lines that trip up SMTP codecs: dot-stuffing, whitespace, an mbox "From ",
# the longest legal line (998 octets), empty lines at the end.
TRICKY_BODY = (
    b"Hello from the Postern e2e suite.\r\n"
    b".\r\n"
    b"..\r\n"
    b".leading dot\r\n"
    b"..two leading dots\r\n"
    b" leading space\r\n"
    b"trailing spaces   \r\n"
    b"tab\there\r\n"
    b"From the mbox point of view this line is special\r\n"
    b"=3D is not quoted-printable here\r\n"
    + b"x" * 998 + b"\r\n"
    + b"\r\n"
    b"\r\n"
    b"last line\r\n"
    b"\r\n"
)


def make_message(subject: str, to: list[str], body: bytes, extra: bytes = b"") -> bytes:
    mid = uuid.uuid4().hex
    head = (
        b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        b"From: Alice <" + SENDER.encode() + b">\r\n"
        b"To: " + ", ".join(f"<{r}>" for r in to).encode() + b"\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + mid.encode() + b"@example.org>\r\n"
        b"X-Folded: first part,\r\n\tsecond part\r\n"
        + extra
    )
    return head + b"\r\n" + body


def swaks(tmp_path: Path, port: int, rcpts: list[str], message: bytes,
          ehlo: str = "client.e2e.test") -> str:
    # swaks sends the file, then CRLF, then ".": drop the message's last CRLF
    # so that exactly `message` goes over the wire.
    assert message.endswith(b"\r\n")
    data = tmp_path / f"msg-{uuid.uuid4().hex}.eml"
    data.write_bytes(message[:-2])
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--ehlo", ehlo, "--from", SENDER,
         "--to", ",".join(rcpts), "--data", f"@{data}", "--timeout", "60"],
        capture_output=True, timeout=120)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, f"swaks failed ({r.returncode}):\n{out[-3000:]}"
    return out


def callback_setup(sink, postfix, postern, protocol: str = "smtp"):
    """Postfix with its content filter pointing at a Postern that returns
    checked mail to Postfix's port B."""
    postern_binary("posternctl")     # fail at once, before starting Postfix
    filter_port = free_port()
    pf = postfix(filter_port, filter_protocol=protocol)
    pt = postern(receiver_port=filter_port, sender_port=pf.return_port,
                 callback_port=pf.return_port, protocol=protocol)
    return pf, pt


def postern_received(msg: Received) -> list[str]:
    """Received: fields that Postern added (it names itself "Postern")."""
    return [v for v in msg.header_values("Received") if re.search(r"\bPostern\b", v)]


def check_transparent(msg: Received, sent: bytes, queue_id: str) -> None:
    """The message at the sink is `sent` plus trace fields, byte for byte."""
    sent_fields, sent_body = split_message(sent)
    got_fields, got_body = split_message(msg.data)

    assert got_body == sent_body, "body changed on the way through Postern"

    # Headers: only Received: and X-Postern-Guard: may have been added, and
    # nothing else may have changed (order, folding, whitespace).
    added = {"received", "x-postern-guard"}
    assert [f for f in got_fields if field_name(f) not in added] == sent_fields

    mine = postern_received(msg)
    assert len(mine) == 1, f"expected exactly one Received: from Postern, got {mine!r}"
    assert POSTERN_HOSTNAME in mine[0], f"Postern's Received: lacks its Hostname: {mine[0]!r}"
    assert re.search(rf"(?<![\w.-]){re.escape(queue_id)}(?![\w-])", mine[0]), (
        f"Postern's Received: lacks its queue id {queue_id}: {mine[0]!r}")

    guards = msg.header_values("X-Postern-Guard")
    assert len(guards) == 1, f"expected exactly one X-Postern-Guard:, got {guards!r}"
    assert guards[0], "X-Postern-Guard: is empty"

    # Trace fields go on top (RFC 5321 section 4.4): Postfix B's Received:,
    # then Postern's, then Postfix A's; three in all.
    received = msg.header_values("Received")
    assert len(received) == 3, f"expected 3 Received: fields, got {received!r}"
    assert f"by {POSTFIX_HOSTNAME} (Postfix)" in received[0]
    assert received[1] == mine[0], f"Postern's Received: is not between Postfix's: {received!r}"
    assert f"by {POSTFIX_HOSTNAME} (Postfix)" in received[2]


def test_roundtrip_single_recipient(sink, postfix, postern, tmp_path):
    pf, pt = callback_setup(sink, postfix, postern)
    rcpt = "bob@example.net"
    message = make_message("roundtrip", [rcpt], TRICKY_BODY)

    swaks(tmp_path, pf.port, [rcpt], message)

    [msg] = sink.wait_for(1, timeout=60)
    assert msg.mail_from == SENDER
    assert msg.rcpt_tos == [rcpt]
    [delivery] = pf.filter_deliveries(count=1)
    queue_id = delivery.group(1)
    assert f"to=<{rcpt}>" in delivery.group(0)
    check_transparent(msg, message, queue_id)
    assert queue_id in pt.log_text(), "Postern's log never mentions the queue id"

    assert len(sink.settle(1.5)) == 1, "message delivered more than once"


def test_roundtrip_multiple_recipients(sink, postfix, postern, tmp_path):
    pf, pt = callback_setup(sink, postfix, postern)
    rcpts = ["bob@example.net", "carol@example.com", "dave@example.net"]
    message = make_message("three recipients", rcpts, TRICKY_BODY)

    swaks(tmp_path, pf.port, rcpts, message)

    deliveries = pf.filter_deliveries(count=len(rcpts), timeout=60)
    queue_ids = {d.group(1) for d in deliveries}
    assert len(queue_ids) == 1, f"one transaction should get one queue id: {queue_ids}"
    [queue_id] = queue_ids
    for rcpt in rcpts:
        assert any(f"to=<{rcpt}>" in d.group(0) for d in deliveries), rcpt

    # Every recipient exactly once; Postern may split the envelope, Postfix
    # normally does not.
    sink.wait_for_recipients(len(rcpts), timeout=60)
    msgs = sink.settle(1.5)
    got = [r for m in msgs for r in m.rcpt_tos]
    assert sorted(got) == sorted(rcpts), f"recipients at the sink: {got}"
    for msg in msgs:
        assert msg.mail_from == SENDER
        check_transparent(msg, message, queue_id)


def test_roundtrip_8bit_body(sink, postfix, postern):
    """BODY=8BITMIME must survive Postern both ways and the 8-bit octets must
    not be converted (e.g. to quoted-printable)."""
    pf, pt = callback_setup(sink, postfix, postern)
    rcpt = "bob@example.net"
    body = (
        b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, \xe2\x82\xac 100 \xe2\x9c\x93\r\n"
        b"Latin-1 octets: caf\xe9 na\xefve \xa9\r\n"
        b"High octets \x80\x9f\xff and a DEL \x7f\r\n"
        b".\xc3\xa9 leading dot before 8-bit\r\n"
        + TRICKY_BODY
    )
    # No MIME headers on purpose: with "Content-Transfer-Encoding: 8bit"
    # Postfix B would infer 8BITMIME by itself, so BODY=8BITMIME at the sink
    # proves that Postern passed the parameter on.
    message = make_message("8bit", [rcpt], body)

    # swaks 20201014 (Debian 12) cannot add MAIL FROM parameters; smtplib can.
    with smtplib.SMTP("127.0.0.1", pf.port, local_hostname="client.e2e.test", timeout=60) as c:
        c.ehlo()
        assert c.has_extn("8bitmime")
        c.sendmail(SENDER, [rcpt], message, mail_options=["BODY=8BITMIME"])

    [msg] = sink.wait_for(1, timeout=60)
    [delivery] = pf.filter_deliveries(count=1)
    check_transparent(msg, message, delivery.group(1))
    assert "BODY=8BITMIME" in [o.upper() for o in msg.mail_options], (
        f"BODY=8BITMIME lost on the way (sink saw MAIL FROM options {msg.mail_options})")


def test_xforward_passed_back_to_postfix(sink, postfix, postern, tmp_path):
    """Postfix's return smtpd offers XFORWARD to loopback; Postern must pass
    on what Postfix's filter transport sent it, so that Postfix B logs the
    original queue id and client (FILTER_README, "smtp_send_xforward_command")."""
    pf, pt = callback_setup(sink, postfix, postern)
    rcpt = "bob@example.net"
    out = swaks(tmp_path, pf.port, [rcpt], make_message("xforward", [rcpt], b"xforward\r\n"))
    orig_id = re.search(r"<-  250 .*queued as (\w+)", out).group(1)   # Postfix A's queue id
    sink.wait_for(1, timeout=60)
    # Postfix logs XFORWARD's IDENT and NAME/ADDR as orig_queue_id/orig_client.
    pf.wait_log(rf"postfix/smtpd\[\d+\]: \w+: client=\S+, orig_queue_id={orig_id}, "
                rf"orig_client=localhost\[127\.0\.0\.1\]", timeout=5)


def test_roundtrip_lmtp(sink, postfix, postern, tmp_path):
    """Postfix's lmtp client to Postern (Address = lmtp:inet:...); one reply
    per recipient, then back to Postfix over SMTP."""
    pf, pt = callback_setup(sink, postfix, postern, protocol="lmtp")
    rcpts = ["bob@example.net", "carol@example.com"]
    message = make_message("lmtp", rcpts, TRICKY_BODY)

    swaks(tmp_path, pf.port, rcpts, message)

    deliveries = pf.filter_deliveries(count=len(rcpts), timeout=60)
    queue_ids = {d.group(1) for d in deliveries}
    assert len(queue_ids) == 1, f"one transaction should get one queue id: {queue_ids}"
    [queue_id] = queue_ids
    sink.wait_for_recipients(len(rcpts), timeout=60)
    msgs = sink.settle(1.5)
    got = [r for m in msgs for r in m.rcpt_tos]
    assert sorted(got) == sorted(rcpts), f"recipients at the sink: {got}"
    for msg in msgs:
        check_transparent(msg, message, queue_id)
