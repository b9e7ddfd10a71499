"""The end of a session, pipelined: issue 7 without Exim.

Exim's smtp client writes MAIL, RCPT, BDAT LAST with the message and QUIT in
one go (with DATA: MAIL, RCPT and DATA, then after the 354 the data, the dot
and QUIT) and then shuts down its sending side. A half-closed
connection still reads (RFC 5321 section 4.1.1.10: the server answers QUIT
and then closes). A server that takes the client's FIN for "gone" drops its
250 after queueing the message. The client then tries again, and the message
is delivered twice.

The clients here are raw sockets, not smtplib or swaks. They stand in for
an MTA's client so that the test chooses the exact writes and the exact
moment of shutdown(SHUT_WR) or of a reset. Each case ends with the message
at the sink exactly once (or, where no 250 was given, not at all).
"""

from __future__ import annotations

import socket
import struct
import uuid
from smtplib import quotedata

import pytest

from conftest import free_port, postern_binary, split_message

SENDER = "alice@example.org"
RCPT = "bob@example.net"
SETTLE = 1.5


def make_message(subject: str) -> tuple[bytes, str]:
    mid = f"{uuid.uuid4().hex}@example.org"
    message = (
        f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\n\r\n"
        "first line\r\n.leading dot\r\n\r\nlast line\r\n"
    ).encode()
    return message, mid


class Client:
    """A raw SMTP/LMTP client: sends exactly the bytes it is given, reads
    replies one by one, and can half-close or reset the connection."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.buf = b""

    def reply(self) -> str:
        """One whole reply, its lines joined by newlines; '' at end of stream."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    assert not lines and not self.buf, f"stream ended inside a reply: {lines} {self.buf!r}"
                    return ""
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] == b" ":
                return "\n".join(lines)

    def replies(self, n: int) -> list[str]:
        return [self.reply() for _ in range(n)]

    def eof(self) -> bool:
        """True if the server closes the connection with nothing more to say."""
        return self.reply() == ""

    def reset(self) -> None:
        """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def start_postern(sink, postern, protocol: str = "smtp"):
    postern_binary("posternctl")
    port = free_port()
    postern(receiver_port=port, sender_port=sink.port, protocol=protocol)
    return port


def greet(c: Client, protocol: str) -> None:
    assert c.reply().startswith("220 ")
    c.sock.sendall(b"LHLO" if protocol == "lmtp" else b"EHLO")
    c.sock.sendall(b" client.e2e.test\r\n")
    ehlo = c.reply()
    assert ehlo.startswith("250"), ehlo
    assert "PIPELINING" in ehlo and "CHUNKING" in ehlo, ehlo


def send_transaction(c: Client, message: bytes, bdat: bool, tail: bytes = b"",
                     cut: int = 0, shutdown: bool = False) -> list[str]:
    """MAIL, RCPT and the message as an MTA's client sends them: with BDAT all
    in one write (a chunk may be pipelined); with DATA, MAIL, RCPT and DATA in
    one write and, once 354 has come (RFC 2920: DATA ends a group), the data
    and the final dot. ``tail`` (QUIT) goes in the same write as the end of the
    message, ``cut`` octets are left off that write's end, and ``shutdown``
    half-closes after it. Returns the replies read before that last write."""
    head = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\n".encode()
    early: list[str] = []
    if bdat:
        last = head + f"BDAT {len(message)} LAST\r\n".encode() + message
    else:
        c.sock.sendall(head + b"DATA\r\n")
        early = c.replies(3)
        assert [r[:3] for r in early] == ["250", "250", "354"], early
        last = quotedata(message.decode("latin-1")).encode("latin-1") + b".\r\n"
    last += tail
    c.sock.sendall(last[: len(last) - cut])
    if shutdown:
        c.sock.shutdown(socket.SHUT_WR)
    return early


def rest(bdat: bool) -> int:
    """The replies to the transaction still owed after its last write."""
    return 3 if bdat else 1


def delivered_once(sink, message: bytes, mid: str) -> None:
    sink.wait_for(1, timeout=30)
    msgs = sink.settle(SETTLE)
    copies = [m for m in msgs if f"<{mid}>" in m.header_values("Message-ID")]
    assert len(copies) == 1 and len(msgs) == 1, (
        f"expected the message once at the sink, got {len(copies)} copies ({len(msgs)} in all)")
    assert split_message(copies[0].data)[1] == split_message(message)[1], "body changed"
    assert copies[0].rcpt_tos == [RCPT]


def check_replies(replies: list[str], bdat: bool) -> None:
    expected = ["250", "250"] + ([] if bdat else ["354"]) + ["250"]
    assert [r[:3] for r in replies] == expected, replies
    assert "queued as" in replies[-1], replies[-1]


BDAT = pytest.mark.parametrize("bdat", [False, True], ids=["data", "bdat"])


@BDAT
@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_one_write_then_shutdown(sink, postern, bdat, protocol):
    """Exim's pattern: the end of the transaction and QUIT in one write, then
    shutdown(SHUT_WR). Every reply must still come, then the close."""
    port = start_postern(sink, postern, protocol)
    message, mid = make_message(f"one write, {protocol}, {'BDAT' if bdat else 'DATA'}")
    c = Client(port)
    greet(c, protocol)
    replies = send_transaction(c, message, bdat, tail=b"QUIT\r\n", shutdown=True)
    replies += c.replies(rest(bdat) + 1)
    check_replies(replies[:-1], bdat)
    assert replies[-1].startswith("221 "), replies
    assert c.eof(), "the server did not close after 221"
    c.sock.close()
    delivered_once(sink, message, mid)


@BDAT
def test_quit_pipelined_after_data(sink, postern, bdat):
    """QUIT in the same write as the end of the data, the connection left
    open: 250 queued, 221, close."""
    port = start_postern(sink, postern)
    message, mid = make_message("QUIT pipelined")
    c = Client(port)
    greet(c, "smtp")
    replies = send_transaction(c, message, bdat, tail=b"QUIT\r\n")
    replies += c.replies(rest(bdat) + 1)
    check_replies(replies[:-1], bdat)
    assert replies[-1].startswith("221 "), replies
    assert c.eof(), "the server did not close after 221"
    c.sock.close()
    delivered_once(sink, message, mid)


@BDAT
def test_shutdown_without_quit(sink, postern, bdat):
    """The client half-closes right after the end of the data, no QUIT: the
    message is still answered (250 queued) and kept; then the server closes."""
    port = start_postern(sink, postern)
    message, mid = make_message("half-close, no QUIT")
    c = Client(port)
    greet(c, "smtp")
    replies = send_transaction(c, message, bdat, shutdown=True)
    check_replies(replies + c.replies(rest(bdat)), bdat)
    assert c.eof(), "the server did not close after the client's half-close"
    c.sock.close()
    delivered_once(sink, message, mid)


@BDAT
def test_reset_after_250(sink, postern, bdat):
    """The client resets the connection as soon as it has read the 250: the
    message was accepted, so it is delivered, once."""
    port = start_postern(sink, postern)
    message, mid = make_message("reset after 250")
    c = Client(port)
    greet(c, "smtp")
    replies = send_transaction(c, message, bdat)
    check_replies(replies + c.replies(rest(bdat)), bdat)
    c.reset()
    delivered_once(sink, message, mid)


@BDAT
def test_shutdown_inside_data_keeps_nothing(sink, postern, bdat):
    """A half-close before the end of the data ends the transaction without a
    250: the message is still the client's and must not be delivered."""
    port = start_postern(sink, postern)
    message, _ = make_message("half-close inside the data")
    c = Client(port)
    greet(c, "smtp")
    replies = send_transaction(c, message, bdat, cut=20, shutdown=True)
    while (r := c.reply()) != "":
        replies.append(r)
    assert not any("queued as" in r for r in replies), replies
    c.sock.close()
    assert sink.settle(SETTLE) == [], "a message cut off inside its data was delivered"
