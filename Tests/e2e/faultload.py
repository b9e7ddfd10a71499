"""Load and bookkeeping for the fault tests (test_faults.py): Postfix's
smtp-source as the load, a recording tap in front of receiverd that notes
what the client was told about each message, a next hop that can be made to
misbehave, and the accounting that finds lost and duplicated mail.

- ``Tap``: a transparent TCP relay between smtp-source and receiverd. It
  passes every byte unchanged and reads both directions, so that each
  transaction's recipient is paired with the reply to its end of data (or to
  the MAIL/RCPT/DATA that refused it). smtp-source only counts refusals
  ("end of data rejected: 452 ...") without saying which message; the tap
  says which. It is an observer, not a test double: receiverd's replies reach
  smtp-source as receiverd wrote them.
- ``NextHop``: where senderd delivers. Healthy, it relays each connection to
  the test's aiosmtpd sink byte for byte; switched into a fault it is a
  scripted test double, because no real MTA can be made on demand to stall in
  the middle of DATA, reset connections, answer 421 to everything, or accept
  a connection and never say a word.
- ``SmtpSource``: runs smtp-source (again, with the messages left, after it
  gave up on a connection a killed receiverd dropped: it treats a lost
  connection as fatal even with -A; an MTA would queue the message and retry).
- ``account``: per message, what the client was told, how often it reached
  the sink, and whether it is still in the spool; ``table`` formats the
  summary.

Every message is told apart by its envelope recipient: smtp-source -N numbers
each RCPT TO (``<N>r@runK.load.test``, K counting smtp-source runs).
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port

RCPT_DOMAIN = "load.test"
RCPT_RE = re.compile(r"^(\d+)r@run(\d+)\." + re.escape(RCPT_DOMAIN) + r"$")
SPOOL_STATES = ("incoming", "scan", "outgoing", "deferred", "hold", "corrupt")


class LoopThread:
    """An asyncio event loop in a thread of its own, for servers that run
    while the test's own thread waits and counts."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="faultload", daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.call(cancel_all(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


async def _close(writer: asyncio.StreamWriter | None, reset: bool = False) -> None:
    if writer is None:
        return
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                # SO_LINGER 0: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, asyncio.CancelledError):
        pass


# ---------------------------------------------------------------- the tap

@dataclass
class Txn:
    """One mail transaction as the client saw it."""
    run: int
    started: float
    rcpts: list[str] = field(default_factory=list)
    #: The reply that ended it: to end of data, or the refusal of MAIL/RCPT/DATA; None when
    #: the connection ended first.
    code: int | None = None
    text: str = ""
    stage: str = ""
    #: The end of data was sent (a transaction cut after this was in flight).
    dot_sent: bool = False
    ended: float | None = None

    @property
    def key(self) -> str:
        return self.rcpts[0] if self.rcpts else ""

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def refused(self) -> bool:
        return self.code is not None and self.code >= 400


class _TapConn:
    """Both directions of one relayed connection, parsed as smtp-source
    speaks (no pipelining: one command, one reply)."""

    def __init__(self, tap: "Tap") -> None:
        self.tap = tap
        self.cbuf = b""
        self.sbuf = b""
        self.lines: list[str] = []
        self.pending = collections.deque(["CONNECT"])
        self.in_data = False
        self.txn: Txn | None = None

    def client_bytes(self, data: bytes) -> None:
        self.cbuf += data
        while True:
            if self.in_data:
                i = self.cbuf.find(b"\r\n.\r\n")
                if i < 0:
                    self.cbuf = self.cbuf[-4:]
                    return
                self.cbuf = self.cbuf[i + 5:]
                self.in_data = False
                if self.txn is not None:
                    self.txn.dot_sent = True
                self.pending.append(".")
                continue
            i = self.cbuf.find(b"\r\n")
            if i < 0:
                return
            line = self.cbuf[:i].decode("latin-1")
            self.cbuf = self.cbuf[i + 2:]
            verb = line[:4].upper()
            if verb == "MAIL":
                self.txn = Txn(run=self.tap.run, started=time.monotonic())
                with self.tap.lock:
                    self.tap.txns.append(self.txn)
            elif verb == "RCPT" and self.txn is not None:
                m = re.search(r"<([^>]*)>", line)
                self.txn.rcpts.append((m.group(1) if m else line).lower())
            self.pending.append(verb)

    def server_bytes(self, data: bytes) -> None:
        self.sbuf += data
        while (i := self.sbuf.find(b"\r\n")) >= 0:
            line = self.sbuf[:i].decode("latin-1")
            self.sbuf = self.sbuf[i + 2:]
            self.lines.append(line)
            if len(line) > 3 and line[3] == "-":
                continue
            code = int(line[:3]) if line[:3].isdigit() else 0
            text = " ".join(l[4:] for l in self.lines)
            self.lines = []
            verb = self.pending.popleft() if self.pending else "?"
            self.reply(verb, code, text)

    def reply(self, verb: str, code: int, text: str) -> None:
        if verb == "DATA" and code == 354:
            self.in_data = True   # set before the 354 is passed on: the data follows it
            return
        t = self.txn
        if t is None or t.code is not None or verb not in ("MAIL", "RCPT", "DATA", "."):
            return
        if verb == "." or code >= 400:
            t.code, t.text, t.stage, t.ended = code, text, verb, time.monotonic()

    def closed(self) -> None:
        t = self.txn
        if t is not None and t.code is None and t.ended is None:
            t.stage, t.ended = "cut", time.monotonic()


class Tap:
    """Transparent relay 127.0.0.1:port -> receiverd that records every
    transaction (see the module's docstring)."""

    def __init__(self, lt: LoopThread, upstream_port: int) -> None:
        self.lt = lt
        self.port = free_port()
        self.upstream = upstream_port
        self.txns: list[Txn] = []
        self.lock = threading.Lock()
        self.run = 0
        self.server: asyncio.base_events.Server | None = None
        lt.call(self._start())

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        try:
            await self._session(creader, cwriter)
        except asyncio.CancelledError:
            pass   # the test is over (LoopThread.close)

    async def _session(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            await _close(cwriter)
            return
        conn = _TapConn(self)

        async def pump(reader, writer, parse):
            try:
                while data := await reader.read(65536):
                    parse(data)
                    writer.write(data)
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass

        up = asyncio.ensure_future(pump(creader, uwriter, conn.client_bytes))
        down = asyncio.ensure_future(pump(ureader, cwriter, conn.server_bytes))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Either side gone: so is the session (receiverd killed, or the client quit).
            conn.closed()
            for t in (up, down):
                t.cancel()
            await _close(uwriter)
            await _close(cwriter)

    def close(self) -> None:
        async def stop():
            if self.server is not None:
                self.server.close()
        self.lt.call(stop())

    def snapshot(self) -> list[Txn]:
        with self.lock:
            return list(self.txns)

    def wait_open(self, timeout: float) -> bool:
        """Waits until some transaction has begun and has no answer yet."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(x.ended is None for x in self.snapshot()):
                return True
            time.sleep(0.002)
        return False


# ---------------------------------------------------------------- the next hop

class NextHop:
    """senderd's next hop. ``mode``:

    - ``relay``: healthy; each connection is relayed byte for byte to the sink;
    - ``stall``: greets, accepts the envelope and DATA, reads a little of the
      message, then stops reading and never answers;
    - ``reset``: greets, accepts the envelope and DATA, reads a little of the
      message, then resets the connection (RST);
    - ``421``: answers every connection and every command with 421;
    - ``silent``: accepts the TCP connection and never sends a byte;
    - ``swallow``: relays to the sink, which takes the message, but passes
      nothing on from its 250 to the end of data onwards: the sender cannot
      know the message arrived (RFC 1047), so its retry is a duplicate, the
      one kind allowed.

    The fault modes are scripted test doubles: no real MTA can be made to do
    this on demand (``swallow`` keeps the real sink and only drops its replies). A new connection gets the mode of the moment; a relayed one
    meets a fault that began since at its next MAIL command."""

    def __init__(self, lt: LoopThread, sink_port: int) -> None:
        self.lt = lt
        self.port = free_port()
        self.sink_port = sink_port
        self.mode = "relay"
        self.connections: collections.Counter[str] = collections.Counter()
        self.writers: set[asyncio.StreamWriter] = set()
        lt.call(self._start())

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._session(reader, writer)
        except asyncio.CancelledError:
            pass   # the test is over (LoopThread.close)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        self.connections[mode] += 1
        self.writers.add(writer)
        reset = mode == "reset"
        try:
            if mode in ("relay", "swallow"):
                reset = await self._relay(reader, writer)
            elif mode == "silent":
                while await reader.read(4096):
                    pass
            elif mode == "421":
                writer.write(b"421 4.3.2 hop.test Service not available, closing transmission channel\r\n")
                await writer.drain()
                while line := await reader.readline():
                    if line.upper().startswith(b"QUIT"):
                        writer.write(b"221 2.0.0 Bye\r\n")
                        await writer.drain()
                        break
                    writer.write(b"421 4.3.2 hop.test Service not available\r\n")
                    await writer.drain()
            else:
                await self._scripted(reader, writer, mode)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            await _close(writer, reset=reset)

    async def _scripted(self, reader, writer, mode: str) -> None:
        writer.write(b"220 hop.test ESMTP\r\n")
        await writer.drain()
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-hop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                await reader.read(100)     # a little of the message, then:
                if mode == "reset":
                    return                 # closed with RST by the caller
                await asyncio.sleep(3600)  # stall: read nothing more, answer nothing
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()

    async def _relay(self, reader, writer) -> None:
        """Relays to the sink. senderd keeps connections open for the next message,
        so a connection opened while the hop was healthy meets a fault that began
        since at its next MAIL: 421 and close, a reset, or no answer from then on.
        Returns whether to close with a reset."""
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.sink_port)
        in_data = False
        reset = [False]
        swallowed = False   # the end of data went to the sink; its answer is not passed on

        async def upstream():
            nonlocal in_data, swallowed
            buf = b""
            while data := await reader.read(65536):
                buf += data
                out = b""
                while buf:
                    if in_data:
                        i = buf.find(b"\r\n.\r\n")
                        cut = len(buf) - 4 if i < 0 else i + 5
                        if cut <= 0:
                            break
                        out, buf = out + buf[:cut], buf[cut:]
                        if i >= 0:
                            in_data = False
                            if self.mode == "swallow" and not swallowed:
                                # Set before the end of data reaches the sink, and so before its 250.
                                swallowed = True
                                self.connections["swallow (end of data)"] += 1
                        continue
                    i = buf.find(b"\r\n")
                    if i < 0:
                        break
                    line, buf = buf[:i + 2], buf[i + 2:]
                    fault = self.mode
                    if line[:4].upper() == b"MAIL" and fault not in ("relay", "swallow"):
                        uwriter.write(out)
                        self.connections[fault + " (cached)"] += 1
                        if fault == "421":
                            writer.write(b"421 4.3.2 hop.test Service not available, closing transmission channel\r\n")
                            await writer.drain()
                        elif fault == "reset":
                            reset[0] = True
                        else:
                            await asyncio.sleep(3600)   # stall, silent: no answer from now on
                        return
                    out += line
                uwriter.write(out)
                await uwriter.drain()

        async def downstream():
            nonlocal in_data
            buf = b""
            while data := await ureader.read(65536):
                buf += data
                while (i := buf.find(b"\r\n")) >= 0:
                    if buf.startswith(b"354"):
                        in_data = True   # before senderd can see it and send the message
                    buf = buf[i + 2:]
                if swallowed:
                    continue   # senderd waits for an answer that never comes
                writer.write(data)
                await writer.drain()

        async def guarded(coro):
            try:
                await coro
            except OSError:
                pass

        tasks = {asyncio.ensure_future(guarded(upstream())), asyncio.ensure_future(guarded(downstream()))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await _close(uwriter)
        return reset[0]

    def faulty(self, mode: str) -> str:
        """How many connections met the fault: new ones, cached ones."""
        return f"{self.connections[mode]} new and {self.connections[mode + ' (cached)']} cached connections"

    def met(self, mode: str) -> int:
        return self.connections[mode] + self.connections[mode + " (cached)"]

    def close(self) -> None:
        async def stop():
            self.server.close()
            for w in list(self.writers):
                await _close(w)
        self.lt.call(stop())


# ---------------------------------------------------------------- smtp-source

SMTP_SOURCE = "/usr/sbin/smtp-source"


class SmtpSource:
    """Runs ``smtp-source -A -N -s SESSIONS -w 1 -l LENGTH`` against the tap
    until `total` transactions have been started; runs it again for the rest
    when it exits early (it gives up on a lost connection)."""

    def __init__(self, tap: Tap, total: int, sessions: int, length: int = 3000, log: Path | None = None) -> None:
        self.tap = tap
        self.total = total
        self.sessions = sessions
        self.length = length
        self.log = log
        self.runs: list[tuple[list[str], int, str]] = []   # argv, exit status, stderr tail
        self.proc: subprocess.Popen | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="smtp-source", daemon=True)

    def start(self) -> "SmtpSource":
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopped:
            left = self.total - len(self.tap.snapshot())
            if left <= 0:
                return
            self.tap.run += 1
            argv = [SMTP_SOURCE, "-A", "-N", "-s", str(min(self.sessions, left)), "-m", str(left),
                    "-w", "1", "-l", str(self.length), "-M", "client.load.test",
                    "-f", "sender@client.load.test", "-t", f"r@run{self.tap.run}.{RCPT_DOMAIN}",
                    "-S", f"fault load run {self.tap.run}", f"127.0.0.1:{self.tap.port}"]
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
            _, err = self.proc.communicate()
            text = err.decode("utf-8", "replace")
            if self.log is not None:
                with open(self.log, "a") as f:
                    f.write(f"$ {' '.join(argv)}\n{text}exit {self.proc.returncode}\n")
            self.runs.append((argv, self.proc.returncode, "\n".join(text.splitlines()[-5:])))
            if self.proc.returncode != 0 and "lost connection" not in text:
                return   # anything but a dropped connection is a broken setup: no loop

    def wait(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.stop()
            raise AssertionError(f"smtp-source still running after {timeout:.0f}s")

    def stop(self) -> None:
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(10)


# ---------------------------------------------------------------- accounting

def sink_keys(sink) -> list[str]:
    """Every delivery of a load message at the sink, by its recipient (duplicates repeated)."""
    return [r.lower() for m in list(sink.messages) for r in m.rcpt_tos if RCPT_RE.match(r.lower())]


def spool_keys(spool: Path) -> dict[str, list[str]]:
    """Load messages still in the spool: state -> recipients."""
    found: dict[str, list[str]] = {}
    for state in SPOOL_STATES:
        d = spool / state
        try:
            names = list(d.iterdir())
        except FileNotFoundError:
            continue
        for f in names:
            try:
                data = f.read_bytes()
            except OSError:
                continue
            for m in re.finditer(rb"\nrcpt <([^>]*)>", data):
                addr = m.group(1).decode("latin-1").lower()
                if RCPT_RE.match(addr):
                    found.setdefault(state, []).append(addr)
    return found


def spool_count(spool: Path, states=("incoming", "scan", "outgoing", "deferred")) -> int:
    n = 0
    for state in states:
        try:
            n += len(list((spool / state).iterdir()))
        except FileNotFoundError:
            pass
    return n


@dataclass
class Tally:
    scenario: str
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    no_reply: int = 0
    in_flight: int = 0            # no reply, but the end of data had been sent
    no_rcpt: int = 0              # no reply, cut before its RCPT
    delivered: int = 0            # distinct messages at the sink
    duplicates: int = 0           # deliveries beyond the first
    left: int = 0                 # accepted messages still in the spool (not corrupt/)
    lost: int = 0                 # accepted, not delivered, not in the spool
    refused_delivered: int = 0    # refused to the client, delivered all the same
    unsent_delivered: int = 0     # never completed by the client, delivered all the same
    codes: collections.Counter = field(default_factory=collections.Counter)
    notes: str = ""
    lost_examples: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def problems(self, max_duplicates: int = 0) -> list[str]:
        p = []
        if self.lost:
            p.append(f"{self.lost} accepted (250) messages lost, e.g. {self.lost_examples[:5]}")
        if self.refused_delivered:
            p.append(f"{self.refused_delivered} messages refused to the client were delivered anyway "
                     f"(the client's retry delivers them twice)")
        if self.unsent_delivered:
            p.append(f"{self.unsent_delivered} messages the client never finished were delivered")
        if self.duplicates > max_duplicates:
            p.append(f"{self.duplicates} duplicate deliveries (at most {max_duplicates} allowed here)")
        return p


def account(scenario: str, txns: list[Txn], sink, spool: Path) -> Tally:
    t = Tally(scenario)
    deliveries = collections.Counter(sink_keys(sink))
    spooled = spool_keys(spool)
    in_spool = {k for state, ks in spooled.items() if state != "corrupt" for k in ks}
    corrupt = set(spooled.get("corrupt", []))
    for x in txns:
        if len(x.rcpts) > 1:
            raise AssertionError(f"transaction with {x.rcpts!r}: the accounting expects one recipient each")
        if not x.rcpts:
            # Ended before its RCPT: refused at MAIL, or cut by a killed receiverd. Without a
            # recipient it cannot be delivered; a 250 for it would be a broken tap.
            if x.accepted:
                raise AssertionError(f"a 250 for a transaction without a recipient: {x}")
            t.sent += 1
            if x.refused:
                t.refused += 1
                t.codes[f"{x.code} {x.text.split(' ', 1)[0]} at {x.stage}"] += 1
            else:
                t.no_reply += 1
                t.no_rcpt += 1
            continue
        t.sent += 1
        n = deliveries.get(x.key, 0)
        if n:
            t.delivered += 1
            t.duplicates += n - 1
        if x.accepted:
            t.accepted += 1
            if not n:
                if x.key in in_spool:
                    t.left += 1
                else:
                    t.lost += 1
                    t.lost_examples.append(x.key + (" (in corrupt/)" if x.key in corrupt else ""))
        elif x.refused:
            t.refused += 1
            t.codes[f"{x.code} {x.text.split(' ', 1)[0]} at {x.stage}"] += 1
            if n:
                t.refused_delivered += 1
        else:
            t.no_reply += 1
            if x.dot_sent:
                t.in_flight += 1
            elif n:
                t.unsent_delivered += 1
    return t


COLUMNS = ("scenario", "sent", "accepted (250)", "refused (4xx/5xx)", "no reply", "delivered",
           "duplicates", "left in spool", "lost")


def table(rows: list[Tally]) -> list[str]:
    cells = [COLUMNS] + [(r.scenario, str(r.sent), str(r.accepted), str(r.refused), str(r.no_reply),
                          str(r.delivered), str(r.duplicates), str(r.left), str(r.lost)) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    out = []
    for n, c in enumerate(cells):
        out.append("| " + " | ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                                     for i, v in enumerate(c)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        codes = ", ".join(f"{k} x{v}" for k, v in sorted(r.codes.items()))
        bits = [b for b in (f"refusals: {codes}" if codes else "", r.notes,
                            f"{r.in_flight} cut after the end of data" if r.in_flight else "",
                            f"{r.no_rcpt} cut before RCPT" if r.no_rcpt else "") if b]
        out.append(f"  {r.scenario}: " + "; ".join(bits + r.extra))
    return out
