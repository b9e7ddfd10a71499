"""Notifications from the templates of [Notifier] TemplatesDir (issue 10): each party
that Notify names, resolved per recipient with AdminMail and FilterMail, gets a notice that
Python's email package reads field by field; never the null sender, never an answer to
automatic mail. And ScanTimeout resolved per recipient."""

from __future__ import annotations

import email
import email.policy
import email.utils
from pathlib import Path

from conftest import FILTER_MAIL, POSTERN_HOSTNAME, free_port
from scanners import EICAR_SIGNATURE
from test_scanning import behind_a_silent_clamd, eicar_message, message, send, timed_send

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"


def notifier(notify: str = "admin, sender, recipients") -> dict:
    return {
        "Scanner": {"AfterQueueFilters": "ClamAV"},
        "Notifier": {"TemplatesDir": str(TEMPLATES), "AdminMail": "postmaster@example.net", "Notify": f'"{notify}"'},
        # The recipients' quarantine notice names the address to reply to for a release.
        "Quarantine": {"ReleaseAddress": f"quarantine-release@{POSTERN_HOSTNAME}"},
    }


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def content(m) -> str:
    return m.get_content().replace("\r\n", "\n")


def check_common(m, to: str, queue_id: str, auto: str) -> None:
    """Fields every notice has, whoever it goes to."""
    assert m["From"].addresses[0].addr_spec == FILTER_MAIL
    assert [a.addr_spec for a in m["To"].addresses] == [to]
    assert email.utils.parsedate_to_datetime(str(m["Date"])) is not None
    assert str(m["Message-ID"]).endswith(f"@{POSTERN_HOSTNAME}>")
    assert m["Auto-Submitted"] == auto
    assert m["MIME-Version"] == "1.0"
    assert m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8"
    assert queue_id in content(m)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"):
        assert len(m.get_all(name)) == 1, name


def test_each_party_gets_its_notice(postern, sink, clamd):
    port = free_port()
    settings = notifier()
    settings["ClamAV"] = {"Address": clamd.address, "InfectedActions": "reject, quarantine, notify"}
    postern(port, sink.port, settings=settings,
            rules_first="to:carol@example.org cont AdminMail = security@example.net")
    original = eicar_message()
    msgid = parse(original)["Message-ID"]
    code, text = send(port, original, rcpts=("bob@example.org", "carol@example.org"))
    assert code == 250, text
    # The DSN to alice, and five notices: two administrators, the sender, each recipient.
    got = sink.wait_for(6)
    assert len(sink.settle(1.5)) == 6
    notices = [g for g in got if g.mail_from == FILTER_MAIL]
    by_rcpt = {tuple(n.rcpt_tos): parse(n.data) for n in notices}
    assert sorted(by_rcpt) == [("alice@example.com",), ("bob@example.org",), ("carol@example.org",),
                               ("postmaster@example.net",), ("security@example.net",)]
    queue_id = str(by_rcpt[("postmaster@example.net",)]["Subject"]).split()[-3]

    admin = by_rcpt[("postmaster@example.net",)]
    check_common(admin, "postmaster@example.net", queue_id, "auto-generated")
    assert str(admin["Subject"]) == f"[Postern] virus found: {queue_id} from <alice@example.com>"
    body = content(admin)
    assert f"The message contained a virus: {EICAR_SIGNATURE}" in body
    assert "<bob@example.org>: reject, quarantine, notify (clamav: infected: " in body
    assert "carol" not in body, "carol's administrator is another one"
    assert f"Message-ID:      {msgid}" in body and "Subject:         invoice" in body
    security = by_rcpt[("security@example.net",)]
    check_common(security, "security@example.net", queue_id, "auto-generated")
    assert "<carol@example.org>: reject" in content(security)

    to_sender = by_rcpt[("alice@example.com",)]
    check_common(to_sender, "alice@example.com", queue_id, "auto-replied")
    assert to_sender["In-Reply-To"] == msgid and to_sender["References"] == msgid
    assert str(to_sender["Subject"]) == "[Postern] Your message was not delivered: virus found"
    body = content(to_sender)
    assert "  To:         bob@example.org, carol@example.org\n" in body
    assert f"a virus ({EICAR_SIGNATURE}" in body and "write to postmaster@example.net" in body

    for who in ("bob@example.org", "carol@example.org"):
        m = by_rcpt[(who,)]
        check_common(m, who, queue_id, "auto-generated")
        assert m["In-Reply-To"] is None
        body = content(m)
        assert f"A message to you ({who})" in body and "Subject:    invoice" in body
        other = "carol" if who.startswith("bob") else "bob"
        assert other not in body, "a recipient's notice names no other recipient"


def test_no_notice_to_the_null_sender_or_to_automatic_mail(postern, sink, clamd):
    port = free_port()
    settings = notifier("sender, recipients")
    settings["ClamAV"] = {"Address": clamd.address, "InfectedActions": "discard, notify"}
    postern(port, sink.port, settings=settings)
    assert send(port, eicar_message(), sender="")[0] == 250
    auto = eicar_message().replace(b"Subject: invoice", b"Auto-Submitted: auto-generated\r\nSubject: invoice")
    assert send(port, auto)[0] == 250
    got = sink.wait_for(2)
    got = sink.settle(1.5)
    assert [g.rcpt_tos for g in got] == [["bob@example.org"], ["bob@example.org"]], got
    assert all(parse(g.data)["Auto-Submitted"] == "auto-generated" for g in got)


def test_a_quarantined_attachment_tells_the_recipient_with_its_own_template(postern, sink):
    port = free_port()
    settings = notifier("recipients")
    settings["Scanner"] = {"AfterQueueFilters": "Attachments"}
    settings["Attachments"] = {"BannedNames": "*.exe", "BannedActions": "reject, quarantine, notify"}
    postern(port, sink.port, settings=settings)
    m = message("Grüße aus Köln", attachments=[("setup.exe", b"MZ...", "application/octet-stream")])
    assert send(port, m)[0] == 250
    got = [g for g in sink.wait_for(2) if g.mail_from == FILTER_MAIL]
    [notice] = got
    n = parse(notice.data)
    assert str(n["Subject"]) == "[Postern] Quarantined for you: Grüße aus Köln"
    assert all(b < 0x80 for b in notice.data.split(b"\r\n\r\n", 1)[0]), "header fields are 7-bit (RFC 2047)"
    body = content(n)
    assert "  Subject:    Grüße aus Köln\n" in body and "attachments: banned: setup.exe" in body


def test_scan_timeout_per_recipient(postern, sink):
    with behind_a_silent_clamd(postern, sink, "6s", rules_first="to:impatient@example.org cont ScanTimeout = 2s") as port:
        code, _, quick = timed_send(port, message("clean"), rcpts=("impatient@example.org",))
        code2, _, slow = timed_send(port, message("clean"))
    assert code == 451 and code2 == 451
    assert quick < 3.5, f"reply after {quick:.1f}s, the recipient's ScanTimeout is 2s"
    assert slow >= 5, f"reply after {slow:.1f}s, [Scanner] ScanTimeout is 6s"
