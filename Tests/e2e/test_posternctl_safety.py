"""posternctl on spools the test writes itself (no daemons): ids are checked
on every subcommand before anything is touched, each failure has its own
sysexits.h exit code and one "posternctl: ..." line, bulk operations (ALL,
ids from stdin, --state) do what they say, every change is logged with who
made it, and the listings have --json."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import postern_binary
from spoolfiles import crafted_spool, queue_id

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_NOUSER, EX_UNAVAILABLE, EX_NOPERM, EX_CONFIG = 64, 65, 66, 67, 69, 77, 78


def ctl(config, *args: str, stdin: str | None = None, env: dict | None = None,
        user: str | None = None) -> subprocess.CompletedProcess:
    args = list(args)
    at = args.index("--") if "--" in args else len(args)     # options go before "--"
    args[at:at] = ["--config", str(config)]
    binary = postern_binary("posternctl") if user is None else binary_for_anyone()
    return subprocess.run([str(binary), *args],
                          input=stdin, capture_output=True, text=True, timeout=30,
                          env=env, user=user)


def binary_for_anyone():
    """A copy of posternctl that another user can run: the build tree may sit in a
    directory only root can enter (a clone in a mktemp -d directory)."""
    global _anyone
    if _anyone is None:
        d = Path(tempfile.mkdtemp(prefix="posternctl-bin."))
        os.chmod(d, 0o755)
        _anyone = d / "posternctl"
        shutil.copy2(postern_binary("posternctl"), _anyone)
        os.chmod(_anyone, 0o755)
        atexit.register(shutil.rmtree, d, True)
    return _anyone


_anyone = None


@pytest.fixture
def spool(workdir):
    return crafted_spool(workdir)


# Every subcommand that takes queue ids, with the arguments it needs before them.
ID_COMMANDS = [
    ("queue", "show"), ("queue", "hold"), ("queue", "release"), ("queue", "delete"),
    ("quarantine", "show"), ("quarantine", "release"), ("quarantine", "delete"),
]


def test_ids_are_checked_on_every_subcommand_and_nothing_outside_is_touched(spool):
    """The old bug: `queue delete ../../victim.txt` said "deleted from scan/"
    and removed a file outside the spool."""
    victim = spool.dir / "victim.txt"                 # spool/<state>/../../victim.txt
    victim.write_text("keep me\n")
    outside = spool.dir / "outside" / "passwd"        # an absolute path, like /etc/passwd
    outside.parent.mkdir()
    outside.write_text("root:x:0:0\n")
    qid = queue_id(1)
    spool.put("deferred", qid)
    spool.put("hold", queue_id(2))
    spool.put("quarantine", queue_id(3))
    before = spool.snapshot()
    bad_ids = ["../../victim.txt", str(outside), "a/b", "", "A" * 300, f"../hold/{queue_id(2)}",
               f"{qid}/../../../victim.txt", "ALL/..", "-x"]
    for command in ID_COMMANDS:
        for bad in bad_ids:
            r = ctl(spool.config, *command, "--", bad)
            assert r.returncode == EX_DATAERR, (command, bad, r.returncode, r.stderr)
            assert r.stderr.startswith("posternctl: invalid queue id '"), (command, bad, r.stderr)
            assert "nothing was changed" in r.stderr and r.stdout == "", (command, bad, r.stdout)
        # One bad id among good ones: nothing at all is done.
        if command[1] != "show":
            r = ctl(spool.config, *command, qid, queue_id(2), queue_id(3), "../../victim.txt")
            assert r.returncode == EX_DATAERR, (command, r.stderr)
    assert spool.snapshot() == before
    assert victim.read_text() == "keep me\n" and outside.read_text() == "root:x:0:0\n"


def test_exit_codes_and_messages(spool, workdir):
    qid, missing = queue_id(1), queue_id(9)
    spool.put("deferred", qid)
    # No such message: 66 and a line that names it, not a usage text.
    for command in ID_COMMANDS:
        r = ctl(spool.config, *command, missing)
        assert r.returncode == EX_NOINPUT, (command, r.returncode, r.stderr)
        assert r.stderr == f"posternctl: {missing}: no such message in " + (
            "the quarantine\n" if command[0] == "quarantine" else
            "hold/\n" if command[1] == "release" else
            "scan/ outgoing/ deferred/\n" if command[1] == "hold" else
            "scan/ outgoing/ deferred/ hold/ corrupt/\n"), (command, r.stderr)
        assert "Usage" not in r.stderr
    # Command-line syntax: 64, with ArgumentParser's usage.
    r = ctl(spool.config, "queue", "list", "--bogus")
    assert r.returncode == EX_USAGE and "Usage" in r.stderr
    r = ctl(spool.config, "queue", "delete", "ALL", qid)
    assert r.returncode == EX_USAGE and r.stderr == "posternctl: ALL cannot be combined with queue ids\n"
    r = ctl(spool.config, "queue", "delete")
    assert r.returncode == EX_USAGE and r.stderr.startswith("posternctl: no queue id given")
    r = ctl(spool.config, "queue", "list", "--state", "incoming")
    assert r.returncode == EX_USAGE and "--state incoming: expected one of scan, outgoing, deferred, hold, corrupt" in r.stderr
    # senderd not running: flush cannot be done.
    r = ctl(spool.config, "queue", "flush")
    assert r.returncode == EX_UNAVAILABLE and r.stderr.startswith("posternctl: senderd is not reachable at local:")
    # A configuration with errors: 78, compiler-style.
    bad = workdir / "bad.conf"
    bad.write_text(spool.config.read_text() + "[Receiver]\nMaxSesions = 3\n")
    r = ctl(bad, "queue", "list")
    assert r.returncode == EX_CONFIG and r.stderr == f"{bad}:6:1: unknown key 'MaxSesions' in [Receiver]\n"
    # The malformed spool file is listed as such, and shown with 65.
    broken = queue_id(5)
    (spool.spool / "deferred" / broken).write_text("garbage\n")
    r = ctl(spool.config, "queue", "list")
    assert r.returncode == 0 and f"{broken}  deferred  (unreadable: malformed spool file" in r.stdout
    r = ctl(spool.config, "queue", "show", broken)
    assert r.returncode == EX_DATAERR and "malformed spool file" in r.stderr
    assert ctl(spool.config, "queue", "show", "--raw", broken).stdout == "garbage\n"


def test_missing_or_unreadable_spool_is_an_error_not_an_empty_queue(workdir):
    config = workdir / "p.conf"
    config.write_text(f"[General]\nSpoolDir = {workdir}/nowhere\nRunDir = {workdir}/run\n")
    for args in (("queue", "list"), ("queue", "list", "--json"), ("status",), ("queue", "delete", "ALL"),
                 ("queue", "show", queue_id(1)), ("quarantine", "list")):
        r = ctl(config, *args)
        assert r.returncode == EX_NOINPUT, (args, r.returncode, r.stdout, r.stderr)
        assert r.stderr.startswith("posternctl: cannot read the "), (args, r.stderr)
        assert "No such file or directory" in r.stderr and "0 messages" not in r.stdout
    # A spool the invoking user may not read (tests run as root, which reads anything:
    # the same command as nobody).
    s = crafted_spool(workdir / "private")
    os.chmod(workdir, 0o755)
    os.chmod(s.dir, 0o755)
    os.chmod(s.config, 0o644)
    os.chmod(s.spool, 0o700)
    r = ctl(s.config, "queue", "list", user="nobody")
    assert r.returncode == EX_NOPERM, (r.returncode, r.stderr)
    assert "Permission denied" in r.stderr and r.stderr.startswith("posternctl: ")


def test_bulk_all_stdin_and_state(spool):
    deferred = [queue_id(i) for i in range(1, 4)]
    held = [queue_id(i) for i in range(4, 6)]
    corrupt = queue_id(7)
    for q in deferred:
        spool.put("deferred", q)
    for q in held:
        spool.put("hold", q)
    (spool.spool / "corrupt" / corrupt).write_text("damaged\n")
    env = dict(os.environ, SUDO_USER="alice")

    # Ids from standard input, white-space separated, in any case.
    r = ctl(spool.config, "queue", "hold", "-", stdin=f"{deferred[0]}\n  {deferred[1].lower()}\n", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (spool.spool / "hold").iterdir()) == sorted(held + deferred[:2])
    for q in deferred[:2]:
        assert f"posternctl: {q}: held (deferred/ -> hold/) by user=root uid=0 sudo_user=alice\n" in r.stderr

    # ALL with --state: only deferred/, hold/ keeps its messages.
    r = ctl(spool.config, "queue", "delete", "--state", "deferred", "ALL")
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"posternctl: {deferred[2]}: deleted from deferred/ by user=root uid=0\n"
    assert not list((spool.spool / "deferred").iterdir())
    assert len(list((spool.spool / "hold").iterdir())) == 4

    # An id in another state than --state names is not found there.
    r = ctl(spool.config, "queue", "delete", "--state", "deferred", held[0])
    assert r.returncode == EX_NOINPUT and (spool.spool / "hold" / held[0]).exists()

    # release ALL takes hold/ only; unscanned files go to scan/, scanned ones to outgoing/.
    spool.put("hold", queue_id(6), statuses=None)
    r = ctl(spool.config, "queue", "release", "ALL")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (spool.spool / "outgoing").iterdir()) == sorted(held + deferred[:2])
    assert [p.name for p in (spool.spool / "scan").iterdir()] == [queue_id(6)]
    assert f"posternctl: {queue_id(6)}: released (hold/ -> scan/) by user=root" in r.stderr

    # delete ALL without --state never touches corrupt/ (Postern never deletes damaged files
    # by itself); naming it does.
    r = ctl(spool.config, "queue", "delete", "ALL")
    assert r.returncode == 0 and (spool.spool / "corrupt" / corrupt).exists()
    assert not any(any((spool.spool / s).iterdir()) for s in ("scan", "outgoing", "deferred", "hold"))
    r = ctl(spool.config, "queue", "delete", "--state", "corrupt", "ALL")
    assert r.returncode == 0 and not (spool.spool / "corrupt" / corrupt).exists()

    # Several ids, one missing: the others are done, the exit code says one failed.
    for q in deferred:
        spool.put("deferred", q)
    r = ctl(spool.config, "queue", "delete", deferred[0], queue_id(99), deferred[1])
    assert r.returncode == EX_NOINPUT
    assert [p.name for p in (spool.spool / "deferred").iterdir()] == [deferred[2]]
    assert f"posternctl: {queue_id(99)}: no such message" in r.stderr


def test_listing_shows_why_and_when_and_json(spool):
    now = time.time()
    late = queue_id(1)
    spool.put("deferred", late, recipients=("b@example.org", "c@example.org", "d@example.org"), statuses="PDF",
              errors={0: (now - 60, "451 4.3.0 Mailbox busy, try later"), 2: (now - 60, "550 5.1.1 No such user")},
              next_attempt=now + 600, arrival=now - 7200)
    spool.put("hold", queue_id(2), hold_reason="mail loop: pass 3 through this filter")
    spool.put("scan", queue_id(3), statuses=None)
    text = ctl(spool.config, "queue", "list")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert re.search(rf"^{late}  deferred  \d+  \S+Z  <a@example.com>\n"
                     rf"        next attempt \S+Z \(in (9m 5\ds|10m 0s|10m)\), attempts 2\n"
                     rf"        <b@example.org> \[P\] inet:10025@127.0.0.1\n"
                     rf"            \(451 4.3.0 Mailbox busy, try later\)\n"
                     rf"        <c@example.org> \[D\] inet:10025@127.0.0.1\n"
                     rf"        <d@example.org> \[F\] inet:10025@127.0.0.1\n"
                     rf"            \(550 5.1.1 No such user\)\n", out, re.M), out
    assert "        (mail loop: pass 3 through this filter)\n" in out
    assert out.endswith("-- 3 messages\n")

    doc = json.loads(ctl(spool.config, "queue", "list", "--json").stdout)
    assert doc["count"] == 3 and doc["spool"] == str(spool.spool)
    m = {x["queue_id"]: x for x in doc["messages"]}
    d = m[late]
    assert d["queue_name"] == "deferred" and d["sender"] == "a@example.com" and d["attempts"] == 2
    assert abs(d["next_attempt_time"] - (now + 600)) <= 1 and abs(d["arrival_time"] - (now - 7200)) <= 1
    assert [r["status"] for r in d["recipients"]] == ["pending", "delivered", "failed"]
    assert d["recipients"][0]["delay_reason"] == "451 4.3.0 Mailbox busy, try later"
    assert d["recipients"][1]["delay_reason"] is None
    assert m[queue_id(2)]["hold_reason"].startswith("mail loop")
    assert m[queue_id(3)]["verdict"] is None and m[queue_id(3)]["recipients"][0]["status"] is None
    only = json.loads(ctl(spool.config, "queue", "list", "--json", "--state", "hold").stdout)
    assert [x["queue_id"] for x in only["messages"]] == [queue_id(2)]

    # queue show: readable, --raw is the file, --body the message, --json one document.
    shown = ctl(spool.config, "queue", "show", late).stdout
    assert f"*** ENVELOPE deferred/{late} ***\n" in shown
    assert re.search(r"^state:          deferred, next attempt \S+Z \(in ", shown, re.M), shown
    assert "sender:         <a@example.com>\n" in shown
    assert "recipient:      <b@example.org>\n    status:     pending via inet:10025@127.0.0.1\n" in shown
    assert re.search(r"    last error: \S+Z: 451 4.3.0 Mailbox busy, try later\n", shown), shown
    assert "client:         localhost[127.0.0.1]:40000 helo=client.example with ESMTP\n" in shown
    assert "verdict:        pass\n" in shown
    raw = subprocess.run([str(postern_binary("posternctl")), "queue", "show", "--raw", late, "--config", str(spool.config)],
                         capture_output=True, timeout=20).stdout
    assert raw == (spool.spool / "deferred" / late).read_bytes()
    body = subprocess.run([str(postern_binary("posternctl")), "queue", "show", "--body", late, "--config", str(spool.config)],
                          capture_output=True, timeout=20).stdout
    assert body.startswith(b"Received: from client.example") and body.endswith(b"\r\n\r\nbody\r\n")
    one = json.loads(ctl(spool.config, "queue", "show", "--json", late).stdout)
    assert one["queue_id"] == late and one["recipients"][2]["delay_reason"] == "550 5.1.1 No such user"

    # An empty but present queue is 0 messages, exit 0.
    for q in (late, queue_id(2), queue_id(3)):
        assert ctl(spool.config, "queue", "delete", q).returncode == 0
    r = ctl(spool.config, "queue", "list")
    assert r.returncode == 0 and r.stdout == "-- 0 messages\n"
    assert json.loads(ctl(spool.config, "queue", "list", "--json").stdout) == {
        "spool": str(spool.spool), "count": 0, "messages": []}


def test_quarantine_commands(spool):
    q1, q2 = queue_id(1), queue_id(2)
    spool.put("quarantine", q1, recipients=("b@example.org", "c@example.org"), statuses="PP")
    spool.put("quarantine", q2)
    doc = json.loads(ctl(spool.config, "quarantine", "list", "--json").stdout)
    assert doc["count"] == 2 and doc["path"] == str(spool.quarantine)
    assert [r["address"] for r in doc["messages"][0]["recipients"]] == ["b@example.org", "c@example.org"]
    assert doc["messages"][0]["recipients"][0]["blocked"] is True
    assert "b@example.org" in ctl(spool.config, "quarantine", "show", q1).stdout

    # --rcpt that names no recipient of the message: 67, and nothing is written.
    r = ctl(spool.config, "quarantine", "release", "--rcpt", "nobody@example.org", q1)
    assert r.returncode == EX_NOUSER and r.stderr.startswith(f"posternctl: {q1}: no recipient of {q1} matches")
    assert not list((spool.spool / "outgoing").iterdir())

    r = ctl(spool.config, "quarantine", "release", "--delete", q1, env=dict(os.environ, SUDO_USER="bob"))
    assert r.returncode == 0, r.stderr
    new = [p.name for p in (spool.spool / "outgoing").iterdir()]
    assert len(new) == 1 and new[0] != q1
    assert f"posternctl: {q1}: released from the quarantine as {new[0]} by user=root uid=0 sudo_user=bob\n" in r.stderr
    assert f"posternctl: {q1}: deleted from the quarantine by user=root uid=0 sudo_user=bob\n" in r.stderr
    assert not (spool.quarantine / q1).exists()

    r = ctl(spool.config, "quarantine", "delete", "ALL")
    assert r.returncode == 0 and r.stderr == f"posternctl: {q2}: deleted from the quarantine by user=root uid=0\n"
    assert ctl(spool.config, "quarantine", "list").stdout == "-- 0 messages\n"


def test_version_is_the_same_everywhere():
    versions = set()
    for name in ("posternctl", "receiverd", "scannerd", "senderd"):
        r = subprocess.run([str(postern_binary(name)), "--version"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, (name, r.stderr)
        versions.add(r.stdout.strip())
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions.pop())


def test_every_command_documents_the_exit_codes():
    for args in (["queue", "list"], ["queue", "delete"], ["quarantine", "release"], ["status"], ["queue", "flush"]):
        r = subprocess.run([str(postern_binary("posternctl")), *args, "--help"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and "Exit codes (sysexits.h)" in r.stdout and "66 no such message" in r.stdout, args


def test_admin_changes_go_to_syslog(spool):
    """The same lines reach syslog (facility mail, ident posternctl), as
    postsuper's do. posternctl runs in a private mount namespace whose /dev/log
    is the test's own datagram socket: the host's /dev is not touched."""
    import socket
    import tempfile
    qid = queue_id(1)
    spool.put("deferred", qid)
    d = Path(tempfile.mkdtemp(prefix="pe2e-log."))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(d / "log"))
    sock.settimeout(10)
    try:
        inner = (f"mount -t tmpfs tmpfs /dev && ln -s {d / 'log'} /dev/log && "
                 f"exec {postern_binary('posternctl')} queue delete {qid} --config {spool.config}")
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, SUDO_USER="carol"))
        assert r.returncode == 0, r.stderr
        line = f"{qid}: deleted from deferred/ by user=root uid=0 sudo_user=carol"
        assert r.stderr == f"posternctl: {line}\n"
        datagram = sock.recv(4096).decode()
        # <PRI> = facility mail (2) * 8 + notice (5) = 21
        assert re.fullmatch(rf"<21>\w{{3}} [ \d]\d \d\d:\d\d:\d\d posternctl\[\d+\]: {re.escape(line)}\n?", datagram), datagram
    finally:
        sock.close()
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
