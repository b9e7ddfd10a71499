"""Golden SMTP/LMTP transcripts (as Postfix's smtpd_check.in/.ref): each
``transcripts/NAME.in`` is sent to a live receiverd as a client would, and
every reply line the server gives until it closes the connection must equal
``NAME.ref`` (queue ids masked).

A line ``=== wait`` in a .in file ends one write (an RFC 2920 group: every
line ended by CRLF): the client then reads the replies to everything it sent
before it writes again; the last group is followed by reading to the close.
A group that ends with DATA and gets 354 is followed by the message text.
Files named pipelining* send what RFC 2920 forbids, to show the refusal.
``UPDATE_GOLDEN=1`` rewrites the .ref files — read the diff before
committing it; a missing .ref fails. ReceiverCoreTests.TranscriptReplayTests
replays the same files in process."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from conftest import free_port

HERE = Path(__file__).parent / "transcripts"
CASES = sorted(p.stem for p in HERE.glob("*.in"))
WAIT = "=== wait"


def groups(text: str) -> list[bytes]:
    """The writes of a .in file: its lines, CRLF-ended, split at the wait lines."""
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    out: list[list[str]] = [[]]
    for line in lines:
        if line == WAIT:
            out.append([])
        else:
            out[-1].append(line)
    return ["".join(l + "\r\n" for l in g).encode() for g in out]


class Replies:
    """The replies a client is owed for what it sent, and how many have come."""

    def __init__(self, lmtp: bool):
        self.lmtp = lmtp
        self.owed: list[str] = ["CONNECT"]    # the verb each reply answers; the greeting first
        self.text = b""
        self.in_data = False

    def finals(self) -> list[str]:
        """The last line of each complete reply received so far."""
        lines = self.text.decode("utf-8", "replace").split("\r\n")[:-1]
        return [l for l in lines if len(l) < 4 or l[3] == " "]

    def sent(self, write: bytes) -> None:
        """Counts the replies a write earns: one per command (BDAT's chunk is skipped);
        the end of the message one, or in LMTP one per recipient taken."""
        pos = 0
        while pos < len(write):
            end = write.index(b"\r\n", pos)
            line, pos = write[pos:end], end + 2
            if self.in_data:
                if line == b".":
                    self.in_data = False
                    self.owed += ["END"] * (self.recipients_taken() if self.lmtp else 1)
                continue
            verb = line.split(b" ", 1)[0].decode("ascii", "replace").upper()
            self.owed.append(verb)
            if verb == "BDAT":
                pos = end + 2 + int(line.split()[1])

    def recipients_taken(self) -> int:
        finals = self.finals()
        mail = max(i for i, v in enumerate(self.owed) if v == "MAIL")
        return sum(1 for i in range(mail, len(self.owed)) if self.owed[i] == "RCPT" and finals[i][0] == "2")

    def complete(self) -> bool:
        return len(self.finals()) >= len(self.owed)

    def waited(self) -> None:
        """After a write's replies: a DATA that got 354 is followed by the message."""
        if self.owed[-1] == "DATA" and self.finals()[-1].startswith("354"):
            self.in_data = True


def run(port: int, writes: list[bytes], lmtp: bool) -> str:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    r = Replies(lmtp)
    for n, write in enumerate(writes):
        while not r.complete():
            chunk = s.recv(65536)
            assert chunk, f"closed before the replies to write {n} came: {r.text!r}"
            r.text += chunk
        r.waited()
        s.sendall(write)
        r.sent(write)
    while chunk := s.recv(65536):
        r.text += chunk
    s.close()
    text = r.text.decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\b[0-9A-HJKMNP-TV-Z]{20}\b", "QUEUEID", text)


@pytest.mark.parametrize("name", CASES)
def test_transcript(postern, sink, name):
    port = free_port()
    lmtp = name.startswith("lmtp")
    postern(port, sink.port, callback_port=sink.port, protocol="lmtp" if lmtp else "smtp")
    got = run(port, groups((HERE / f"{name}.in").read_text()), lmtp)
    ref = HERE / f"{name}.ref"
    if os.environ.get("UPDATE_GOLDEN") or not ref.exists():
        ref.write_text(got)
        pytest.fail(f"{ref.name} written; check it and run again")
    assert got == ref.read_text()
