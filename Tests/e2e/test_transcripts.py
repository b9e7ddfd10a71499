"""Golden SMTP/LMTP transcripts (as Postfix's smtpd_check.in/.ref): each
``transcripts/NAME.in`` is sent to a live receiverd in one write (every line
ended by CRLF, pipelined), and every reply line the server gives until it
closes the connection must equal ``NAME.ref`` (queue ids masked).
``UPDATE_GOLDEN=1`` rewrites the .ref files — read the diff before
committing it; a missing .ref fails."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from conftest import free_port

HERE = Path(__file__).parent / "transcripts"
CASES = sorted(p.stem for p in HERE.glob("*.in"))


def run(port: int, script: bytes) -> str:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    out = b""
    while not out.endswith(b"\r\n"):
        out += s.recv(4096)
    s.sendall(script)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\b[0-9A-HJKMNP-TV-Z]{20}\b", "QUEUEID", text)


@pytest.mark.parametrize("name", CASES)
def test_transcript(postern, sink, name):
    port = free_port()
    postern(port, sink.port, callback_port=sink.port, protocol="lmtp" if name.startswith("lmtp") else "smtp")
    text = (HERE / f"{name}.in").read_text()
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    script = "".join(l + "\r\n" for l in lines).encode()
    got = run(port, script)
    ref = HERE / f"{name}.ref"
    if os.environ.get("UPDATE_GOLDEN") or not ref.exists():
        ref.write_text(got)
        pytest.fail(f"{ref.name} written; check it and run again")
    assert got == ref.read_text()
