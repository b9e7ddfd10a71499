"""Scanning with the real scanners (DESIGN.md §4-§5): clamd, spamd and rspamd
started offline by the tests, the headers filter and the attachments filter;
verdicts before the queue (the reply to end-of-data) and after it (a DSN),
per-recipient LMTP replies, the quarantine and `posternctl rules test`."""

from __future__ import annotations

import contextlib
import email
import io
import re
import smtplib
import socket
import subprocess
import threading
import time
import zipfile
from email.message import EmailMessage

import pytest

from conftest import daemon_pids, free_port, postern_binary
from dsnreport import check_report
from scanners import EICAR, EICAR_SIGNATURE, GTUBE, start_clamd

# clamd, spamd and rspamd are session fixtures from scanners.py (registered in conftest.py).


def message(subject: str = "hello", body: str = "Hello there.\n", attachments=()) -> bytes:
    m = EmailMessage()
    m["From"] = "alice@example.com"
    m["To"] = "bob@example.org"
    m["Subject"] = subject
    m["Message-ID"] = f"<{time.monotonic_ns()}@example.com>"
    m.set_content(body)
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


def eicar_message() -> bytes:
    return message("invoice", attachments=[("eicar.com.txt", EICAR, "application/octet-stream")])


def dot_stuff(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", data)


def send(port: int, data: bytes, rcpts=("bob@example.org",), sender="alice@example.com"):
    """Sends one message; returns (code, text) of the end-of-data reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("client.example")
        c.mail(sender)
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (code, text)
        c.putcmd("data")
        code, text = c.getreply()
        assert code == 354
        c.send(dot_stuff(data) + b"\r\n.\r\n")
        return c.getreply()


def spool_files(p) -> list[str]:
    spool = p.dir / "spool"
    return sorted(str(f.relative_to(spool)) for state in ("incoming", "scan", "outgoing", "deferred", "corrupt")
                  for f in (spool / state).glob("*"))


def ctl(p, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(postern_binary("posternctl")), *args, "--config", str(p.config)],
                          capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ ClamAV

def test_eicar_is_refused_before_the_queue_and_a_clean_message_passes(postern, sink, clamd):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}})
    code, text = send(port, eicar_message())
    assert code == 550, text
    assert text.startswith(b"5.7.1 Message rejected: clamav: infected: " + EICAR_SIGNATURE.encode()), text
    code, text = send(port, message("clean"))
    assert code == 250, text
    got = sink.wait_for(1)
    assert len(sink.settle(1.0)) == 1, "the infected message must not be delivered"
    assert b"Subject: clean" in got[0].data and b"X-Postern-Skipped" not in got[0].data
    assert spool_files(p) == [], "a refused message leaves nothing in the spool"
    log = p.log_text()
    assert "verdict=reject" in log and "findings=clamav=infected" in log


@pytest.mark.parametrize("tcp", [False, True], ids=["local-fildes", "inet-instream"])
def test_clamd_gets_the_message_as_a_file_on_its_socket_and_as_a_stream_over_tcp(postern, sink, tmp_path, tcp):
    """To a clamd on a unix socket the message goes as a descriptor of an
    in-memory file (zFILDES: clamd writes no temporary file of its own); over
    TCP as a stream (zINSTREAM). clamd's log names which it scanned, the file
    by the queue id. Both find EICAR inside a MIME attachment and pass a
    clean message."""
    with start_clamd(tmp_path, tcp=tcp) as clamd:
        port = free_port()
        postern(port, sink.port, callback_port=sink.port,
                settings={"Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}})
        attached = EmailMessage()
        attached["From"], attached["To"], attached["Subject"] = "a@example.com", "b@example.org", "attached"
        attached.set_content("see the attachment")
        attached.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
        code, text = send(port, attached.as_bytes().replace(b"\n", b"\r\n"))
        assert code == 550, text
        assert EICAR_SIGNATURE.encode() in text, text
        code, text = send(port, message("clean"))
        assert code == 250, text
        assert sink.wait_for(1)
        found = [line for line in clamd.log.read_text().splitlines() if "FOUND" in line]
        assert len(found) == 1, found
        if tcp:
            assert "instream(" in found[0], found
        else:   # the in-memory file is named after the queue id
            assert re.search(r"/memfd:postern-[0-9A-Z]{20} \(deleted\): " + EICAR_SIGNATURE, found[0]), found


@pytest.mark.parametrize("filters", ["ClamAV", "ClamAV, Attachments"])
def test_scannerd_holds_a_large_message_only_for_a_plugin_that_parses_it(postern, sink, clamd, filters):
    """clamd gets a message from its spool file: the kernel copies it into the in-memory file
    clamd scans, so a 20 MB message scanned before the queue by ClamAV alone leaves
    scannerd's peak resident memory (VmHWM) where it was. The attachments filter parses the
    whole: with it, scannerd holds the message once (about 20 MB), not a read buffer and a
    copy (40 MB), and clamd still gets it from the file. Sixteen sessions of large
    messages at once take sixteen times that."""
    size = 20 * 1024 * 1024
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Receiver": {"MaxMessageSize": "30m"}, "Attachments": {"MaxSize": "30m"},
                          "Scanner": {"BeforeQueueFilters": filters}, "ClamAV": {"Address": clamd.address}})
    code, text = send(port, message("warm-up"))   # threads, the clamd link and the rules are set up
    assert code == 250, text
    scannerd = daemon_pids(p.proc.pid)["scannerd"]

    def peak_kib() -> int:
        with open(f"/proc/{scannerd}/status") as status:
            return next(int(row.split()[1]) for row in status if row.startswith("VmHWM:"))

    before = peak_kib()
    line = b"x" * 998 + b"\r\n"
    code, text = send(port, message("large", body="large\n") + line * (size // len(line)))
    assert code == 250, text
    assert len(sink.wait_for(2, timeout=120)) == 2
    grown = (peak_kib() - before) * 1024
    low, high = (0.9, 1.5) if "Attachments" in filters else (0, 0.1)
    assert size * low <= grown < size * high, f"scannerd's peak grew by {grown / 2**20:.1f} MiB for a 20 MiB message"
    assert p.log_text().count("clamav=clean") == 2, p.log_text()[-3000:]   # clamd scanned both


def test_lmtp_answers_each_recipient_by_its_own_rules(postern, sink, clamd):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, protocol="lmtp",
            settings={"Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}},
            rules_first='to:abuse@example.org cont clamav/InfectedActions = "pass, add-header(X-Virus: yes)"')
    with smtplib.LMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        c.mail("alice@example.com")
        c.rcpt("bob@example.org")
        c.rcpt("abuse@example.org")
        c.putcmd("data")
        assert c.getreply()[0] == 354
        c.send(dot_stuff(eicar_message()) + b"\r\n.\r\n")
        first, second = c.getreply(), c.getreply()
    assert first[0] == 550 and b"infected" in first[1], first
    assert second[0] == 250, second
    got = sink.wait_for(1)[0]
    assert got.rcpt_tos == ["abuse@example.org"]
    assert b"\r\nX-Virus: yes\r\n" in got.data


def test_after_the_queue_a_virus_is_reported_by_dsn_and_quarantined(postern, sink, clamd):
    port, hop = free_port(), free_port()
    p = postern(port, sink.port, settings={
        "Scanner": {"AfterQueueFilters": "ClamAV"},
        "ClamAV": {"Address": clamd.address, "InfectedActions": "reject, quarantine, notify"},
        "Notifier": {"AdminMail": "postmaster@example.net"}})
    code, text = send(port, eicar_message())
    assert code == 250, text
    got = sink.wait_for(2)
    by_rcpt = {m.rcpt_tos[0]: m for m in got}
    report = by_rcpt["alice@example.com"]
    assert report.mail_from in ("", "<>")
    assert b"Status: 5.7.1" in report.data and EICAR_SIGNATURE.encode() in report.data
    note = by_rcpt["postmaster@example.net"]
    assert b"Subject: Postern: message" in note.data and b"clamav: infected" in note.data
    assert all(m.rcpt_tos != ["bob@example.org"] for m in sink.settle(1.0)), "the virus was delivered"

    listing = ctl(p, "quarantine", "list")
    assert listing.returncode == 0, listing.stderr
    qid = listing.stdout.split()[0]
    assert "<bob@example.org>  clamav: infected: " + EICAR_SIGNATURE in listing.stdout
    shown = ctl(p, "quarantine", "show", qid)
    assert "blocked:        <bob@example.org>: clamav: infected" in shown.stdout, shown.stdout
    assert "eicar.com.txt" in ctl(p, "quarantine", "show", "--body", qid).stdout
    assert "reason 0 clamav: infected" in ctl(p, "quarantine", "show", "--raw", qid).stdout
    released = ctl(p, "quarantine", "release", "--delete", qid)
    assert released.returncode == 0 and f"{qid}: released from the quarantine as " in released.stderr, released
    delivered = sink.wait_for(3)[-1]
    assert delivered.rcpt_tos == ["bob@example.org"] and b"eicar.com.txt" in delivered.data
    assert "0 messages" in ctl(p, "quarantine", "list").stdout


def test_a_scanner_that_is_down_tempfails_never_passes(postern, sink, tmp_path):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": f"local:{tmp_path}/none.sock"}})
    code, text = send(port, message("clean"))
    assert code == 451 and text == b"4.7.1 Try again later: clamav: scanner temporarily unavailable", text
    assert sink.settle(1.0) == []


def test_processing_errors_pass_lets_mail_through_unscanned(postern, sink, tmp_path):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Receiver": {"ProcessingErrors": "pass, add-header(X-Unscanned: yes)"},
                      "Scanner": {"AfterQueueFilters": "ClamAV"}, "ClamAV": {"Address": f"local:{tmp_path}/none.sock"}})
    assert send(port, message("clean"))[0] == 250
    got = sink.wait_for(1)[0]
    assert b"\r\nX-Unscanned: yes\r\n" in got.data


class Silent:
    """A scanner that accepts connections and never answers: no real clamd can
    be made to hang on purpose, so this test double stands in for one."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@contextlib.contextmanager
def behind_a_silent_clamd(postern, sink, scan_timeout: str, rules_first: str = ""):
    """Postern scanning before the queue with a ClamAV that never answers; yields its port."""
    silent = Silent()
    try:
        port = free_port()
        postern(port, sink.port, callback_port=sink.port, rules_first=rules_first, settings={
            "Scanner": {"BeforeQueueFilters": "ClamAV", "ScanTimeout": scan_timeout},
            "ClamAV": {"Address": f"inet:{silent.port}@127.0.0.1", "Timeout": "10m"}})
        yield port
    finally:
        silent.close()


def timed_send(port: int, data: bytes, **kwargs):
    """send(), and how long the reply took in seconds."""
    started = time.monotonic()
    code, text = send(port, data, **kwargs)
    return code, text, time.monotonic() - started


def test_the_reply_comes_within_scan_timeout(postern, sink):
    with behind_a_silent_clamd(postern, sink, "3s") as port:
        code, text, elapsed = timed_send(port, message("clean"))
        assert code == 451, text
        assert elapsed < 4.5, f"reply after {elapsed:.1f}s, ScanTimeout is 3s"


# ------------------------------------------------------------------ spam

@pytest.mark.parametrize("which", ["spamassassin", "rspamd"])
def test_gtube_is_tagged_or_refused_per_config(postern, sink, request, which):
    server = request.getfixturevalue("spamd" if which == "spamassassin" else "rspamd")
    section = "SpamAssassin" if which == "spamassassin" else "Rspamd"
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Scanner": {"BeforeQueueFilters": section},
                      section: {"Address": server.address, "UnconditionalSpamThreshold": "10", "Timeout": "30s"}},
            rules_first=f'to:tagged@example.org cont {which}/UnconditionalSpamActions = "pass, add-header(X-Tagged: spam)"')
    gtube = message("buy now", body="This is spam.\n" + GTUBE.decode() + "\n")
    code, text = send(port, gtube)
    assert code == 550 and text.startswith(f"5.7.1 Message rejected: {which}: ".encode()), text
    assert send(port, gtube, rcpts=("tagged@example.org",))[0] == 250
    assert send(port, message("ham"))[0] == 250
    got = sink.wait_for(2)
    tagged = next(m for m in got if b"Subject: buy now" in m.data)
    ham = next(m for m in got if b"Subject: ham" in m.data)
    assert b"\r\nX-Spam-Flag: YES\r\n" in tagged.data and b"\r\nX-Tagged: spam\r\n" in tagged.data
    assert b"X-Spam-Status: Yes, score=" in tagged.data
    assert b"X-Spam-Status: No, score=" in ham.data and b"X-Spam-Flag" not in ham.data


# ------------------------------------------------------------------ headers, attachments

def test_headers_filter_first_match_wins(postern, sink, clamd):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "HeadersFilter, ClamAV"}, "ClamAV": {"Address": clamd.address},
        "HeadersFilter": {"Rule": "accept X-Lab ^eicar-ok$\nRule = reject Subject ^\\[SPAM\\]"}})
    code, text = send(port, message("[SPAM] offer"))
    assert code == 550 and b"headersfilter: reject: header:Subject matches" in text, text
    lab = eicar_message().replace(b"Subject: invoice", b"X-Lab: eicar-ok\r\nSubject: invoice")
    assert send(port, lab)[0] == 250, "accept is an explicit pass: clamav's later finding is not looked at"
    assert sink.wait_for(1)[0].data.count(b"X-Lab: eicar-ok") == 1


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_attachments_banned_inside_nested_zips_and_archive_bombs(postern, sink):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "Attachments"},
        "Attachments": {"BannedNames": "*.exe, *.scr", "MaxArchiveDepth": "3"}})
    inner = zip_bytes({"readme.txt": b"hi", "tools/setup.exe": b"MZ" + b"\0" * 100})
    nested = zip_bytes({"level2.zip": zip_bytes({"level3.zip": inner})})
    code, text = send(port, message("docs", attachments=[("docs.zip", nested, "application/zip")]))
    assert code == 550 and b"docs.zip/level2.zip/level3.zip/tools/setup.exe" in text, text
    bomb = zip_bytes({"zeros.bin": b"\0" * (20 << 20)})
    code, text = send(port, message("bomb", attachments=[("data.zip", bomb, "application/zip")]))
    assert code == 550 and b"attachments: " in text and b"data.zip" in text, text
    clean = zip_bytes({"report.pdf": b"%PDF-1.4 just text"})
    assert send(port, message("report", attachments=[("report.zip", clean, "application/zip")]))[0] == 250
    assert len(sink.wait_for(1)) == 1


# ------------------------------------------------------------------ rules test

def test_rules_test_shows_the_findings_and_the_actions(postern, sink, clamd, tmp_path):
    port = free_port()
    p = postern(port, sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}},
        rules_first='block:regex:^Eicar && to:abuse@example.org cont clamav/InfectedActions = "discard, quarantine"')
    eml = tmp_path / "eicar.eml"
    eml.write_bytes(eicar_message())
    r = ctl(p, "rules", "test", "--from", "alice@example.com", "--rcpt", "bob@example.org", "--rcpt", "abuse@example.org", str(eml))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"clamav: infected [{EICAR_SIGNATURE}" in out
    bob, abuse = out.split("recipient <abuse@example.org>")
    assert "clamav/InfectedActions = reject  ([ClamAV] InfectedActions)" in bob and "actions: reject" in bob
    assert "clamav/InfectedActions = discard, quarantine  (rule)" in abuse and "actions: discard, quarantine" in abuse


def test_redirect_sends_the_recipients_copy_elsewhere(postern, sink):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"AfterQueueFilters": "HeadersFilter"},
        "HeadersFilter": {"Rule": "reject Subject ^review", "RejectActions": "pass, redirect(review@example.net|audit@example.net)"}})
    assert send(port, message("review this"), rcpts=("bob@example.org", "carol@example.org"))[0] == 250
    assert send(port, message("plain"), rcpts=("bob@example.org",))[0] == 250
    got = sink.wait_for_recipients(5)
    redirected = sorted(r for m in got if b"Subject: review this" in m.data for r in m.rcpt_tos)
    assert redirected == ["audit@example.net", "audit@example.net", "review@example.net", "review@example.net"]
    assert [m.rcpt_tos for m in got if b"Subject: plain" in m.data] == [["bob@example.org"]]
    deadline = time.monotonic() + 10
    while "to=<review@example.net>, orig_to=<bob@example.org>" not in p.log_text():
        assert time.monotonic() < deadline, "senderd does not log the original recipient"
        time.sleep(0.05)


def test_a_redirect_before_the_queue_survives_the_after_queue_scan(postern, sink):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "HeadersFilter", "AfterQueueFilters": "Attachments"},
        "HeadersFilter": {"Rule": "reject Subject ^review", "RejectActions": "pass, redirect(review@example.net|audit@example.net)"}})
    assert send(port, message("review this"), rcpts=("bob@example.org",))[0] == 250
    got = sink.wait_for_recipients(2)
    assert sorted(r for m in got for r in m.rcpt_tos) == ["audit@example.net", "review@example.net"]
    assert all(r != "bob@example.org" for m in sink.settle(1.0) for r in m.rcpt_tos)


def test_refused_and_discarded_only_is_refused_not_bounced(postern, sink):
    """Over SMTP a split verdict is accepted and the refused recipients get a DSN; but when
    nobody would receive the message, a DSN would only be backscatter: it is refused."""
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "HeadersFilter"}, "HeadersFilter": {"Rule": "reject Subject ^offer"}},
        rules_first="to:carol@example.org cont headersfilter/RejectActions = discard\n"
                    "to:dave@example.org cont headersfilter/RejectActions = pass")
    code, text = send(port, message("offer"), rcpts=("bob@example.org", "carol@example.org"))
    assert code == 550, text
    assert sink.settle(1.5) == [], "no delivery and no DSN"
    # With someone who does get it, the split is accepted and the refused recipient reported.
    code, text = send(port, message("offer"), rcpts=("bob@example.org", "dave@example.org"), sender="eve@example.com")
    assert code == 250, text
    got = {m.rcpt_tos[0]: m for m in sink.wait_for(2)}
    assert b"Subject: offer" in got["dave@example.org"].data
    assert b"Status: 5.7.1" in got["eve@example.com"].data and b"<bob@example.org>" in got["eve@example.com"].data


def test_return_reject_no_accepts_and_reports_by_dsn(postern, sink, clamd):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Receiver": {"ReturnReject": "no"},
        "Scanner": {"BeforeQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}})
    code, text = send(port, eicar_message())
    assert code == 250, text
    [report] = sink.wait_for(1)
    assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
    # The DSN returns the header only: never the content that was blocked. No MTA was asked: no Remote-MTA.
    check_report(report.data, action="failed", sender="alice@example.com", queue_id=None, envid=None,
                 headers_only=True, why_headers="it was blocked by the content filter.", original_subject=b"invoice",
                 recipients={"bob@example.org": {"status": "5.7.1", "remote": None,
                                                 "diagnostic": "550 5.7.1 Message rejected: clamav: infected: " + EICAR_SIGNATURE}})
    assert b"eicar.com.txt" not in report.data
    assert len(sink.settle(1.0)) == 1


def test_skip_dsn_on_block_and_discard_drop_silently(postern, sink, clamd):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port, settings={
        "Sender": {"SkipDSNOnBlock": "yes"},
        "Scanner": {"AfterQueueFilters": "ClamAV"}, "ClamAV": {"Address": clamd.address}},
        rules_first='to:carol@example.org cont clamav/InfectedActions = discard')
    assert send(port, eicar_message(), rcpts=("bob@example.org",))[0] == 250
    assert send(port, eicar_message(), rcpts=("carol@example.org",))[0] == 250
    assert send(port, message("clean"))[0] == 250
    got = sink.wait_for(1)
    assert len(sink.settle(1.5)) == 1 and b"Subject: clean" in got[0].data, "no virus and no DSN"
    deadline = time.monotonic() + 10
    while p.log_text().count("removed verdict=") < 2:
        assert time.monotonic() < deadline, "blocked messages were not removed from the spool"
        time.sleep(0.05)
    assert spool_files(p) == []


def test_add_header_goes_to_its_recipients_copy_only(postern, sink):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, settings={
        "Scanner": {"BeforeQueueFilters": "HeadersFilter"}, "HeadersFilter": {"Rule": "reject Subject ^newsletter"}},
        rules_first='to:tagged@example.org cont headersfilter/RejectActions = "pass, add-header(X-Tag: newsletter)"\n'
                    'to:plain@example.org cont headersfilter/RejectActions = pass')
    assert send(port, message("newsletter 42"), rcpts=("tagged@example.org", "plain@example.org"))[0] == 250
    got = {m.rcpt_tos[0]: m for m in sink.wait_for(2)}
    assert all(len(m.rcpt_tos) == 1 for m in got.values()), "different header fields, different transactions"
    assert b"\r\nX-Tag: newsletter\r\n" in got["tagged@example.org"].data
    assert b"X-Tag" not in got["plain@example.org"].data
