"""8-bit mail through senderd to a next hop without 8BITMIME (RFC 6152 §3).

    smtplib --BODY=8BITMIME--> Postern --[Sender] Address--> private Postfix
        (smtpd_discard_ehlo_keywords = 8bitmime) --relayhost--> sink

Postern (proxy mode) must convert the 8-bit parts to quoted-printable or
base64, leave the 7-bit parts byte for byte, and refuse with 554 5.6.3 and a
DSN what cannot be converted (8-bit header fields). A Postfix that offers
8BITMIME gets the message unconverted.
"""

from __future__ import annotations

import email
import shutil
import smtplib

import pytest

from conftest import MAIN_CF, MASTER_CF, POSTFIX_HOSTNAME, Postfix, free_port, split_message, started_postfixes
from dsnreport import check_report

# The services a Postfix needs besides its smtpd, as conftest's instance has them.
SERVICES = MASTER_CF[MASTER_CF.index("cleanup   unix"):]


class RelayPostfix(Postfix):
    """A private Postfix with one smtpd that relays everything to the sink;
    with ``offer_8bitmime=False`` that smtpd does not announce 8BITMIME."""

    def __init__(self, sink_port: int, offer_8bitmime: bool) -> None:
        super().__init__(sink_port, filter_port=0)
        self.return_port = self.port     # the only listener; start() waits for both
        self.offer_8bitmime = offer_8bitmime

    def write_config(self) -> None:
        self.etc.mkdir()
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        (self.etc / "main.cf").write_text(MAIN_CF.format(
            dir=self.dir, hostname=POSTFIX_HOSTNAME, sink_port=self.sink_port))
        smtpd = f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
        if not self.offer_8bitmime:
            smtpd += "    -o smtpd_discard_ehlo_keywords=8bitmime\n"
        (self.etc / "master.cf").write_text(smtpd + SERVICES)


@pytest.fixture
def relay_postfix(sink):
    """Factory: ``relay_postfix(offer_8bitmime) -> RelayPostfix``, started."""
    yield from started_postfixes(lambda offer_8bitmime: RelayPostfix(sink.port, offer_8bitmime))


def ehlo_keywords(port: int) -> set[str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("probe.e2e.test")
        return {k.upper() for k in c.esmtp_features}


SEVEN_BIT_PART = (
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Disposition: inline\r\n"
    b"\r\n"
    b"This part is plain ASCII and must arrive byte for byte.   \r\n"
    b"=3D stays as it is, and so do trailing spaces.\r\n"
    b".a leading dot"
)
LATIN1_TEXT = "Caf\u00e9 cr\u00e8me, cr\u00eapes et g\u00e2teaux pour tout le monde.\r\n".encode("latin-1") * 3 + b"x" * 200
CYRILLIC_TEXT = "Привет! Это письмо написано по-русски.\r\n".encode("utf-8")


def multipart_message() -> bytes:
    return (
        b"From: Alice <alice@example.com>\r\n"
        b"To: <bob@example.org>\r\n"
        b"Subject: 8-bit parts\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"--=_b1\r\n" + SEVEN_BIT_PART + b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + LATIN1_TEXT + b"\r\n"
        b"--=_b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" + CYRILLIC_TEXT + b"\r\n"
        b"--=_b1--\r\n"
    )


def test_8bit_parts_are_converted_for_a_next_hop_without_8bitmime(postern, sink, relay_postfix):
    pf = relay_postfix(offer_8bitmime=False)
    assert "8BITMIME" not in ehlo_keywords(pf.port)
    port = free_port()
    p = postern(port, pf.port)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("alice@example.com", ["bob@example.org"], multipart_message(), mail_options=["BODY=8BITMIME"])
    got = sink.wait_for(1)[0]
    assert all(b < 128 for b in got.data), "8-bit octets reached the sink"
    assert b"--=_b1\r\n" + SEVEN_BIT_PART + b"\r\n--=_b1\r\n" in got.data
    assert b"Content-Type: multipart/mixed; boundary=\"=_b1\"\r\nContent-Transfer-Encoding: 7bit\r\n" in got.data

    msg = email.message_from_bytes(got.data)
    parts = [pt for pt in msg.walk() if not pt.is_multipart()]
    assert [pt["Content-Transfer-Encoding"] for pt in parts] == [None, "quoted-printable", "base64"]
    assert parts[1].get_payload(decode=True) == LATIN1_TEXT
    assert parts[2].get_payload(decode=True) == CYRILLIC_TEXT
    assert parts[1].get_payload(decode=True).decode("latin-1").startswith("Café crème")
    assert all(len(line) <= 76 for pt in parts[1:] for line in pt.get_payload().split("\r\n"))

    line = p.wait_log(r".*converted to 7bit MIME for a next hop without 8BITMIME \(2 parts: 1 quoted-printable, 1 base64\)").group(0)
    qid = line.split("]: ", 1)[1].split(":", 1)[0]
    p.wait_log(rf"{qid}: to=<bob@example\.org>.*status=sent")
    # Postfix got it without BODY=8BITMIME and as 7-bit.
    pf.wait_log(r"postfix/\S+\[\d+\]: \w+: to=<bob@example\.org>.*status=sent")


def test_8bit_header_is_refused_with_5_6_3_and_a_report(postern, sink, relay_postfix):
    pf = relay_postfix(offer_8bitmime=False)
    port = free_port()
    p = postern(port, pf.port)
    message = ("From: Alice <alice@example.com>\r\nTo: <bob@example.org>\r\n"
               "Subject: Grüße aus Köln\r\nMessage-ID: <h8@example.com>\r\n\r\nHallo\r\n").encode("utf-8")
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("alice@example.com", ["bob@example.org"], message, mail_options=["BODY=8BITMIME"])
    report = sink.wait_for(1)[0]
    assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
    assert all(b < 128 for b in report.data), "the report itself must cross the 7-bit hop"
    # Headers only: the whole message could not cross either.
    r = check_report(report.data, action="failed", sender="alice@example.com", queue_id=None, envid=None,
                     headers_only=True, original_subject="Subject: Grüße aus Köln".encode("utf-8"),
                     why_headers="it could not be converted to 7 bits for a mail system without 8BITMIME.",
                     recipients={"bob@example.org": {
                         "status": "5.6.3", "remote": "127.0.0.1",
                         "diagnostic": "554 5.6.3 next hop does not offer 8BITMIME"}})
    assert "8-bit octets in header field Subject" in r.recipients["bob@example.org"]["Diagnostic-Code"]
    assert "status=bounced (554 5.6.3 next hop does not offer 8BITMIME" in p.log_text()
    assert [m.rcpt_tos for m in sink.settle(1.5)] == [["alice@example.com"]]   # bob got nothing


def test_next_hop_with_8bitmime_gets_the_message_unconverted(postern, sink, relay_postfix):
    pf = relay_postfix(offer_8bitmime=True)
    assert "8BITMIME" in ehlo_keywords(pf.port)
    port = free_port()
    p = postern(port, pf.port)
    original = multipart_message()
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("alice@example.com", ["bob@example.org"], original, mail_options=["BODY=8BITMIME"])
    got = sink.wait_for(1)[0]
    fields, body = split_message(got.data)
    original_fields, original_body = split_message(original)
    assert body == original_body                       # byte for byte, 8-bit included
    assert all(f in fields for f in original_fields)
    assert "BODY=8BITMIME" in [o.upper() for o in got.mail_options]
    assert "converted to 7bit MIME" not in p.log_text()
