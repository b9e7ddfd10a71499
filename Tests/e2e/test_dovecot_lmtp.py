"""senderd delivering over LMTP into a real Dovecot (dovecot-lmtpd).

Dovecot runs with a private configuration in a temp dir, listening for LMTP
on a free loopback port, with three mailboxes' worth of users: bob (fine),
carol (a 1 KB quota) and nobody unknown. One message to all three must give
three outcomes: bob's copy is in his Maildir exactly once, carol's quota and
the unknown user are each reported in the sender's DSN with Dovecot's own
status codes (RFC 2033: one reply per recipient after the data).
"""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, stop_server, tail, wait_port
from dsnreport import check_report

DOVECOT = "/usr/sbin/dovecot"

CONF = """\
# Private Dovecot for Postern's e2e tests (written by Tests/e2e/test_dovecot_lmtp.py).
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{dir}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
mail_plugins = quota
lmtp_rcpt_check_quota = no
passdb {{
  driver = passwd-file
  args = {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=100M
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self) -> None:
        if not os.access(DOVECOT, os.X_OK):
            pytest.fail("dovecot is not installed (make test installs dovecot-core and dovecot-lmtpd)",
                        pytrace=False)
        self.dir = Path(tempfile.mkdtemp(prefix="postern-e2e-dovecot."))
        self.dir.chmod(0o755)
        self.port = free_port()
        mail = pwd.getpwnam("mail")
        for d in ("run", "state", "mail"):
            (self.dir / d).mkdir()
        shutil.chown(self.dir / "mail", mail.pw_uid, mail.pw_gid)
        (self.dir / "dovecot.conf").write_text(CONF.format(
            dir=self.dir, port=self.port, uid=mail.pw_uid, gid=mail.pw_gid))
        # user:password:uid:gid:gecos:home:shell:extra fields
        (self.dir / "users").write_text(
            "bob@example.org:{PLAIN}x::::::\n"
            "carol@example.org:{PLAIN}x::::::userdb_quota_rule=*:storage=1K\n")
        self.log = self.dir / "dovecot.log"
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "wb"),
                                     start_new_session=True)
        try:
            wait_port(self.port, 30, self.proc, "dovecot")
        except AssertionError:
            print(tail(self.dir / "stderr"), tail(self.log))
            raise

    def maildir_messages(self, user: str) -> list[bytes]:
        new = self.dir / "mail" / user / "new"
        cur = self.dir / "mail" / user / "cur"
        return [p.read_bytes() for d in (new, cur) if d.is_dir() for p in sorted(d.iterdir())]

    def stop(self) -> None:
        stop_server(self.proc)
        print(f"---- Dovecot log:\n{tail(self.log)}")
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dovecot():
    d = Dovecot()
    yield d
    d.stop()


def test_lmtp_per_recipient_outcomes_from_dovecot(postern, sink, dovecot):
    port = free_port()
    # Checked mail goes to Dovecot over LMTP; DSNs (null sender) to the sink.
    postern(port, sink.port, rules_first=f'!from:"" cont SenderAddress = lmtp:inet:{dovecot.port}@127.0.0.1')
    body = b"".join(b"line %04d of a message larger than carol's quota\r\n" % i for i in range(60))
    msg = (b"From: <alice@example.com>\r\nTo: bob, carol, nobody\r\nSubject: three fates\r\n"
           b"Message-ID: <fates@example.com>\r\n\r\n" + body)
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        c.sendmail("alice@example.com", ["bob@example.org", "carol@example.org", "nobody@example.org"], msg)

    report = sink.wait_for(1, timeout=30)[0]
    assert report.mail_from in ("", "<>") and report.rcpt_tos == ["alice@example.com"]
    # One report naming both failures, checked field by field; the message is small: returned whole.
    check_report(report.data, action="failed", sender="alice@example.com", queue_id=None, envid=None,
                 headers_only=False, original_subject=b"three fates", recipients={
                     "carol@example.org": {"status": "5.2.2", "remote": "127.0.0.1", "diagnostic": "uota"},  # Dovecot: Quota exceeded
                     "nobody@example.org": {"status": "5.1.1", "remote": "127.0.0.1", "diagnostic": "550 5.1.1 "}})

    deadline = time.monotonic() + 10
    while not dovecot.maildir_messages("bob") and time.monotonic() < deadline:
        time.sleep(0.1)
    sink.settle(2)
    bob = dovecot.maildir_messages("bob")
    assert len(bob) == 1 and bob[0].endswith(body.replace(b"\r\n", b"\n")), bob[:1]
    assert dovecot.maildir_messages("carol") == []
    assert len(sink.messages) == 1   # one report naming both failures, nothing else
