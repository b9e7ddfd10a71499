"""Fixtures for Postern's end-to-end tests.

Everything here is a real program started by the test itself on 127.0.0.1,
on ports the kernel picks (never 10024/10025, which a benchmark may hold):

- ``sink``: an aiosmtpd server that records every envelope and the raw bytes
  of every message it is given (the final destination of all mail).
- ``postfix``: a factory for a private Postfix instance in a temp directory,
  wired as in Postfix's FILTER_README "advanced content filter" setup:
  inbound smtpd (port A) -> content_filter -> the filter (a port the test
  chooses) -> return smtpd (port B, no content_filter) -> relayhost = sink.
- ``postern``: a factory that writes a Postern config for given ports and
  runs ``posternctl run --config ...`` in the foreground.

Postern's binaries are looked up in ``$POSTERN_BIN`` (default
``.build/debug``). When they are missing the tests fail; they never skip.
Must run as root (Postfix's master drops privileges itself).
"""

from __future__ import annotations

import faulthandler
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The real scanners (clamd, spamd, rspamd), one each per test session.
from scanners import clamd, rspamd, spamd  # noqa: F401  (pytest fixtures)

ROOT = Path(__file__).resolve().parents[2]
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
POSTFIX = "/usr/sbin/postfix"

# Postern's identity in the configs written here. Chosen so that it does not
# contain the word "postern": the return smtpd's Received: header names the
# HELO of whoever delivered to it, and the tests look for "Postern".
POSTERN_HOSTNAME = "filter.e2e.test"
POSTFIX_HOSTNAME = "mta.e2e.test"
FILTER_MAIL = "root@localhost"
SECURE_HASH = "e2e-test-not-a-secret"

# Postern's reply to end-of-data (DESIGN.md section 2), as Postfix logs it
# for the delivery to the filter: "... status=sent (250 2.0.0 Ok: queued as ID)";
# over LMTP the per-recipient reply may name the recipient:
# "250 2.0.0 <bob@example.net> Ok: queued as ID".
QUEUED_AS = r"250 2\.0\.0 (?:<[^>]*> )?Ok: queued as ([^\s)]+)\)"


# Figures measured by test_deb_systemd.py (stop time, watchdog restart, systemd-analyze
# security, ...), printed at the end of the run whether the tests passed or not.
PID1_RESULTS: dict[str, str] = {}
# The fault suite's summary table (test_faults.py) and the figures of the 10,000-connection
# test (test_many_connections.py), printed at the end of the run, passed or not.
FAULT_TABLE: list[str] = []
MANY_CONNECTIONS: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if PID1_RESULTS:
        terminalreporter.section("systemd as PID 1: measured")
        for k, v in PID1_RESULTS.items():
            terminalreporter.write_line(f"{k}: {v}")
    if FAULT_TABLE:
        terminalreporter.section("faults under load: every message accounted for")
        for line in FAULT_TABLE:
            terminalreporter.write_line(line)
    if MANY_CONNECTIONS:
        terminalreporter.section("10,000 concurrent connections: measured")
        for k, v in MANY_CONNECTIONS.items():
            terminalreporter.write_line(f"{k}: {v}")


# ---------------------------------------------------------------- a hang is a failure

# No phase of a test (setup, call, teardown) may take longer than this. A test
# that blocks (a socket read with no timeout, a wait on a loop that never
# settles) fails with the stack of every thread instead of holding the whole
# run until CI's own limit kills it with nothing to show. The limit is generous
# because a session fixture's first setup (Exim's packages fetched with
# apt-get, the scanners started) counts in the first test that uses it.
PHASE_LIMIT = float(os.environ.get("POSTERN_E2E_PHASE_LIMIT", "600"))


class PhaseTimeout(Exception):
    pass


def _limited_phase(item, phase: str):
    def expired(signum, frame):
        raise PhaseTimeout(f"{phase} of {item.nodeid} took longer than {PHASE_LIMIT:.0f}s "
                           f"(the stacks of all threads are above, on stderr)")

    faulthandler.dump_traceback_later(max(PHASE_LIMIT - 1, 1), exit=False)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, PHASE_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _limited_phase(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _limited_phase(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _limited_phase(item, "teardown")


# ---------------------------------------------------------------- helpers

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).

    The same port is never handed out twice in one test session."""
    with _port_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None,
              what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening on {port}")
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def read_banner(port: int, timeout: float) -> str:
    """Connect, read the whole 220 greeting, say QUIT. Returns the greeting."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rwb")
        lines = []
        while True:
            line = f.readline(1024)
            if not line:
                raise AssertionError(f"127.0.0.1:{port} closed without a greeting ({lines!r})")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            f.write(b"QUIT\r\n")
            f.flush()
            f.readline(1024)
        except OSError:
            pass
        return "\n".join(lines)


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


def processes():
    """(pid, comm, fields after comm) of every process in /proc; comm may contain
    spaces, so the fields are read after its closing parenthesis."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        yield int(entry), stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()


def session_pids(sid: int) -> list[int]:
    """PIDs of all processes in session `sid` (processes we started with
    start_new_session=True and their descendants)."""
    # fields: state ppid pgrp session ...
    return [pid for pid, _, fields in processes() if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z"]


def daemon_pids(parent: int) -> dict[str, int]:
    """The daemons ``posternctl run`` (pid `parent`) runs: name -> pid."""
    return {name: pid for pid, name, fields in processes()
            if int(fields[1]) == parent and fields[0] != "Z" and name in ("receiverd", "scannerd", "senderd")}


def kill_session(sid: int, grace: float = 5.0) -> list[int]:
    """Wait up to `grace` s for session `sid` to empty, then SIGKILL what is
    left (by PID). Returns the PIDs that had to be killed."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not session_pids(sid):
            return []
        time.sleep(0.05)
    left = session_pids(sid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def stop_server(proc: subprocess.Popen, term_timeout: float = 10.0) -> None:
    """SIGTERM a server we started in its own session, wait for it, then
    SIGKILL whatever of its session is left (children it forked)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(term_timeout)
        except subprocess.TimeoutExpired:
            pass
    kill_session(proc.pid, grace=5)
    if proc.poll() is None:
        proc.wait(5)


def postern_bin_dir() -> Path:
    return Path(os.environ.get("POSTERN_BIN", ROOT / ".build" / "debug")).resolve()


def postern_binary(name: str) -> Path:
    """Path of a Postern executable; fails (never skips) the test if absent."""
    path = postern_bin_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"Postern binary {path} is missing: run `swift build --build-tests` "
                    f"(or `make build`) first, or set POSTERN_BIN", pytrace=False)
    return path


def split_message(raw: bytes) -> tuple[list[bytes], bytes]:
    """Split a message into its header fields (each with its continuation
    lines and CRLFs, byte-exact) and its body (everything after the empty line)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        head, body = raw, b""
    else:
        head, body = raw[:end + 2], raw[end + 4:]
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1] if head.endswith(b"\r\n") else head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def field_name(f: bytes) -> str:
    return f.split(b":", 1)[0].decode("ascii", "replace").strip().lower()


def unfold(f: bytes) -> str:
    return re.sub(r"\r\n[ \t]+", " ", f.decode("utf-8", "replace")).rstrip("\r\n")


# ---------------------------------------------------------------- the sink

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes                      # raw message as received, dot-stuffing removed
    mail_options: list[str]
    rcpt_options: list[str]
    helo: str | None
    peer: tuple

    @property
    def headers(self) -> list[bytes]:
        return split_message(self.data)[0]

    @property
    def body(self) -> bytes:
        return split_message(self.data)[1]

    def header_values(self, name: str) -> list[str]:
        return [unfold(f).split(":", 1)[1].strip() for f in self.headers if field_name(f) == name.lower()]


class Sink:
    """aiosmtpd handler that records every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        msg = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content,
            mail_options=list(envelope.mail_options),
            rcpt_options=list(envelope.rcpt_options),
            helo=session.host_name,
            peer=session.peer,
        )
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()
        return "250 2.0.0 Ok: stored by e2e sink"

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least `n` messages have arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"sink on port {self.port} got {len(self.messages)} of {n} messages "
                        f"within {timeout:.0f}s")
                self._cond.wait(left)
            return list(self.messages)

    def wait_for_recipients(self, n: int, timeout: float = 30.0) -> list[Received]:
        """Block until the messages received carry at least `n` recipients in all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(len(m.rcpt_tos) for m in self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"sink on port {self.port} got recipients "
                        f"{[r for m in self.messages for r in m.rcpt_tos]} (wanted {n}) "
                        f"within {timeout:.0f}s")
                self._cond.wait(left)
            return list(self.messages)

    def settle(self, quiet: float = 1.0, limit: float = 60.0) -> list[Received]:
        """Wait until nothing has arrived for `quiet` seconds (to catch duplicates).

        Mail that keeps arriving for `limit` seconds is a loop: the test fails
        and names what arrived."""
        deadline = time.monotonic() + limit
        with self._cond:
            seen = len(self.messages)
            while True:
                self._cond.wait(quiet)
                if len(self.messages) == seen:
                    return list(self.messages)
                seen = len(self.messages)
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"sink on port {self.port} still receiving after {limit:.0f}s "
                        f"({seen} messages); the last ones: "
                        f"{[(m.mail_from, m.rcpt_tos, m.header_values('Subject')) for m in self.messages[-10:]]}")


@pytest.fixture
def extra_sink():
    """Factory for more recording servers (a second next hop, an LMTP
    mailbox server): ``extra_sink(lmtp=False) -> Sink``, stopped at teardown."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP

    class LMTPController(Controller):
        def factory(self):
            return LMTP(self.handler, decode_data=False)

    controllers = []

    def start(lmtp: bool = False) -> Sink:
        handler = Sink()
        handler.port = free_port()
        cls = LMTPController if lmtp else Controller
        ctl = cls(handler, hostname="127.0.0.1", port=handler.port, decode_data=False)
        ctl.start()
        controllers.append(ctl)
        return handler

    yield start
    for c in controllers:
        c.stop()


@pytest.fixture
def sink():
    from aiosmtpd.controller import Controller

    handler = Sink()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port,
                            server_hostname="sink.e2e.test", ident="e2e-sink",
                            decode_data=False, enable_SMTPUTF8=True,
                            data_size_limit=64 * 1024 * 1024)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


# ---------------------------------------------------------------- Postfix

MAIN_CF = """\
# Private Postfix for Postern's e2e tests (written by Tests/e2e/conftest.py).
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = e2e.test
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# Everything leaves through the test's sink.
relayhost = [127.0.0.1]:{sink_port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
# Keep headers byte-exact: no address rewriting or added headers for
# "local" (loopback) clients.
local_header_rewrite_clients =
append_dot_mydomain = no
# Log into the temp dir (postlogd, see the postlog service in master.cf).
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
# Short timers, so that a deferred message is retried within the test.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
transport_retry_time = 1s
delay_warning_time = 0
in_flow_delay = 0
smtp_connect_timeout = 5s
biff = no
"""

# FILTER_README, "Advanced content filter: request queuing" (callback mode):
# the inbound smtpd hands every message to the "scan" transport, which
# delivers it to the filter on FILTER_PORT; the filter returns it to the
# second smtpd, which does not filter again and relays to the sink.
MASTER_CF = """\
# Private Postfix for Postern's e2e tests (written by Tests/e2e/conftest.py).
127.0.0.1:{port} inet n - n - - smtpd
    -o content_filter={filter_transport}:{filter_nexthop}
    -o receive_override_options=no_address_mappings
scan      unix  -       -       n       -       10      {filter_transport_cmd}
    -o {proto}_send_xforward_command=yes
    -o disable_mime_output_conversion=yes
    -o {proto}_generic_maps=
127.0.0.1:{return_port} inet n - n - - smtpd
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_helo_restrictions=
    -o smtpd_client_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_relay_restrictions=permit_mynetworks,reject
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_data_restrictions=
    -o smtpd_end_of_data_restrictions=
    -o mynetworks=127.0.0.0/8
    -o smtpd_error_sleep_time=0
    -o smtpd_soft_error_limit=1001
    -o smtpd_hard_error_limit=1000
    -o smtpd_client_connection_count_limit=0
    -o smtpd_client_connection_rate_limit=0
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


MAIN_CF_PARAMETER = re.compile(r"^([A-Za-z0-9_]+)\s*=", re.M)


def main_cf_keys(text: str) -> list[str]:
    """The parameter names a main.cf sets, in order (comments and continuation lines skipped)."""
    return MAIN_CF_PARAMETER.findall(text)


def set_main_cf(base: str, settings: str) -> str:
    """`base` with `settings` (main.cf lines) appended, each of their parameters
    removed from `base` first, so that every parameter is set once.

    A parameter set twice makes every Postfix daemon log "overriding earlier
    entry" as it starts; with maillog_file, postlogd logs that to its own
    datagram socket, and when the warnings outnumber the socket's queue
    (net.unix.max_dgram_qlen, 10 by default) before postlogd reads it, postlogd
    and every daemon block for good: smtpd accepts but never greets."""
    keys = set(main_cf_keys(settings))
    kept, dropping = [], False
    for line in base.splitlines(keepends=True):
        if line[:1] in (" ", "\t") and line.strip():   # continues the parameter above
            if not dropping:
                kept.append(line)
            continue
        m = MAIN_CF_PARAMETER.match(line)
        dropping = bool(m) and m.group(1) in keys
        if not dropping:
            kept.append(line)
    return "".join(kept).rstrip("\n") + "\n" + settings.rstrip("\n") + "\n"


class Postfix:
    """A private Postfix instance in its own temp directory."""

    def __init__(self, sink_port: int, filter_port: int, filter_protocol: str = "smtp") -> None:
        assert filter_protocol in ("smtp", "lmtp")
        self.sink_port = sink_port
        self.filter_port = filter_port
        self.filter_protocol = filter_protocol
        self.port = free_port()          # A: where mail is submitted
        self.return_port = free_port()   # B: where the filter returns mail
        # Not pytest's tmp_path: its parents are mode 0700, and Postfix's
        # daemons (user postfix) must reach the queue and data directories.
        self.dir = Path(tempfile.mkdtemp(prefix="postern-e2e-postfix."))
        self.dir.chmod(0o755)
        self.etc = self.dir / "etc"
        self.log_path = self.dir / "maillog"
        self.proc: subprocess.Popen | None = None

    def write_config(self) -> None:
        self.etc.mkdir()
        (self.dir / "spool").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix", "postfix")
        (self.etc / "main.cf").write_text(MAIN_CF.format(
            dir=self.dir, hostname=POSTFIX_HOSTNAME, sink_port=self.sink_port))
        if self.filter_protocol == "smtp":
            nexthop = f"[127.0.0.1]:{self.filter_port}"
        else:
            nexthop = f"inet:[127.0.0.1]:{self.filter_port}"
        (self.etc / "master.cf").write_text(MASTER_CF.format(
            port=self.port, return_port=self.return_port, filter_transport="scan",
            filter_nexthop=nexthop, filter_transport_cmd=self.filter_protocol,
            proto=self.filter_protocol))

    def start(self) -> None:
        self.write_config()
        keys = main_cf_keys((self.etc / "main.cf").read_text())
        twice = sorted({k for k in keys if keys.count(k) > 1})
        assert not twice, f"main.cf sets {twice} more than once (use set_main_cf)"
        # "postfix check" creates the queue directories with the right owners.
        check = subprocess.run([POSTFIX, "-c", str(self.etc), "check"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, f"postfix check failed:\n{check.stdout}{check.stderr}"
        self.master_log = self.dir / "master.out"
        with open(self.master_log, "wb") as out:
            self.proc = subprocess.Popen([POSTFIX_MASTER, "-c", str(self.etc), "-d"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
        try:
            wait_port(self.port, 30, self.proc, "postfix master")
            wait_port(self.return_port, 30, self.proc, "postfix master")
        except AssertionError:
            print(tail(self.master_log))
            print(tail(self.log_path))
            raise

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_server(self.proc, 15)   # master stops its children
        self.proc = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex: str, timeout: float = 30.0, count: int = 1) -> list[re.Match]:
        """Wait until Postfix's log has at least `count` lines matching `regex`;
        returns the matches."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in (pattern.search(line) for line in self.log_text().splitlines()) if m]
            if len(matches) >= count:
                return matches
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Postfix log has {len(matches)} of {count} lines matching {regex!r} "
                    f"after {timeout:.0f}s; last lines:\n{tail(self.log_path, 40)}")
            time.sleep(0.1)

    def filter_deliveries(self, count: int = 1, timeout: float = 30.0) -> list[re.Match]:
        """Postfix's log lines for deliveries to the filter that it accepted,
        each match's group(1) being the filter's queue id."""
        return self.wait_log(
            rf"postfix/\S+\[\d+\]: \w+: to=<[^>]*>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:{self.filter_port},"
            rf".*status=sent \({QUEUED_AS}", timeout=timeout, count=count)

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("E2E_KEEP"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postfix(sink):
    """Factory: ``postfix(filter_port, filter_protocol="smtp") -> Postfix``.

    The instance is started; its attributes: ``port`` (A, submit here),
    ``return_port`` (B, the filter's callback port), ``filter_port``,
    ``sink_port``, ``log_path``, ``dir``; ``wait_log(regex)``."""
    yield from started_postfixes(lambda filter_port, filter_protocol="smtp": Postfix(sink.port, filter_port, filter_protocol))


def started_postfixes(make):
    """The body of a Postfix factory fixture: yields ``start(*args, **kw)``, which
    makes an instance with ``make(*args, **kw)`` and starts it; afterwards prints
    each one's log tail and cleans it up."""
    instances = []

    def start(*args, **kw):
        pf = make(*args, **kw)
        instances.append(pf)
        pf.start()
        return pf

    yield start
    for pf in instances:
        print(f"---- Postfix log ({pf.log_path}), last lines:\n{tail(pf.log_path)}")
        pf.cleanup()


# ---------------------------------------------------------------- Postern

def postern_config(workdir: Path, receiver_port: int, sender_port: int,
                   callback_port: int | None = None, protocol: str = "smtp",
                   extra: str = "", rules_first: str = "",
                   settings: dict[str, dict[str, str]] | None = None) -> Path:
    """Write a postern.conf for the given loopback ports into `workdir`.

    `sender_port` is the default route ([Sender] Address, for DSNs and
    notifications); `callback_port` is where the seed rule returns checked
    mail to the client that sent it (inet:PORT@CLIENT-IP). `rules_first` is
    put in [Rules] before the seed rule, `extra` after it. `settings` maps
    section -> key -> value and replaces or adds keys (and sections)."""
    spool, run = workdir / "spool", workdir / "run"
    spool.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    prefix = "lmtp:" if protocol == "lmtp" else ""
    sections: dict[str, dict[str, str]] = {
        "General": {"Hostname": POSTERN_HOSTNAME, "SpoolDir": str(spool), "RunDir": str(run)},
        "Receiver": {"Address": f"{prefix}inet:{receiver_port}@127.0.0.1",
                     "ProtectedNetworks": "127.0.0.0/8"},
        "Sender": {"Address": f"inet:{sender_port}@127.0.0.1", "SecureHash": SECURE_HASH},
        "Notifier": {"FilterMail": FILTER_MAIL},
    }
    for section, values in (settings or {}).items():
        # Section and key names are case-insensitive in Postern's INI dialect.
        name = next((k for k in sections if k.lower() == section.lower()), section)
        keys = sections.setdefault(name, {})
        for key, value in values.items():
            old = next((k for k in keys if k.lower() == key.lower()), key)
            keys[old] = value
    rules = [r for r in (rules_first.strip("\n"),) if r]
    if callback_port is not None:
        rules.append(f'!(from:"" || from:"{FILTER_MAIL}") cont '
                     f"SenderAddress = inet:{callback_port}@CLIENT-IP")
    if extra.strip("\n"):
        rules.append(extra.strip("\n"))
    lines = ["; Written by Tests/e2e/conftest.py for one test."]
    for section, values in sections.items():
        lines += [f"[{section}]"] + [f"{k} = {v}" for k, v in values.items()] + [""]
    lines += ["[Rules]"] + rules
    path = workdir / "postern.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Postern:
    dir: Path
    config: Path
    receiver_port: int
    log_path: Path
    proc: subprocess.Popen
    stopped_rc: int | None = field(default=None)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, regex: str, timeout: float = 30.0) -> re.Match:
        """Wait until Postern's log matches `regex`: senderd logs a delivery once
        the next hop answered, which may be after the sink already has the message."""
        deadline = time.monotonic() + timeout
        while not (m := re.search(regex, self.log_text())):
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {regex!r} in Postern's log within {timeout:.0f}s:\n{tail(self.log_path, 40)}")
            time.sleep(0.1)
        return m

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM posternctl; it must exit within `timeout` s with status 0
        and leave none of its daemons behind."""
        if self.stopped_rc is not None:
            return self.stopped_rc
        proc = self.proc
        problems = []
        if proc.poll() is not None:
            problems.append(f"posternctl had already exited with {proc.returncode}")
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"posternctl did not exit within {timeout:.0f}s of SIGTERM")
                proc.kill()
                proc.wait(5)
            else:
                if proc.returncode != 0:
                    problems.append(f"posternctl exited with {proc.returncode} after SIGTERM")
        left = kill_session(proc.pid, grace=2)
        if left:
            problems.append(f"processes left running after posternctl exited (killed): {left}")
        self.stopped_rc = proc.returncode
        assert not problems, "; ".join(problems) + f"\n---- posternctl log:\n{tail(self.log_path)}"
        return proc.returncode


@pytest.fixture
def postern():
    """Factory: ``postern(receiver_port, sender_port, callback_port=None,
    protocol="smtp", extra="", rules_first="", settings=None, config_text=None,
    workdir_mode=None, wrapper=None) -> Postern`` (arguments as for postern_config; ``config_text``: use this
    whole configuration instead, e.g. the shipped sample with its ports and
    paths substituted; ``{dir}`` in it is the fresh temp dir; ``wrapper``: an argv that
    posternctl's command line is appended to and that execs it, keeping its pid).

    Writes a config into a fresh temp dir, starts ``posternctl run`` and
    waits for the receiver's 220 greeting. At teardown sends SIGTERM and
    asserts a clean exit within 10 s."""
    instances: list[Postern] = []

    def start(receiver_port: int, sender_port: int, callback_port: int | None = None,
              protocol: str = "smtp", extra: str = "", rules_first: str = "",
              settings: dict[str, dict[str, str]] | None = None,
              config_text: str | None = None, workdir_mode: int | None = None,
              wrapper: list[str] | None = None) -> Postern:
        ctl = postern_binary("posternctl")
        workdir = Path(tempfile.mkdtemp(prefix="postern-e2e."))
        if workdir_mode is not None:   # e.g. 0o755 for daemons that switch to another user
            workdir.chmod(workdir_mode)
        if config_text is None:
            config = postern_config(workdir, receiver_port, sender_port, callback_port,
                                    protocol, extra, rules_first, settings)
        else:
            config = workdir / "postern.conf"
            config.write_text(config_text.replace("{dir}", str(workdir)))
        log_path = workdir / "posternctl.log"
        env = dict(os.environ)
        for var in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                    "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(var, None)
        with open(log_path, "wb") as out:
            # `wrapper` runs first and execs the rest (same pid), e.g. unshare and a mount.
            proc = subprocess.Popen([*(wrapper or []), str(ctl), "run", "--config", str(config)],
                                    cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        inst = Postern(workdir, config, receiver_port, log_path, proc)
        instances.append(inst)
        try:
            wait_port(receiver_port, 60, proc, "posternctl run")
            banner = read_banner(receiver_port, timeout=60)
            # Any greeting means it is up: a test may configure a refusal (554).
            assert re.match(r"^(220|554) ", banner), f"unexpected greeting {banner!r}"
            # All three daemons up (scannerd and senderd start in parallel with receiverd).
            deadline = time.monotonic() + 60
            while len(re.findall(r"(receiverd|scannerd|senderd)\[\d+\]: ready\b",
                                 log_path.read_text(errors="replace"))) < 3:
                assert time.monotonic() < deadline, "not all daemons reported ready"
                time.sleep(0.05)
        except (AssertionError, OSError) as e:
            raise AssertionError(f"Postern did not come up: {e}\n---- posternctl log:\n"
                                 f"{tail(log_path)}") from None
        return inst

    yield start
    errors = []
    for inst in instances:
        print(f"---- posternctl log ({inst.log_path}), last lines:\n{tail(inst.log_path)}")
        try:
            inst.stop()
        except AssertionError as e:
            errors.append(str(e))
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(inst.dir, ignore_errors=True)
    assert not errors, "\n".join(errors)


# ---------------------------------------------------------------- sd_notify

class NotifySocket:
    """An AF_UNIX/SOCK_DGRAM socket standing in for systemd's NOTIFY_SOCKET.

    A background thread collects every datagram; ``wait_for("READY=1")``
    blocks until some datagram carries that assignment."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.datagrams: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.datagrams.append((time.monotonic(), data.decode("utf-8", "replace")))
                self._cond.notify_all()

    def assignments(self) -> list[tuple[float, str]]:
        with self._cond:
            return [(t, line) for t, d in self.datagrams for line in d.split("\n") if line]

    def count(self, assignment: str) -> int:
        return sum(1 for _, a in self.assignments() if a == assignment)

    def wait_for(self, assignment: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count_locked(assignment) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {assignment!r} (x{count}) on NOTIFY_SOCKET within {timeout:.0f}s; "
                        f"got {[d for _, d in self.datagrams]!r}")
                self._cond.wait(left)

    def count_locked(self, assignment: str) -> int:
        return sum(1 for _, d in self.datagrams for line in d.split("\n") if line == assignment)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


@pytest.fixture
def notify_socket():
    d = Path(tempfile.mkdtemp(prefix="pe2e-notify."))   # short: sun_path is 108 bytes
    ns = NotifySocket(d / "notify.sock")
    yield ns
    ns.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="postern-e2e."))
    yield d
    if not os.environ.get("E2E_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
