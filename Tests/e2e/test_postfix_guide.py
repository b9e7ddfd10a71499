"""The setup the documentation gives, taken from the documentation's own text.

Postfix is configured from the ``main.cf`` and ``master.cf`` blocks of
docs/postfix.md, and Postern runs with config/postern.conf as shipped; only
ports and paths are substituted (10024 -> the filter's port, 10025 -> the
return smtpd's port, ./var -> a temp dir). Everything Postfix receives goes
through Postern (global content_filter), and everything Postfix sends out
goes to the test's sink (relayhost). Each kind of mail must arrive exactly
once: normal mail, an inbound bounce (null sender), cron mail from
root@localhost (submitted with Postfix's own sendmail), mail from
FilterMail, and a DSN that Postern writes itself. A deliberately looping
route is stopped by Postern long before Postfix's hop limit.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re
import shutil
import smtplib
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import (MAIN_CF, MASTER_CF, POSTFIX_HOSTNAME, Postfix, free_port,
                      postern_binary, set_main_cf)
from test_quarantine_release import wait_until

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "postfix.md"
SAMPLE = ROOT / "config" / "postern.conf"


def guide_block(name: str) -> str:
    """The fenced block after ``<!-- guide: NAME -->`` in docs/postfix.md."""
    m = re.search(r"<!-- guide: " + re.escape(name) + r" -->\s*```[a-z]*\n(.*?)```",
                  GUIDE.read_text(), re.S)
    assert m, f"docs/postfix.md has no '{name}' block"
    return m.group(1)


def substitute(text: str, old: str, new: str) -> str:
    """Replace `old` by `new`; the test fails if the documented text changed shape."""
    assert old in text, f"expected {old!r} in the documented text"
    return text.replace(old, new)


class GuidePostfix(Postfix):
    """A private Postfix whose filter setup is docs/postfix.md's, verbatim but for ports.

    Port A (``self.port``) stands for port 25; the test's own settings (queue
    directory, logging, relayhost = the sink, short retry timers) come from
    conftest's MAIN_CF, the filter setup from the guide."""

    extra_main = ""        # more main.cf, after the guide's
    aliases = ""           # an aliases file (alias_maps) when not empty

    def write_config(self) -> None:
        self.etc.mkdir()
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        main = MAIN_CF.format(dir=self.dir, hostname=POSTFIX_HOSTNAME, sink_port=self.sink_port)
        main = set_main_cf(main, "# docs/postfix.md, main.cf\n" + substitute(
            guide_block("main.cf"), "[127.0.0.1]:10024", f"[127.0.0.1]:{self.filter_port}"))
        main = set_main_cf(main, self.extra_main)
        if self.aliases:
            main = set_main_cf(main, f"alias_maps = hash:{self.etc}/aliases\nalias_database = hash:{self.etc}/aliases\n")
        (self.etc / "main.cf").write_text(main)
        if self.aliases:
            (self.etc / "aliases").write_text(self.aliases)
            r = subprocess.run(["postalias", "-c", str(self.etc), f"hash:{self.etc}/aliases"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        services = MASTER_CF[MASTER_CF.index("cleanup "):]
        master = (f"127.0.0.1:{self.port} inet n - n - - smtpd\n"
                  "pickup    unix  n       -       n       60      1       pickup\n"
                  "# docs/postfix.md, master.cf\n"
                  + substitute(guide_block("master.cf"), "127.0.0.1:10025 ", f"127.0.0.1:{self.return_port} ")
                  + services)
        (self.etc / "master.cf").write_text(master)


def sample_config(filter_port: int, default_route_port: int, callback_port: int,
                  changes: tuple[tuple[str, str], ...] = ()) -> str:
    """config/postern.conf as shipped, with its ports and ./var paths moved
    (and `changes`, pairs of old and new text, for a test that needs more)."""
    text = SAMPLE.read_text()
    for old, new in changes:
        text = substitute(text, old, new)
    text = substitute(text, "./var/", "{dir}/var/")
    text = substitute(text, "TemplatesDir = templates", f"TemplatesDir = {ROOT}/config/templates")
    text = substitute(text, "Address = inet:10024@127.0.0.1", f"Address = inet:{filter_port}@127.0.0.1")
    text = substitute(text, "Address = inet:10025@127.0.0.1", f"Address = inet:{default_route_port}@127.0.0.1")
    text = substitute(text, "SenderAddress = inet:10025@CLIENT-IP", f"SenderAddress = inet:{callback_port}@CLIENT-IP")
    return text


@pytest.fixture
def guide(sink, postern):
    """Postfix from the guide + Postern from the sample; yields a starter."""
    made: list[GuidePostfix] = []

    def start(changes: tuple[tuple[str, str], ...] = (), default_route: str = "return",
              extra_main: str = "", aliases: str = ""):
        postern_binary("posternctl")
        filter_port = free_port()
        pf = GuidePostfix(sink.port, filter_port)
        pf.extra_main, pf.aliases = extra_main, aliases
        made.append(pf)
        pf.start()
        route = pf.return_port if default_route == "return" else pf.port
        p = postern(filter_port, 0, config_text=sample_config(filter_port, route, pf.return_port, changes))
        return pf, p

    yield start
    for pf in made:
        print(f"---- Postfix log:\n{pf.log_text()[-6000:]}")
        pf.cleanup()


def send(port: int, mail_from: str, rcpt: str, subject: str, body: bytes = b"hello\r\n") -> bytes:
    tag = uuid.uuid4().hex
    msg = (f"From: <{mail_from or 'mailer-daemon@remote.example'}>\r\nTo: <{rcpt}>\r\n"
           f"Subject: {subject}\r\nMessage-ID: <{tag}@e2e.test>\r\n\r\n").encode() + body
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.e2e.test")
        c.sendmail(mail_from, [rcpt], msg)
    return msg


def by_subject(messages, subject: str):
    return [m for m in messages if m.header_values("Subject") == [subject]]


def test_sample_config_and_postfix_guide_deliver_every_kind_of_mail_once(guide, sink):
    pf, p = guide()
    send(pf.port, "alice@example.com", "bob@example.org", "normal mail")
    # A bounce from the Internet about mail one of our users sent: null sender.
    send(pf.port, "", "carol@example.org", "inbound bounce",
         b"This is the mail system at host remote.example.\r\n")
    send(pf.port, "postern@localhost", "root@localhost", "from FilterMail")
    # Cron mail: submitted locally with Postfix's sendmail (pickup), from root@localhost.
    cron = b"From: root@localhost\r\nTo: dave@example.org\r\nSubject: cron mail\r\n\r\nbackup done\r\n"
    r = subprocess.run(["/usr/sbin/sendmail", "-C", str(pf.etc), "-f", "root@localhost", "-t"],
                       input=cron, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()

    got = sink.wait_for(4, timeout=60)
    got = sink.settle(3)
    for subject in ("normal mail", "inbound bounce", "from FilterMail", "cron mail"):
        matches = by_subject(got, subject)
        assert len(matches) == 1, f"{subject!r} arrived {len(matches)} times"
        m = matches[0]
        # It went through Postern exactly once: one guard, one Received by Postern.
        assert len(m.header_values("X-Postern-Guard")) == 1, subject
    assert len(got) == 4
    # Each was handed to Postern exactly once (no circling through port 25).
    assert len(pf.filter_deliveries(count=4)) == 4
    time.sleep(1)
    assert len(pf.filter_deliveries(count=4)) == 4
    assert "too many hops" not in pf.log_text()
    assert "held: mail loop" not in p.log_text()


def test_a_dsn_postern_writes_arrives_once(guide, sink):
    # The one change beyond ports and paths: an after-queue filter that blocks,
    # so that Postern itself writes a DSN (null sender, [Sender] Address).
    pf, p = guide(changes=(("AfterQueueFilters =\n", "AfterQueueFilters = HeadersFilter\n"),
                           (";Rule = reject Subject ^\\[SPAM\\]", "Rule = reject Subject ^bounce-me"),
                           ("RejectActions = discard, quarantine", "RejectActions = reject")))
    send(pf.port, "alice@example.com", "bob@example.org", "bounce-me please")
    send(pf.port, "alice@example.com", "bob@example.org", "normal mail")
    got = sink.wait_for(2, timeout=60)
    got = sink.settle(3)
    assert len(got) == 2, [m.mail_from for m in got]
    assert len(by_subject(got, "normal mail")) == 1
    assert not by_subject(got, "bounce-me please")
    dsn = [m for m in got if m.mail_from in ("", "<>")]
    assert len(dsn) == 1 and dsn[0].rcpt_tos == ["alice@example.com"]
    report = email.message_from_bytes(dsn[0].data)
    assert report.get_content_type() == "multipart/report"
    # The DSN went to the unfiltered port: it passed Postern once only (as the blocked message).
    assert len(pf.filter_deliveries(count=2)) == 2
    assert "held: mail loop" not in p.log_text()


def test_postern_stops_a_loop_through_itself(guide, sink):
    # The mistake the shipped sample used to make: the default route back into
    # the MTA's filtered port. Cron mail from root@localhost takes the default route.
    pf, p = guide(default_route="filtered")
    start = time.monotonic()
    send(pf.port, "root@localhost", "erin@example.org", "looping cron mail")
    deadline = time.monotonic() + 60
    while "held: mail loop" not in p.log_text():
        assert time.monotonic() < deadline, "Postern did not stop the loop"
        time.sleep(0.2)
    line = next(line for line in p.log_text().splitlines() if "held: mail loop" in line)
    assert "pass 3 through this filter" in line, line
    held = list((p.dir / "var" / "spool" / "hold").iterdir())
    assert len(held) == 1, held
    assert time.monotonic() - start < 30
    # Three passes through the filter (Postfix -> Postern each time), then it stopped.
    time.sleep(2)
    assert len(pf.filter_deliveries(count=3)) == 3
    assert "too many hops" not in pf.log_text()
    assert not sink.messages
    # The administrator sees why.
    ctl = postern_binary("posternctl")
    out = subprocess.run([str(ctl), "queue", "list", "--config", str(p.config)],
                         capture_output=True, text=True, timeout=30).stdout
    assert "mail loop: pass 3" in out, out


def test_release_by_reply_as_the_guide_sets_it_up(guide, sink):
    """docs/postfix.md, "Quarantine release by reply": its main.cf line and its
    alias, with the sample's ReleaseAddress (quarantine-release@localhost, a
    domain Postfix delivers locally). Postfix accepts the reply only because
    of them (local recipients are checked against the aliases); Postern takes
    it, releases the message to bob, and the reply goes nowhere."""
    block = [line for line in guide_block("release").splitlines() if line and not line.startswith("#")]
    main = [line for line in block if " = " in line]
    aliases = [line for line in block if ": " in line]
    assert main == ["recipient_delimiter = +"] and aliases == ["quarantine-release: /dev/null"], block
    pf, p = guide(changes=(("AfterQueueFilters =\n", "AfterQueueFilters = Attachments\n"),
                           (";Notify = admin", "Notify = recipients")),
                  extra_main="\n".join(main) + "\nmydestination = localhost\nlocal_recipient_maps = $alias_maps\n",
                  aliases="\n".join(aliases) + "\n")
    original = email.message.EmailMessage()
    original["From"], original["To"], original["Subject"] = "alice@example.com", "bob@example.org", "the installer"
    original["Message-ID"] = f"<{uuid.uuid4().hex}@e2e.test>"
    original.set_content("as promised\n")
    original.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="setup.exe")
    with smtplib.SMTP("127.0.0.1", pf.port) as c:
        c.sendmail("alice@example.com", ["bob@example.org"], original.as_bytes(policy=original.policy.clone(linesep="\r\n")))

    def arrived(pred):
        return wait_until(pred, sink, timeout=60)

    [notice] = arrived(lambda m: m.rcpt_tos == ["bob@example.org"] and "Quarantined for you" in "".join(m.header_values("Subject")))
    reply_to = email.message_from_bytes(notice.data, policy=email.policy.default)["Reply-To"].addresses[0].addr_spec
    assert re.fullmatch(r"quarantine-release\+[0-9A-Z]{43}@localhost", reply_to), reply_to

    # Bob replies through Postfix's port 25, as his mail client would.
    with smtplib.SMTP("127.0.0.1", pf.port) as c:
        c.sendmail("bob@example.org", [reply_to], b"From: bob@example.org\r\nTo: " + reply_to.encode()
                   + b"\r\nSubject: Re: quarantined\r\n\r\nPlease release it.\r\n")
    [copy] = arrived(lambda m: m.mail_from == "alice@example.com" and "setup.exe" in m.data.decode("latin-1"))
    assert copy.rcpt_tos == ["bob@example.org"]
    sink.settle(3)
    assert len([m for m in sink.messages if m.mail_from == "alice@example.com"]) == 1
    assert not [m for m in sink.messages if any("quarantine-release" in r for r in m.rcpt_tos)]
    assert re.search(r"release by reply: quarantined \S+ released as \S+ to <bob@example.org>", p.log_text()), p.log_text()[-3000:]
    # Postfix took the reply for the aliased address and never delivered it (no local service
    # runs here: a delivery attempt would show as a deferral).
    assert re.search(r"to=<quarantine-release\+[0-9A-Z]{43}@localhost>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent", pf.log_text()), pf.log_text()[-3000:]
    assert "status=deferred" not in pf.log_text()
