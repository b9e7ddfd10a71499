"""senderd's return hop with STARTTLS and SMTP AUTH ([Sender] TLS, TLSCAFile,
TLSServerName, AuthFile, AuthWithoutTLS; rule parameter SenderTLS).

The next hop is always a real Postfix smtpd: the return smtpd (port B) of
conftest's private Postfix, given TLS and Cyrus SASL (sasldb) settings by
``SecurePostfix`` below, and logging as ``postfix/return/smtpd`` so that its
lines cannot be confused with the inbound smtpd's. Mail is handed to Postern
directly from 127.0.0.1, so the seed rule's ``inet:B@CLIENT-IP`` route is the
callback to that return smtpd; Postfix relays what it accepts to the sink.

Certificates and the SASL database are made by the test (openssl,
saslpasswd2) in the Postfix instance's temp directory.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Postfix, free_port, postern_binary, started_postfixes

SERVER_NAME = "mta.e2e.test"
SASL_REALM = "e2e.test"
SASL_USER = "relayuser"
SASL_PASSWORD = "Corr3ct-horse:battery staple"   # a ':' and a space: the rest of the line counts


# ---------------------------------------------------------------- certificates

def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}-ca.pem", d / f"{name}-ca.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(key), "-out", str(cert))
    return cert, key


def make_server_cert(d: Path, ca: tuple[Path, Path], name: str) -> tuple[Path, Path]:
    """A certificate for `name` only (no IP address in it), signed by `ca`."""
    cert, key, csr, ext = d / "server.pem", d / "server.key", d / "server.csr", d / "server.ext"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


# ---------------------------------------------------------------- Postfix

class SecurePostfix(Postfix):
    """conftest's private Postfix whose return smtpd gets extra `-o` options:
    TLS (`tls` is its smtpd_tls_security_level) and, with `sasl`, Cyrus SASL
    against a sasldb, relaying only for authenticated clients."""

    def __init__(self, sink_port: int, tls: str = "none", sasl: bool = False,
                 extra: dict[str, str] | None = None) -> None:
        super().__init__(sink_port, free_port())
        self.tls, self.sasl, self.extra = tls, sasl, extra or {}
        self.ca = None

    def write_config(self) -> None:
        super().write_config()
        opts = {"syslog_name": "postfix/return", "smtpd_tls_security_level": self.tls}
        if self.tls != "none":
            self.ca = make_ca(self.dir, "right")
            cert, key = make_server_cert(self.dir, self.ca, SERVER_NAME)
            opts |= {"smtpd_tls_cert_file": str(cert), "smtpd_tls_key_file": str(key), "smtpd_tls_loglevel": "1"}
        if self.sasl:
            self.write_sasldb()
            opts |= {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "cyrus", "smtpd_sasl_path": "smtpd",
                     "smtpd_sasl_local_domain": SASL_REALM,
                     "smtpd_sasl_security_options": "noanonymous", "smtpd_tls_auth_only": "no",
                     "smtpd_relay_restrictions": "permit_sasl_authenticated,reject_unauth_destination",
                     "smtpd_recipient_restrictions": "permit_sasl_authenticated,reject"}
        opts |= self.extra
        master = self.etc / "master.cf"
        lines = master.read_text().splitlines()
        at = next(i for i, l in enumerate(lines) if l.startswith(f"127.0.0.1:{self.return_port} "))
        # Later -o options win in Postfix, so these override the return smtpd's defaults.
        end = at + 1
        while end < len(lines) and lines[end].startswith(" "):
            end += 1
        lines[end:end] = [f"    -o {k}={v}" for k, v in opts.items()]
        lines.append("tlsmgr    unix  -       -       n       1000?   1       tlsmgr")
        master.write_text("\n".join(lines) + "\n")


    def write_sasldb(self) -> None:
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf (smtpd_sasl_path = smtpd).
        sasl = self.etc / "sasl"
        sasl.mkdir()
        db = sasl / "sasldb2"
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", SASL_REALM, SASL_USER],
                       input=SASL_PASSWORD.encode(), check=True, capture_output=True)
        os.chmod(db, 0o640)
        subprocess.run(["chgrp", "postfix", str(db)], check=True)
        (sasl / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {db}\n")

    def return_lines(self, what: str) -> list[str]:
        return [l for l in self.log_text().splitlines() if "postfix/return/smtpd[" in l and what in l]


@pytest.fixture
def secure_postfix(sink):
    """Factory: ``secure_postfix(tls="none", sasl=False, extra=None)`` -> a started SecurePostfix."""
    yield from started_postfixes(lambda tls="none", sasl=False, extra=None: SecurePostfix(sink.port, tls, sasl, extra))


# ---------------------------------------------------------------- helpers

def send(port: int, subject: str, rcpt: str = "b@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", [rcpt], f"Subject: {subject}\r\n\r\nbody of {subject}\r\n".encode())


def deferred_ids(p, wait: float = 10.0) -> list[str]:
    """The ids in Postern's deferred/, waiting up to `wait` s for one (senderd
    logs the deferral just before it moves the file)."""
    deadline = time.monotonic() + wait
    while True:
        ids = [f.name for f in (Path(p.dir) / "spool" / "deferred").iterdir()]
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.05)


def assert_never_sent_in_clear(pf: SecurePostfix, p, sink) -> None:
    """The message stays in Postern's deferred/, and the return smtpd never saw
    a MAIL command (its disconnect line counts every command it got)."""
    disconnects = pf.wait_log(r"postfix/return/smtpd\[\d+\]: disconnect from")
    assert disconnects
    for line in pf.return_lines("disconnect from"):
        assert " mail=" not in line and " rcpt=" not in line and " data=" not in line, line
    assert not pf.return_lines(": client="), "the return smtpd opened a mail transaction"
    assert len(deferred_ids(p)) == 1, p.log_text()
    time.sleep(0.5)
    assert sink.messages == []


def start_postern(postern, pf: SecurePostfix, sender: dict[str, str], **kw):
    port = free_port()
    settings = {"Sender": {"RetryIntervals": "1h", **sender}}
    return port, postern(port, pf.sink_port, callback_port=pf.return_port, settings=settings, **kw)


# ---------------------------------------------------------------- STARTTLS

@pytest.mark.parametrize("level", ["default", "encrypt"])
def test_delivers_to_postfix_that_requires_tls(postern, secure_postfix, sink, level):
    """The return smtpd refuses mail without TLS (smtpd_tls_security_level =
    encrypt); with the default `may` and with `encrypt` senderd uses STARTTLS
    and delivers. Without STARTTLS in senderd, Postfix answers MAIL with 530."""
    pf = secure_postfix(tls="encrypt")
    port, p = start_postern(postern, pf, {} if level == "default" else {"TLS": level})
    send(port, f"tls {level}")
    got = sink.wait_for(1)[0]
    pf.wait_log(r"postfix/return/smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23]")
    assert any("with ESMTPS" in h for h in got.header_values("Received")), got.header_values("Received")
    line = p.wait_log(r"Untrusted TLS connection established to inet:\d+@127\.0\.0\.1: "
                               r"(TLSv1\.[23]) with cipher (\S+) \((\d+)/\d+ bits\)")
    assert line.group(2).startswith(("TLS_", "ECDHE-")), line.group(0)
    p.wait_log(r"status=sent")  # logged once the return smtpd answered: may come after the sink got it


def test_large_message_goes_whole_through_tls(postern, secure_postfix, sink):
    """A 1 MiB message without dot lines, which in clear goes out from the
    queue file by sendfile, goes through TLS as bytes and arrives exact."""
    pf = secure_postfix(tls="encrypt")
    port, p = start_postern(postern, pf, {})
    body = b"".join(b"%07d" % i + b"t" * 69 + b"\r\n" for i in range(14000))
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: large over tls\r\n\r\n" + body)
    got = sink.wait_for(1)[0]
    assert any("with ESMTPS" in h for h in got.header_values("Received")), got.header_values("Received")
    assert got.data.endswith(b"Subject: large over tls\r\n\r\n" + body), len(got.data)
    p.wait_log(r"status=sent")


def test_verify_with_the_right_ca_and_server_name(postern, secure_postfix, sink):
    pf = secure_postfix(tls="encrypt")
    port, p = start_postern(postern, pf, {"TLS": "verify", "TLSCAFile": str(pf.ca[0]), "TLSServerName": SERVER_NAME})
    send(port, "verified")
    sink.wait_for(1)
    p.wait_log(r"Verified TLS connection established to inet:\d+@127\.0\.0\.1: TLSv1\.[23] with cipher")
    pf.wait_log(r"postfix/return/smtpd\[\d+\]: \S+ TLS connection established from localhost")


@pytest.mark.parametrize("case", ["wrong CA", "no server name"])
def test_verify_failure_defers_and_never_sends_in_clear(postern, secure_postfix, sink, tmp_path, case):
    """`verify` with a CA that did not sign the server's certificate, or with the
    right CA but no TLSServerName (the route names 127.0.0.1, which the
    certificate does not carry): deferred with 4.7.5, never delivered in clear.
    The return smtpd offers STARTTLS but would also take mail in clear (level
    may), so a fallback to clear text would show as a delivery."""
    pf = secure_postfix(tls="may")
    if case == "wrong CA":
        sender = {"TLS": "verify", "TLSCAFile": str(make_ca(tmp_path, "wrong")[0]), "TLSServerName": SERVER_NAME}
        why = "CERTIFICATE_VERIFY_FAILED"
    else:
        sender = {"TLS": "verify", "TLSCAFile": str(pf.ca[0])}
        why = "the certificate does not name the next hop"
    port, p = start_postern(postern, pf, sender)
    send(port, f"verify {case}")
    line = p.wait_log(r"to=<b@example\.org>.*status=deferred \(4\.7\.5 Cannot start TLS with inet:\d+@127\.0\.0\.1: (.*)\)")
    assert why in line.group(1), line.group(0)
    assert_never_sent_in_clear(pf, p, sink)
    assert "trying again without TLS" not in p.log_text()


def test_encrypt_to_a_server_without_starttls_defers(postern, secure_postfix, sink):
    pf = secure_postfix(tls="none")
    port, p = start_postern(postern, pf, {"TLS": "encrypt"})
    send(port, "no starttls")
    p.wait_log(r"status=deferred \(4\.7\.4 TLS is required, but was not offered by inet:\d+@127\.0\.0\.1\)")
    assert_never_sent_in_clear(pf, p, sink)


def test_rule_sets_tls_per_recipient(postern, secure_postfix, sink):
    """SenderTLS from a rule: one recipient's copy needs `encrypt`, which the
    return smtpd (no STARTTLS) cannot give, so only that one is deferred; the
    other goes out in clear, in a transaction of its own."""
    pf = secure_postfix(tls="none")
    port, p = start_postern(postern, pf, {}, rules_first="to:secret@example.org cont SenderTLS = encrypt")
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["open@example.org", "secret@example.org"], b"Subject: split\r\n\r\nx\r\n")
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["open@example.org"]
    p.wait_log(r"to=<secret@example\.org>.*status=deferred \(4\.7\.4 TLS is required")
    shown = (Path(p.dir) / "spool" / "deferred" / deferred_ids(p)[0]).read_bytes()
    assert b"\nrcpt-tls 1 encrypt\n" in shown and b"\nrcpt-tls 0 " not in shown


def test_may_retries_in_clear_after_a_failed_handshake(postern, secure_postfix, sink):
    """The return smtpd offers STARTTLS but accepts only TLS 1.2 with a
    finite-field DHE cipher, which BoringSSL does not implement: the handshake
    fails, and with `may` senderd delivers on a new connection without TLS."""
    pf = secure_postfix(tls="may", extra={"smtpd_tls_protocols": "!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3",
                                          "smtpd_tls_ciphers": "high",
                                          "tls_high_cipherlist": "DHE-RSA-AES256-GCM-SHA384"})
    port, p = start_postern(postern, pf, {})
    send(port, "fallback")
    sink.wait_for(1)
    p.wait_log(r"TLS handshake with inet:\d+@127\.0\.0\.1 failed \(.+\); trying again without TLS")
    assert "TLS connection established" not in p.log_text()


# ---------------------------------------------------------------- AUTH

def auth_file(d: Path, line: str, mode: int = 0o600) -> Path:
    f = d / "sasl_passwd"
    f.write_text(f"# next hop   username:password\n{line}\n")
    f.chmod(mode)
    return f


@pytest.mark.parametrize("case", ["right password", "no credentials", "wrong password"])
def test_auth_to_postfix_that_relays_only_for_authenticated_clients(postern, secure_postfix, sink, tmp_path, case):
    pf = secure_postfix(tls="may", sasl=True)
    key = f"[127.0.0.1]:{pf.return_port}"
    sender = {}
    if case == "right password":
        sender["AuthFile"] = str(auth_file(tmp_path, f"{key}  {SASL_USER}:{SASL_PASSWORD}"))
    elif case == "wrong password":
        sender["AuthFile"] = str(auth_file(tmp_path, f"{key}  {SASL_USER}:not-the-password-42"))
    port, p = start_postern(postern, pf, sender)
    send(port, f"auth {case}")
    if case == "right password":
        sink.wait_for(1)
        p.wait_log(rf"authenticated to inet:\d+@127\.0\.0\.1 as {SASL_USER} \(SASL PLAIN\)")
        pf.wait_log(rf"postfix/return/smtpd\[\d+\]: \w+: client=localhost\[127\.0\.0\.1\], "
                    rf"sasl_method=PLAIN, sasl_username={SASL_USER}")
        # Over TLS: the credentials went inside it.
        assert "Untrusted TLS connection established" in p.log_text()
    elif case == "no credentials":
        p.wait_log(r"to=<b@example\.org>.*status=bounced \(554 5\.7\.1 .*Relay access denied")
    else:
        p.wait_log(r"status=deferred \(SASL authentication failed; server inet:\d+@127\.0\.0\.1 "
                            r"said: 535 5\.7\.8 .*authentication failed")
        pf.wait_log(r"postfix/return/smtpd\[\d+\]: warning: localhost\[127\.0\.0\.1\]: SASL PLAIN authentication failed")
        assert len(deferred_ids(p)) == 1
        assert sink.messages == []
    assert "not-the-password-42" not in p.log_text() and SASL_PASSWORD not in p.log_text()


@pytest.mark.parametrize("allowed", [False, True])
def test_auth_is_never_sent_in_clear_unless_allowed(postern, secure_postfix, sink, tmp_path, allowed):
    """The return smtpd has no STARTTLS but offers AUTH: the credentials stay
    home (deferred, 4.7.0) unless [Sender] AuthWithoutTLS names the hop."""
    pf = secure_postfix(tls="none", sasl=True)
    sender = {"AuthFile": str(auth_file(tmp_path, f"inet:{pf.return_port}@127.0.0.1 {SASL_USER}:{SASL_PASSWORD}"))}
    if allowed:
        sender["AuthWithoutTLS"] = "127.0.0.1"
    port, p = start_postern(postern, pf, sender)
    send(port, f"clear auth allowed={allowed}")
    if allowed:
        sink.wait_for(1)
        pf.wait_log(rf"sasl_method=PLAIN, sasl_username={SASL_USER}")
    else:
        p.wait_log(r"status=deferred \(4\.7\.0 credentials for inet:\d+@127\.0\.0\.1 are only sent over TLS")
        pf.wait_log(r"postfix/return/smtpd\[\d+\]: disconnect from")
        assert all(" auth=" not in l for l in pf.return_lines("disconnect from")), pf.return_lines("disconnect from")
        assert sink.messages == []


# ---------------------------------------------------------------- configuration

def test_config_check_reports_tls_and_auth_files(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    open_auth = auth_file(tmp_path, "[mx.example.net]:587 user:pw", mode=0o644)
    conf = tmp_path / "postern.conf"
    conf.write_text("[General]\nSpoolDir = /tmp/x\n[Sender]\nTLS = sometimes\nTLSCAFile = ca.pem\n"
                    f"TLSCertificate = {tmp_path}/missing.pem\nTLSKey = {tmp_path}/missing.key\n"
                    f"AuthFile = {open_auth}\n")
    r = subprocess.run([str(postern_binary("posternctl")), "config", "check", "--config", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 78, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith(f"{conf}:4:7: invalid TLS 'sometimes'"), r.stderr
    assert lines[1].startswith(f"{conf}:5:13: TLSCAFile: ") and "holds no PEM certificate" in lines[1], r.stderr
    assert lines[2].startswith(f"{conf}:6:18: TLSCertificate: cannot read") and "No such file" in lines[2], r.stderr
    assert lines[3].startswith(f"{conf}:7:10: TLSKey: cannot read"), r.stderr
    assert lines[4].startswith(f"{conf}:8:12: AuthFile: ") and "mode 0644" in lines[4], r.stderr
    open_auth.chmod(0o600)
    open_auth.write_text("[mx.example.net]:587 user:pw\nbad!host user:pw\n")
    conf.write_text(f"[Sender]\nAuthFile = {open_auth}\n")
    r = subprocess.run([str(postern_binary("posternctl")), "config", "check", "--config", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 78 and r.stderr.startswith(f"{open_auth}:2:"), r.stderr
    assert "pw" not in r.stderr.replace(str(open_auth), "")


# ---------------------------------------------------------------- a misbehaving next hop

def test_reply_bytes_after_starttls_220_are_refused(postern, sink):
    """Test double (no real MTA can be made to do this): a next hop that sends
    a second reply right behind its 220 to STARTTLS, in clear, as a man in
    the middle injecting commands' answers would. Under `encrypt` the
    connection is dropped before any TLS and the message is deferred; no
    MAIL is sent."""
    from test_next_hop_failures import ScriptedServer

    def respond(line: str):
        u = line.upper()
        if u.startswith("EHLO"):
            return ["250-double.test", "250 STARTTLS"]
        if u == "STARTTLS":
            return ["220 2.0.0 Ready to start TLS", "250 2.0.0 injected"]
        if u == "QUIT":
            return ["221 bye", "__HANGUP__"]
        return ["250 2.0.0 Ok"]

    server = ScriptedServer("220 double.test ESMTP", respond)
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=server.port, settings={"Sender": {"TLS": "encrypt", "RetryIntervals": "1h"}})
        send(port, "injection")
        p.wait_log(r"status=deferred \(4\.7\.5 Cannot start TLS with inet:\d+@127\.0\.0\.1: "
                            r"next hop sent data after its reply to STARTTLS\)")
        assert not [l for l in server.transcript if l.upper().startswith(("MAIL", "RCPT", "DATA"))], server.transcript
    finally:
        server.close()
