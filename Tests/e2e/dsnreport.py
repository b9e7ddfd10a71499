"""Reading and checking Postern's delivery status notifications (RFC 3464 in
an RFC 6522 multipart/report) with Python's `email` package, field by field:
every test that gets a report checks all of it with `check_report`."""

from __future__ import annotations

import email
import email.utils
import time
from dataclasses import dataclass
from email.message import Message

from conftest import POSTERN_HOSTNAME

SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "relayed": "Successful Mail Delivery Report",
    "delivered": "Successful Mail Delivery Report",
}

# The fields Postern writes, in RFC 3464's two groups; nothing else may appear.
PER_MESSAGE = {"Reporting-MTA", "X-Postern-Queue-ID", "Original-Envelope-Id", "Arrival-Date"}
PER_RECIPIENT = {"Final-Recipient", "Original-Recipient", "Action", "Status", "Remote-MTA",
                 "Diagnostic-Code", "Will-Retry-Until"}


@dataclass
class Report:
    msg: Message
    text: str                       # the human-readable part
    fields: Message                 # the per-message fields
    recipients: dict[str, Message]  # Final-Recipient address -> its fields
    returned: Message               # the third part (message/rfc822 or text/rfc822-headers)

    @property
    def action(self) -> str:
        actions = {r["Action"] for r in self.recipients.values()}
        assert len(actions) == 1, f"one kind of report per message, got {actions}"
        return actions.pop()


def parse_report(raw: bytes) -> Report:
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts[:2]] == ["text/plain", "message/delivery-status"], \
        [p.get_content_type() for p in parts]
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    blocks = parts[1].get_payload()
    recipients = {}
    for block in blocks[1:]:
        kind, _, address = block["Final-Recipient"].partition(";")
        assert kind.strip() == "rfc822", block["Final-Recipient"]
        recipients[address.strip()] = block
    return Report(msg, parts[0].get_payload(decode=True).decode("utf-8"), blocks[0], recipients, parts[2])


def check_report(raw: bytes, *, action: str, sender: str, queue_id: str | None, envid: str | None,
                 recipients: dict[str, dict[str, str]], headers_only: bool, why_headers: str = "",
                 original_subject: bytes = b"") -> Report:
    """Checks every field of one report. `recipients` maps each reported address to
    its expected fields: `status`, `diagnostic` (a substring of the Diagnostic-Code
    after its type), `type` (`smtp` or `x-postern`), `remote` (host or None),
    `orcpt` (the Original-Recipient, or None)."""
    r = parse_report(raw)
    m = r.msg
    # The message header: from the mailer daemon to the sender, auto-replied (RFC 3834).
    assert m["From"] == f"Mail Delivery System <MAILER-DAEMON@{POSTERN_HOSTNAME}>", m["From"]
    assert m["To"] == f"<{sender}>", m["To"]
    assert m["Subject"] == SUBJECTS[action], m["Subject"]
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["MIME-Version"] == "1.0"
    assert email.utils.parsedate_to_datetime(m["Date"]) is not None
    assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith(f"@{POSTERN_HOSTNAME}>"), m["Message-ID"]
    # Per-message fields.
    assert set(r.fields.keys()) <= PER_MESSAGE, set(r.fields.keys())
    assert r.fields["Reporting-MTA"] == f"dns; {POSTERN_HOSTNAME}"
    if queue_id is not None:
        assert r.fields["X-Postern-Queue-ID"] == queue_id, r.fields["X-Postern-Queue-ID"]
    assert r.fields["Original-Envelope-Id"] == envid
    assert email.utils.parsedate_to_datetime(r.fields["Arrival-Date"]) is not None
    # Per-recipient fields.
    assert set(r.recipients) == set(recipients), (set(r.recipients), set(recipients))
    for address, want in recipients.items():
        block = r.recipients[address]
        assert set(block.keys()) <= PER_RECIPIENT, set(block.keys())
        assert block["Action"] == action
        assert block["Status"] == want["status"], (address, block["Status"])
        assert block["Original-Recipient"] == want.get("orcpt"), (address, block["Original-Recipient"])
        remote = want.get("remote")
        assert block["Remote-MTA"] == (f"dns; {remote}" if remote else None), (address, block["Remote-MTA"])
        kind, _, diagnostic = block["Diagnostic-Code"].partition(";")
        assert kind == want.get("type", "smtp"), (address, block["Diagnostic-Code"])
        assert want["diagnostic"] in diagnostic, (address, block["Diagnostic-Code"])
        if action == "delayed":
            assert email.utils.parsedate_to_datetime(block["Will-Retry-Until"]) is not None
        else:
            assert block["Will-Retry-Until"] is None
        # The text names the recipient and the reason.
        assert f"<{address}>: {diagnostic.strip()}" in r.text, (address, r.text)
    # What is returned, and the text says so truthfully.
    if headers_only:
        assert r.returned.get_content_type() == "text/rfc822-headers"
        assert f"Only the header section of your message is attached below: {why_headers}" in r.text, r.text
        assert "Your message is attached below." not in r.text
        returned = r.returned.get_payload(decode=True)
        assert b"\r\n\r\n" not in returned.rstrip(b"\r\n") and original_subject in returned
    else:
        assert r.returned.get_content_type() == "message/rfc822"
        assert "Your message is attached below." in r.text and "header section" not in r.text
        inner = r.returned.get_payload()[0]
        assert original_subject.decode() in inner["Subject"]
    return r


def spool_tail(spool, qid: str, needle: str, timeout: float = 10.0) -> str:
    """The end of queue file `qid` once it holds `needle`, wherever senderd has
    it (between attempts it moves between outgoing/ and deferred/)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        for state in ("deferred", "outgoing"):
            try:
                text = (spool / state / qid).read_text(errors="replace")
            except FileNotFoundError:
                continue
            if needle in text:
                return text[-600:]
        time.sleep(0.05)
    return text[-600:]
