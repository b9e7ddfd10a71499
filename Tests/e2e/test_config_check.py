"""posternctl config check loads every file the configuration names and
refuses what Postern would ignore; the daemons refuse the same at start and
on SIGHUP; config show prints a configuration that reads back the same."""

from __future__ import annotations

import re
import signal
import smtplib
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, free_port, postern_binary
from test_reload import wait_log

SAMPLE = ROOT / "config" / "postern.conf"


def ctl(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(postern_binary("posternctl")), "config", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=30)


def openssl_pair(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}.e2e.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def config_with(workdir: Path, receiver: str) -> Path:
    config = workdir / "p.conf"
    config.write_text(f"[General]\nSpoolDir = {workdir}/spool\nRunDir = {workdir}/run\n"
                      f"[Receiver]\nAddress = inet:{free_port()}@127.0.0.1\n{receiver}")
    return config


def test_tls_files_are_loaded(workdir):
    cert, key = openssl_pair(workdir, "one")
    _, other_key = openssl_pair(workdir, "two")

    ok = ctl(config_with(workdir, f"TLSCertificate = {cert}\nTLSKey = {key}\n"), "check")
    assert ok.returncode == 0 and ok.stdout.endswith(": configuration OK\n"), ok.stderr

    # The reported bug: a certificate that does not exist was "OK", then receiverd exited 78.
    config = config_with(workdir, f"TLSCertificate = {workdir}/missing.crt\nTLSKey = {key}\n")
    r = ctl(config, "check")
    expected = f"{config}:6:18: TLSCertificate: cannot read '{workdir}/missing.crt': No such file or directory\n"
    assert r.returncode == 78 and r.stderr == expected, r.stderr
    d = subprocess.run([str(postern_binary("receiverd")), "--config", str(config)],
                       capture_output=True, text=True, timeout=20)
    assert d.returncode == 78 and expected.rstrip("\n") in d.stderr

    # Key and certificate swapped: neither is what it should be.
    r = ctl(config_with(workdir, f"TLSCertificate = {key}\nTLSKey = {cert}\n"), "check")
    assert r.returncode == 78 and "holds no PEM certificate (-----BEGIN CERTIFICATE-----) (it holds PRIVATE KEY)" in r.stderr
    assert "TLSKey: " in r.stderr and "holds no PEM private key" in r.stderr

    # Each is PEM, but they do not belong together: BoringSSL says so, as receiverd's start would.
    config = config_with(workdir, f"TLSCertificate = {cert}\nTLSKey = {other_key}\n")
    r = ctl(config, "check")
    assert r.returncode == 78 and r.stderr.startswith(f"{config}:6:18: TLSCertificate {cert} / TLSKey {other_key} cannot be used for STARTTLS: "), r.stderr
    d = subprocess.run([str(postern_binary("receiverd")), "--config", str(config)],
                       capture_output=True, text=True, timeout=20)
    assert d.returncode == 78


def test_what_postern_would_ignore_is_refused_with_its_position(workdir):
    config = workdir / "p.conf"
    config.write_text("[General]\nSpoolDir = /tmp/x\n[Maild]\nMaxScanSize = 1m\n[Stat]\n"
                      "[Notifier]\nTemplatesDir = /nonexistent/templates\n"
                      "[Rules]\ntrue cont ScanTimeout = 1m, spamassassin/Timeout = 3s\n"
                      "from:file:missing-list cont ReturnReject = no\n")
    r = ctl(config, "check")
    assert r.returncode == 78
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{config}:3:1: Dr.Web MailD's [Maild] is not supported: Postern has no core process")
    assert lines[1].startswith(f"{config}:5:1: Dr.Web MailD's [Stat] is not supported: statistics are Prometheus metrics")
    assert lines[2] == f"{config}:7:16: TemplatesDir: cannot open directory '/nonexistent/templates': No such file or directory"
    # ScanTimeout is resolved per recipient (issue 10); a plug-in's Timeout is not.
    assert lines[3].startswith(f"{config}:9:29: 'spamassassin/Timeout' is not resolved per recipient: set Timeout in [SpamAssassin]; rules can set spamassassin/SpamActions")
    assert lines[4] == f"{config}:10:1: cannot read '{workdir}/missing-list': No such file or directory"
    assert len(lines) == 5, r.stderr

    # A template directory must hold every template, each well-formed.
    templates = workdir / "templates"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config" / "templates", templates)
    # The recipients' quarantine notice names the release address: without one it is refused.
    config.write_text("[Notifier]\nTemplatesDir = templates\n")
    r = ctl(config, "check")
    why = "$RELEASE$ needs [Quarantine] ReleaseAddress, the address recipients reply to (docs/postfix.md)"
    assert r.returncode == 78 and r.stderr.splitlines() == [
        f"{templates}/quarantine-recipients.txt:4:12: {why}", f"{templates}/quarantine-recipients.txt:17:3: {why}"]
    config.write_text("[Quarantine]\nReleaseAddress = quarantine-release@example.com\n[Notifier]\nTemplatesDir = templates\n")
    r = ctl(config, "check")
    assert (r.returncode, r.stderr) == (0, "")
    (templates / "spam-sender.txt").unlink()
    (templates / "virus-admin.txt").write_text("From: a\nTo: b\nSubject: $SUBJ$\n\nbody\n")
    r = ctl(config, "check")
    assert r.returncode == 78
    assert sorted(r.stderr.splitlines()) == [
        f"{config}:4:16: TemplatesDir: cannot read '{templates}/spam-sender.txt': No such file or directory",
        f"{templates}/virus-admin.txt:3:10: unknown macro $SUBJ$: expected one of $POSTMASTER$, $FILTER_MAIL$, $HOSTNAME$, "
        "$QUEUE_ID$, $SUBJECT$, $MSGID$, $FROM$, $DATE$, $SENDER$, $RCPTS$, $TO$, $CLIENT_IP$, $ACTION$, $VIRUSES$, "
        "$BANNED$, $SCORE$, $REPORT$, $RELEASE$, $DIGEST$"]


def test_sighup_refuses_a_certificate_that_went_away(postern, sink, tmp_path):
    cert, key = openssl_pair(tmp_path, "filter")
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Receiver": {"TLSCertificate": str(cert), "TLSKey": str(key)}})
    cert.rename(tmp_path / "moved.crt")
    p.proc.send_signal(signal.SIGHUP)
    line = next(i for i, l in enumerate(p.config.read_text().split("\n"), 1) if l.startswith("TLSCertificate"))
    wait_log(p, rf"(receiverd|scannerd|senderd)\[\d+\]: (error: )?reload refused: {re.escape(str(p.config))}:{line}:18: "
                rf"TLSCertificate: cannot read '{re.escape(str(cert))}'", 3)
    with smtplib.SMTP("127.0.0.1", port) as c:      # the old configuration serves on
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: still\r\n\r\nx\r\n")
    assert sink.wait_for(1)[0].rcpt_tos == ["b@example.org"]


def test_show_prints_what_reads_back(workdir):
    shown = ctl(SAMPLE, "show")
    assert shown.returncode == 0, shown.stderr
    # Only what the sample sets, as written, comments gone.
    assert "\n[Receiver]\nAddress = inet:10024@127.0.0.1\n" in shown.stdout
    assert "Timeout = 1m" not in shown.stdout and "DiscardActions" not in shown.stdout
    assert "; Name used in" not in shown.stdout and "\nHostname =\n" in shown.stdout
    assert "\n[Rules]\n!(from:\"\" || from:\"root@localhost\" || from:\"postern@localhost\") cont SenderAddress = inet:10025@CLIENT-IP\n" in shown.stdout

    everything = ctl(SAMPLE, "show", "--all")
    assert everything.returncode == 0
    for line in ("MaxRecipients = 1000", "Timeout = 1m", "DiscardActions = discard", "RetryIntervals = 1m, 5m, 15m, 1h", "[Rspamd]", "InfectedActions = ",
                 "ControlAddress = local:./var/run/senderd.sock", "; Receiver =   (not set)"):
        assert line in everything.stdout, line
    # The copies stand where the sample's relative TemplatesDir finds the templates, as installed.
    shutil.copytree(ROOT / "config" / "templates", workdir / "templates")
    for name, text in (("n.conf", shown.stdout), ("all.conf", everything.stdout)):
        copy = workdir / name
        copy.write_text(text)
        assert ctl(copy, "check").returncode == 0, ctl(copy, "check").stderr
        again = ctl(copy, "show", "--all").stdout
        assert again.split("\n", 1)[1] == everything.stdout.split("\n", 1)[1], name
