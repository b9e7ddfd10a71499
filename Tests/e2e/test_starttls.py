"""STARTTLS (RFC 3207) when [Receiver] TLSCertificate/TLSKey are set: offered
in EHLO, a real handshake (Python's ssl), the session starts afresh, and
commands pipelined in clear after STARTTLS are discarded, never executed
inside TLS (the CVE-2011-0411 class of injection)."""

from __future__ import annotations

import signal
import smtplib
import ssl
import subprocess

from conftest import free_port
from smtpclient import RawSession


def make_cert(tmp_path, cn: str = "filter.e2e.test", name: str = ""):
    cert, key = tmp_path / f"cert{name}.pem", tmp_path / f"key{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def served_certificate(port: int) -> bytes:
    """The certificate a new session's STARTTLS presents (DER)."""
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        c.starttls(context=client_context())
        return c.sock.getpeercert(binary_form=True)


def der(cert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE       # the test's own self-signed certificate
    return ctx


def test_starttls_session(postern, sink, tmp_path):
    cert, key = make_cert(tmp_path)
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Receiver": {"TLSCertificate": str(cert), "TLSKey": str(key)}})
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        assert c.has_extn("starttls")
        code, _ = c.starttls(context=client_context())
        assert code == 220
        c.ehlo("client.example")
        assert not c.has_extn("starttls")
        assert c.sock.version() is not None
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: tls\r\n\r\nsecret\r\n")
    got = sink.wait_for(1)[0]
    received = [h for h in got.header_values("Received") if "Postern" in h]
    assert len(received) == 1 and "with ESMTPS" in received[0], received


def test_plaintext_pipelined_after_starttls_is_discarded(postern, sink, tmp_path):
    cert, key = make_cert(tmp_path)
    port = free_port()
    postern(port, sink.port, callback_port=sink.port,
            settings={"Receiver": {"TLSCertificate": str(cert), "TLSKey": str(key)}})
    with RawSession(port) as s:
        s.reply()
        s.cmd("EHLO c")
        s.send("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        assert s.reply()[0] == 220
        tls = client_context().wrap_socket(s.sock, server_hostname="filter.e2e.test")
        tls.sendall(b"EHLO c\r\n")
        first = tls.recv(4096).decode()
        assert first.startswith("250-"), first              # the EHLO reply, not MAIL's
        tls.sendall(b"RCPT TO:<b@example.org>\r\n")
        assert tls.recv(4096).decode().startswith("503")    # no MAIL was executed
        tls.sendall(b"QUIT\r\n")
        tls.recv(4096)
        tls.close()


def test_starttls_not_offered_without_certificate(postern, sink):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port)
    with RawSession(port) as s:
        s.reply()
        _, lines = s.cmd("EHLO c")
        assert "STARTTLS" not in lines
        assert s.code("STARTTLS") == 502


def test_a_renewed_certificate_is_served_after_a_reload(postern, sink, tmp_path):
    """As certbot renews: the files are replaced and the daemons get SIGHUP. New sessions get
    the new certificate, without a restart; a broken file on reload leaves the old one."""
    cert, key = make_cert(tmp_path)
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Receiver": {"TLSCertificate": str(cert), "TLSKey": str(key)}})
    first = der(cert)
    assert served_certificate(port) == first
    renewed, renewed_key = make_cert(tmp_path, cn="renewed.e2e.test", name="-new")
    renewed.replace(cert)
    renewed_key.replace(key)
    second = der(cert)
    assert second != first
    p.proc.send_signal(signal.SIGHUP)
    p.wait_log(r"receiverd\[\d+\]: TLS certificate loaded from ")
    assert served_certificate(port) == second

    # A half-written renewal: the reload is refused (config check), the certificate stays.
    cert.write_text("-----BEGIN CERTIFICATE-----\ntruncated\n")
    p.proc.send_signal(signal.SIGHUP)
    p.wait_log(r"receiverd\[\d+\]: (error: )?reload refused: .*TLSCertificate: .* has no END line")
    assert served_certificate(port) == second
    # One that looks whole but is not a certificate: the configuration is taken, the
    # certificate is not, and the one in force stays.
    cert.write_text("-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n")
    p.proc.send_signal(signal.SIGHUP)
    p.wait_log(r"receiverd\[\d+\]: (error: )?reload: cannot load TLSCertificate .*STARTTLS keeps the certificate it had")
    assert served_certificate(port) == second
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("client.example")
        c.starttls(context=client_context())
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: still tls\r\n\r\nx\r\n")
    assert sink.wait_for(1)[0].rcpt_tos == ["b@example.org"]
