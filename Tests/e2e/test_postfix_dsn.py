"""DSNs with a real Postfix on both sides (issue 10 item 5), in callback mode:

    smtplib --NOTIFY/ORCPT/ENVID/RET--> Postfix :A --content_filter--> Postern
        --inet:B@CLIENT-IP--> Postfix :B --relayhost--> sink

- Postfix :B without DSN refuses nobody@, defers later@ and accepts ok@
  (NOTIFY=SUCCESS): the sender gets exactly one report of each kind from
  Postern — failed, delayed (after a short DelayWarningTime, and not again
  after senderd is killed and restarted), relayed — each checked field by
  field, and all through [Sender] Address, never through :B.
- Postfix :B with DSN: Postern passes NOTIFY, ORCPT, ENVID and RET on and
  reports nothing itself; Postfix's own "relayed" report carries them back.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import time

from conftest import POSTFIX_HOSTNAME, Postfix, free_port, postern_binary
from dsnreport import check_report, parse_report, spool_tail
from test_crash import children

MESSAGE = b"Subject: three fates\r\nMessage-ID: <fates@example.com>\r\n\r\nthe whole body\r\n"


class NoDSNPostfix(Postfix):
    """Postfix whose return smtpd (:B) offers no DSN and refuses or defers some
    recipients by an access table."""

    def write_config(self) -> None:
        super().write_config()
        access = self.dir / "rcpt_access"
        access.write_text("nobody@example.org 550 5.1.1 User unknown\n"
                          "later@example.org 450 4.2.0 Try again later\n")
        master = (self.etc / "master.cf").read_text()
        old = "    -o smtpd_recipient_restrictions=permit_mynetworks,reject\n"
        assert old in master
        master = master.replace(old, f"    -o smtpd_recipient_restrictions=check_recipient_access,texthash:{access},"
                                     "permit_mynetworks,reject\n    -o smtpd_discard_ehlo_keywords=dsn\n")
        (self.etc / "master.cf").write_text(master)


def submit(port: int, rcpts: list[tuple[str, list[str]]], envid: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.e2e.test")
        assert c.has_extn("dsn")
        assert c.mail("alice@example.com", [f"ENVID={envid}", "RET=FULL"])[0] == 250
        for address, options in rcpts:
            assert c.rcpt(address, options)[0] == 250
        assert c.data(MESSAGE)[0] == 250


def wait_log(p, text: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while p.log_text().count(text) < count:
        assert time.monotonic() < deadline, f"{count} x {text!r} not in Postern's log within {timeout:.0f}s"
        time.sleep(0.1)


def test_one_report_of_each_kind(sink, postern):
    postern_binary("posternctl")
    filter_port = free_port()
    pf = NoDSNPostfix(sink.port, filter_port)
    try:
        pf.start()
        # Reports take [Sender] Address (straight to the sink here); checked mail goes back to :B.
        p = postern(filter_port, sink.port, callback_port=pf.return_port,
                    settings={"Sender": {"DelayWarningTime": "3s", "RetryIntervals": "1s"}})
        submit(pf.port, [("nobody@example.org", []), ("later@example.org", ["NOTIFY=DELAY,FAILURE"]),
                         ("ok@example.org", ["NOTIFY=SUCCESS"])], envid="pf-three")
        qid = pf.filter_deliveries(count=1)[0].group(1)
        sink.wait_for(4, timeout=60)   # ok@'s copy and three reports
        # The warning is on disk, and the report delivered and gone (a senderd killed while the
        # report itself is in flight may deliver that twice: SMTP's known window), before senderd
        # dies; the restarted one must not send another.
        assert "\nwarned " in spool_tail(p.dir / "spool", qid, "\nwarned ")
        warning = re.search(r"sender delay notification: (\S+)", p.log_text()).group(1)
        wait_log(p, f"{warning}: removed", 1)
        before = children(p.proc.pid)["senderd"]
        os.kill(before, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while children(p.proc.pid).get("senderd", before) == before:
            assert time.monotonic() < deadline, "senderd was not restarted"
            time.sleep(0.1)
        attempts = p.log_text().count("to=<later@example.org>")
        wait_log(p, "to=<later@example.org>", attempts + 2, timeout=40)
        messages = sink.settle(2)

        copies = [m for m in messages if m.mail_from == "alice@example.com"]
        assert [m.rcpt_tos for m in copies] == [["ok@example.org"]]
        reports = [m for m in messages if m.mail_from in ("", "<>")]
        assert len(reports) == len(messages) - 1, [m.mail_from for m in messages]
        by_action = {}
        for m in reports:
            assert m.rcpt_tos == ["alice@example.com"]
            # Straight from Postern: never through Postfix's return smtpd.
            assert not any(POSTFIX_HOSTNAME in v for v in m.header_values("Received")), m.header_values("Received")
            by_action.setdefault(parse_report(m.data).action, []).append(m.data)
        assert sorted((a, len(r)) for a, r in by_action.items()) == [("delayed", 1), ("failed", 1), ("relayed", 1)]

        common = {"sender": "alice@example.com", "queue_id": qid, "envid": "pf-three", "original_subject": b"three fates"}
        check_report(by_action["failed"][0], action="failed", **common, headers_only=False, recipients={
            "nobody@example.org": {"status": "5.1.1", "remote": "127.0.0.1", "orcpt": "rfc822; nobody@example.org",
                                   "diagnostic": "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"}})
        assert b"the whole body" in by_action["failed"][0]   # RET=FULL, small message
        check_report(by_action["delayed"][0], action="delayed", **common, headers_only=True,
                     why_headers="a report of this kind never returns the whole message.", recipients={
            "later@example.org": {"status": "4.2.0", "remote": "127.0.0.1", "orcpt": "rfc822; later@example.org",
                                  "diagnostic": "450 4.2.0 <later@example.org>: Recipient address rejected: Try again later"}})
        check_report(by_action["relayed"][0], action="relayed", **common, headers_only=True,
                     why_headers="a report of this kind never returns the whole message.", recipients={
            "ok@example.org": {"status": "2.0.0", "remote": "127.0.0.1", "orcpt": "rfc822; ok@example.org",
                               "diagnostic": "250 2.0.0 Ok: queued as "}})
        log = p.log_text()
        assert log.count("sender non-delivery notification") == 1
        assert log.count("sender delay notification") == 1
        assert log.count("sender delivery status notification") == 1
        # Postfix never saw a null sender: no report of Postern's went through :B, and it sent none itself.
        assert "from=<>" not in pf.log_text(), pf.log_text()[-2000:]
    finally:
        print(f"---- Postfix log:\n{pf.log_text()[-4000:]}")
        pf.cleanup()


def test_dsn_parameters_go_on_to_a_next_hop_with_dsn(sink, postfix, postern):
    """Postfix :B offers DSN: Postern passes NOTIFY, ORCPT and ENVID on and
    owes no report; Postfix relays to the sink (no DSN) and sends the
    "relayed" report itself, with what Postern passed on."""
    postern_binary("posternctl")
    filter_port = free_port()
    pf = postfix(filter_port)
    p = postern(filter_port, sink.port, callback_port=pf.return_port)
    submit(pf.port, [("ok@example.org", ["NOTIFY=SUCCESS", "ORCPT=rfc822;original+2Bok@example.org"])], envid="pf-pass")
    messages = sink.wait_for(2, timeout=60)
    messages = sink.settle(2)
    assert len(messages) == 2, [m.mail_from for m in messages]
    [copy] = [m for m in messages if m.mail_from == "alice@example.com"]
    assert copy.rcpt_tos == ["ok@example.org"]
    [report] = [m for m in messages if m.mail_from in ("", "<>")]
    r = parse_report(report.data)
    assert r.fields["Reporting-MTA"] == f"dns; {POSTFIX_HOSTNAME}"    # Postfix's, not Postern's
    assert r.fields["Original-Envelope-Id"] == "pf-pass"              # ENVID went on
    assert r.action == "relayed" and set(r.recipients) == {"ok@example.org"}
    orcpt = r.recipients["ok@example.org"]["Original-Recipient"]
    assert orcpt.replace(" ", "") == "rfc822;original+ok@example.org", orcpt   # ORCPT went on (Postfix writes no space)
    assert "notification" not in p.log_text()
