"""Hostile clients (issue 12, item 1): a slow sender that trickles its command
lines, a crowd that pushes receiverd into stress mode, one address that opens
too many sessions or opens them too fast, and a client that pipelines its
message behind a DATA that gets no 354.

The attacks are raw sockets (the test chooses every byte and every pause);
the normal clients are smtplib and swaks. Each test keeps its timeouts short
(seconds) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import select
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import free_port

GREETING_TIMEOUT = 10


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GREETING_TIMEOUT, source_address=(source, 0))


def read_reply(s: socket.socket, buf: bytearray | None = None) -> str:
    """One whole reply (its lines joined by newlines); '' when the server closed."""
    buf = bytearray() if buf is None else buf
    lines = []
    while True:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return "\n".join(lines)
            buf += chunk
        line, _, rest = bytes(buf).partition(b"\r\n")
        buf[:] = rest
        lines.append(line.decode("utf-8", "replace"))
        if len(line) < 4 or line[3:4] == b" ":
            return "\n".join(lines)


def replies_until_close(s: socket.socket) -> list[str]:
    buf = bytearray()
    out = []
    while (r := read_reply(s, buf)) != "":
        out.append(r)
    return out


def send_normally(port: int, n: int) -> None:
    """A normal client's whole transaction, one command at a time."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("normal.client.test")
        c.sendmail("normal@client.test", [f"normal{n}@example.org"],
                   f"Subject: normal {n}\r\nMessage-ID: <normal{n}@client.test>\r\n\r\nhello\r\n")


def wait_log(p, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := p.log_text()):
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{log[-3000:]}"
        time.sleep(0.1)
    return log


# ------------------------------------------------------------- slow senders

def test_a_trickled_command_line_meets_its_deadline(postern, sink):
    """Issue 12's slowloris, scaled down: with MaxSessions 20 and CommandTimeout
    4s, twenty clients send one byte of a command line every 1.5 s. Every byte
    used to restart an idle timer, so they held all twenty sessions for as long
    as they liked and everyone else got 421 too many connections, with nothing
    logged. The whole line is now due 4 s after the greeting: they are cut off
    with 421 and a log line, and a normal client gets its mail through."""
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Receiver": {"MaxSessions": "20", "CommandTimeout": "4s"}})
    line = b"HELO a.very.slow.client.example.org"   # never finished: 35 bytes, 52 s
    crowd = []
    for _ in range(20):
        s = connect(port)
        assert read_reply(s).startswith("220 ")
        s.setblocking(False)
        crowd.append(s)
    t0 = time.monotonic()
    sent = 0
    cut: dict[int, bytes] = {}
    while time.monotonic() - t0 < 7.5:
        for i, s in enumerate(crowd):
            if i not in cut:
                try:
                    s.send(line[sent:sent + 1])
                except OSError:
                    cut[i] = b""
        sent += 1
        end = time.monotonic() + 1.5
        while (left := end - time.monotonic()) > 0:
            alive = [s for i, s in enumerate(crowd) if i not in cut]
            if not alive:
                break
            readable, _, _ = select.select(alive, [], [], left)
            for s in readable:
                i = crowd.index(s)
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    cut[i] = cut.get(i, b"")
                else:
                    cut[i] = data
    held = 20 - len(cut)
    for s in crowd:
        s.close()
    assert held == 0, f"{held} of 20 trickling clients still connected after 7.5 s (CommandTimeout 4s)"
    assert all(r.startswith(b"421 4.4.2 ") for r in cut.values()), cut
    log = p.log_text()
    assert log.count("timeout after CONNECT while receiving a command line") == 20, log[-3000:]
    send_normally(port, 1)
    assert sink.wait_for(1, timeout=10)[0].rcpt_tos == ["normal1@example.org"]


def test_a_client_idle_between_commands_still_times_out(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings={"Receiver": {"CommandTimeout": "2s"}})
    s = connect(port)
    assert read_reply(s).startswith("220 ")
    # The clock starts before EHLO goes out: receiverd counts CommandTimeout from the
    # moment it read the line, which is before its reply reaches us (once, counted from
    # the reply, the 421 came 1.9995 s later).
    t0 = time.monotonic()
    s.sendall(b"EHLO idle.example\r\n")
    assert read_reply(s).startswith("250")
    assert replies_until_close(s) == ["421 4.4.2 filter.e2e.test Error: timeout exceeded"]
    assert 2 <= time.monotonic() - t0 < 5
    wait_log(p, "timeout after EHLO")


# ------------------------------------------------------------- stress mode

def test_stress_mode_shortens_the_timeouts(postern, sink):
    """MaxSessions 10, stress from 50% (5 sessions): four idle sessions keep
    their minute; the fifth session tips receiverd into stress, and idle
    sessions are cut off after StressCommandTimeout (2 s) until fewer than nine
    tenths of the level are open; then the normal timeouts apply again. Both
    changes are logged once; a normal client is served throughout."""
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port,
                settings={"Receiver": {"MaxSessions": "10", "StressThreshold": "50%",
                                       "CommandTimeout": "1m", "StressCommandTimeout": "2s"}})
    idle = []
    for _ in range(4):
        s = connect(port)
        assert read_reply(s).startswith("220 ")
        idle.append(s)
    time.sleep(3)
    assert "stress mode" not in p.log_text()
    fifth = connect(port)
    assert read_reply(fifth).startswith("220 ")
    wait_log(p, "warning: stress mode: 5 of MaxSessions 10 sessions open (StressThreshold 50%): CommandTimeout 2s")
    log = wait_log(p, "stress mode ended: 4 sessions open", timeout=3)
    readable, _, _ = select.select(idle + [fifth], [], [], 1)
    cut = [s for s in readable if s in idle]
    assert 1 <= len(cut) == len(readable), "the idle sessions are cut, not the new one"
    for s in cut:
        assert replies_until_close(s) == ["421 4.4.2 filter.e2e.test Error: timeout exceeded"]
    assert log.count("timeout after CONNECT (stress mode)") == len(cut), log[-3000:]
    # Out of stress, the rest keep their minute.
    time.sleep(3)
    readable, _, _ = select.select([s for s in idle + [fifth] if s not in cut], [], [], 0)
    assert readable == [], "a session was cut after stress mode ended"
    log = p.log_text()
    assert log.count("stress mode:") == 1 and log.count("stress mode ended") == 1, log[-3000:]
    send_normally(port, 1)
    sink.wait_for(1, timeout=10)


# ------------------------------------------------------------- per address

def test_sessions_per_address_are_limited_except_for_limit_exempt(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings={"Receiver": {"ClientConnectionLimit": "2", "LimitExempt": "127.0.0.2"}})
    held = [connect(port) for _ in range(2)]
    assert all(read_reply(s).startswith("220 ") for s in held)
    third = connect(port)
    assert replies_until_close(third) == ["421 4.7.0 filter.e2e.test Error: too many connections from 127.0.0.1"]
    wait_log(p, "warning: Connection concurrency limit exceeded: 3 from 127.0.0.1 (ClientConnectionLimit 2)")
    exempt = [connect(port, source="127.0.0.2") for _ in range(4)]
    assert all(read_reply(s).startswith("220 ") for s in exempt), "127.0.0.2 is in LimitExempt"
    held.pop().close()
    time.sleep(0.5)
    again = connect(port)
    assert read_reply(again).startswith("220 "), "a session ended, so there is room again"
    for s in held + exempt + [again]:
        s.close()


def test_new_connections_per_address_are_limited(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings={"Receiver": {
        "ClientConnectionRateLimit": "3", "ClientRateTimeUnit": "3s", "LimitExempt": ""}})
    time.sleep(3.2)   # the fixture's own connections (waiting for the port, the greeting) counted too
    t0 = time.monotonic()
    for _ in range(3):
        s = connect(port)
        assert read_reply(s).startswith("220 ")
        s.close()
    s = connect(port)
    assert replies_until_close(s) == ["421 4.7.0 filter.e2e.test Error: too many connections from 127.0.0.1"]
    wait_log(p, "warning: Connection rate limit exceeded: 4 from 127.0.0.1 for 3s (ClientConnectionRateLimit 3)")
    time.sleep(max(0.0, 3.5 - (time.monotonic() - t0)))
    s = connect(port)
    assert read_reply(s).startswith("220 "), "a new unit"
    s.close()


def test_loopback_is_never_limited_by_default(postern, sink):
    """The MTA feeding Postern is its client: 40 sessions from 127.0.0.1 at once."""
    port = free_port()
    postern(port, sink.port)
    crowd = [connect(port) for _ in range(40)]
    assert all(read_reply(s).startswith("220 ") for s in crowd)
    for s in crowd:
        s.close()


# ------------------------------------------------------------- pipelining

def greet(port: int) -> socket.socket:
    s = connect(port)
    assert read_reply(s).startswith("220 ")
    s.sendall(b"EHLO attacker.example\r\n")
    assert "PIPELINING" in read_reply(s)
    return s


HIDDEN = (b"Subject: an innocent message\r\n\r\n"
          b"RCPT TO:<victim@example.net>\r\n"
          b"DATA\r\n"
          b"Subject: smuggled\r\n\r\nhidden\r\n.\r\n")
FIRST, REST = b"Subject: part one\r\n\r\n", b"part two\r\n"

# Issue 12's attack: MAIL, DATA without RCPT and the message in one write. The text
# was read as commands: its RCPT joined the transaction, its DATA got 354 and the
# "smuggled" message was delivered. The same with CHUNKING: the first chunk, sent
# without a recipient, is thrown away, and a RCPT and a last chunk sent behind it made
# a message of the rest. Now the refused DATA or BDAT is answered, then 554 5.5.0, and
# the session ends; nothing is delivered.
ATTACKS = {
    "DATA": (b"MAIL FROM:<attacker@example.org>\r\nDATA\r\n" + HIDDEN + b"QUIT\r\n",
             "554 5.5.1 Error: no valid recipients"),
    "BDAT": (b"MAIL FROM:<attacker@example.org>\r\n" + f"BDAT {len(FIRST)}\r\n".encode() + FIRST
             + b"RCPT TO:<victim@example.net>\r\n" + f"BDAT {len(REST)} LAST\r\n".encode() + REST + b"QUIT\r\n",
             "503 5.5.1 Error: need MAIL and RCPT before BDAT"),
}


@pytest.mark.parametrize("verb", sorted(ATTACKS))
def test_text_behind_a_refused_DATA_or_BDAT_is_not_read_as_commands(postern, sink, verb):
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port)
    s = greet(port)
    attack, refusal = ATTACKS[verb]
    s.sendall(attack)
    assert replies_until_close(s) == ["250 2.1.0 Ok", refusal, "554 5.5.0 Error: SMTP protocol synchronization"]
    assert sink.settle(2) == [], "a message was delivered"
    wait_log(p, f"improper command pipelining after {verb}: ")


def test_swaks_pipelining_goes_on(postern, sink):
    """What PIPELINING is for: swaks sends MAIL, RCPT (one refused) and DATA in
    one write and the message after 354."""
    port = free_port()
    p = postern(port, sink.port, callback_port=sink.port)
    run = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(port), "--pipeline", "--ehlo", "pipelining.example",
         "--from", "a@example.org", "--to", "b@example.net,no-domain", "--header", "Subject: pipelined",
         "--body", "hello"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "<** 501 5.1.3" in run.stdout and "<** " in run.stdout
    msgs = sink.wait_for(1, timeout=10)
    assert msgs[0].rcpt_tos == ["b@example.net"]
    assert "improper command pipelining" not in p.log_text()
