"""[General] User: daemons started as root (posternctl run as root, as in a
container) bind their sockets, hand the spool to that user and run as it;
mail still flows, through sockets and spool files root never touches again."""

from __future__ import annotations

import os
import pwd
import re
import smtplib

from conftest import free_port


def uid_of(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return int(line.split()[2])   # effective
    raise AssertionError(f"no Uid line for {pid}")


def test_daemons_run_as_the_configured_user(postern, sink):
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    # The configuration and the spool below the work dir must be reachable for the user.
    p = postern(port, sink.port, settings={"General": {"User": "nobody"}}, workdir_mode=0o755)
    log = p.log_text()
    pids = {m[0]: int(m[1]) for m in re.findall(r"\b(receiverd|scannerd|senderd)\[(\d+)\]: ready", log)}
    assert set(pids) == {"receiverd", "scannerd", "senderd"}, log
    for name, pid in pids.items():
        assert uid_of(pid) == nobody.pw_uid, f"{name} runs as uid {uid_of(pid)}"
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail("a@example.com", ["b@example.org"], b"Subject: as nobody\r\n\r\nhello\r\n")
    got = sink.wait_for(1)
    assert got[0].rcpt_tos == ["b@example.org"]
    assert os.stat(p.dir / "spool" / "scan").st_uid == nobody.pw_uid
    assert log.count("switching to nobody") == 3, log
    for pid in pids.values():   # every thread: the program was executed again as the user
        for task in os.listdir(f"/proc/{pid}/task"):
            assert uid_of(int(task)) == nobody.pw_uid
