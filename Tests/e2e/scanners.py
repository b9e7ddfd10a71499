"""Real scanner daemons for the plug-in tests: clamd, spamd and rspamd.

Each ``start_*`` helper writes a private configuration into a directory the
caller owns (pytest's ``tmp_path``), starts Debian's own daemon in the
foreground in a new process group, offline, on a unix socket or on a port the
kernel picked on 127.0.0.1, waits until it answers its protocol's ping, and
returns a ``Server``. ``Server.stop()`` kills the whole process group (spamd
and rspamd fork workers).

Nothing here touches the system-wide instances: no file outside the given
directory is written (except rspamd's Hyperscan cache when the caller names
another directory for it) and no fixed port is bound. The Debian packages are
clamav-daemon, spamassassin + spamd, and rspamd (see ``PACKAGES``); their
postinst scripts do not start daemons in a container without an init system
(policy-rc.d denies it), and these helpers do not need them running.

The module needs only the standard library; the pytest fixtures at the end
are defined when pytest is importable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PACKAGES = ["clamav-daemon", "spamassassin", "spamd", "rspamd"]

# The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/).
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# SpamAssassin's and rspamd's Generic Test for Unsolicited Bulk Email.
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# Our own signature, so no freshclam download is needed; clamd reports it
# with ".UNOFFICIAL" appended because it is not in a signed database.
EICAR_SIGNATURE = "Eicar-Test-Postern"

# clamd loads a one-signature database in about a second; spamd compiles the
# stock rule set in several; rspamd loads its Lua plug-ins. Generous limits
# for a loaded 2-core machine.
START_TIMEOUT = 60.0


@dataclass
class Server:
    """A running scanner daemon and where to reach it."""

    name: str
    #: Postern syntax: ``inet:PORT@127.0.0.1`` or ``local:/path``.
    address: str
    log: Path
    process: subprocess.Popen
    #: Seconds from exec to the first answered ping.
    startup_seconds: float = 0.0
    extra_logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Ends the daemon and everything it forked (SIGTERM, then SIGKILL)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Workers may outlive the master for a moment; they share its group.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for path in [self.log, *self.extra_logs]:
            if path.exists():
                text += f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the kernel handed out a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(program: str) -> str:
    path = shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        raise RuntimeError(f"{program} is not installed (apt-get install {' '.join(PACKAGES)})")
    return path


def _exchange(connect: Callable[[], socket.socket], request: bytes) -> bytes:
    with connect() as s:
        s.settimeout(5)
        s.sendall(request)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        return reply


def _tcp(port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5)


def _unix(path: Path) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(str(path))
        return s
    return connect


def _start(name: str, argv: list[str], log: Path, ready: Callable[[], bool], address: str,
           extra_logs: list[Path] | None = None, **popen) -> Server:
    started = time.monotonic()
    console = open(log.with_suffix(".console"), "wb")
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                               start_new_session=True, **popen)
    console.close()
    server = Server(name, address, log, process, extra_logs=[log.with_suffix(".console"), *(extra_logs or [])])
    deadline = started + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}\n{server.log_tail()}")
        try:
            if ready():
                server.startup_seconds = time.monotonic() - started
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not answer within {START_TIMEOUT:.0f} s\n{server.log_tail()}")


def start_clamd(tmpdir: Path | str, tcp: bool = False) -> Server:
    """clamd with a database holding one body signature for EICAR; a unix
    socket in ``tmpdir`` unless ``tcp``."""
    clamd = require("clamd")
    base = Path(tmpdir) / "clamd"
    (base / "db").mkdir(parents=True, exist_ok=True)
    (base / "tmp").mkdir(exist_ok=True)
    # .ndb: Name:TargetType:Offset:HexSignature; target 0 = any file (mail parts included).
    (base / "db" / "postern.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n")
    sock = base / "clamd.sock"
    port = free_port() if tcp else 0
    listen = f"TCPSocket {port}\nTCPAddr 127.0.0.1\n" if tcp else f"LocalSocket {sock}\nFixStaleSocket true\n"
    log = base / "clamd.log"
    conf = base / "clamd.conf"
    # No User line: clamd then keeps the caller's identity (root here), which can
    # read the database in a 0700 temp directory. Bytecode off: there is no
    # bytecode.cvd without freshclam. ExtendedDetectionInfo as in Debian's
    # clamd.conf: replies then read "stream: NAME(MD5:SIZE) FOUND".
    conf.write_text(
        listen
        + f"DatabaseDirectory {base / 'db'}\nTemporaryDirectory {base / 'tmp'}\nLogFile {log}\n"
        f"PidFile {base / 'clamd.pid'}\nForeground true\nLogTime true\nBytecode false\n"
        "StreamMaxLength 25M\nMaxThreads 4\nSelfCheck 0\nExtendedDetectionInfo true\n"
    )
    connect = _tcp(port) if tcp else _unix(sock)
    address = f"inet:{port}@127.0.0.1" if tcp else f"local:{sock}"
    return _start("clamd", [clamd, f"--config-file={conf}"], log,
                  lambda: _exchange(connect, b"zPING\0") == b"PONG\0", address)


def start_spamd(tmpdir: Path | str) -> Server:
    """spamd on 127.0.0.1 with Debian's stock rules, local tests only."""
    spamd = require("spamd")
    base = Path(tmpdir) / "spamd"
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = base / "spamd.log"
    # spamd started as root reads its configuration as nobody, who cannot enter
    # a 0700 temp directory (pytest's are), so no configuration file is
    # written here: the site directory stays Debian's /etc/spamassassin (its
    # .pre files load the plug-ins; Check among them is required), and the
    # offline settings come as --cf lines. No DNS, no Bayes, no learning, no
    # user files: the same scores on every machine.
    offline = ["dns_available no", "skip_rbl_checks 1", "use_bayes 0", "bayes_auto_learn 0"]
    argv = [spamd, "--listen", f"127.0.0.1:{port}", "--allowed-ips=127.0.0.1", "--local", "--nouser-config",
            "--siteconfigpath=/etc/spamassassin", *[f"--cf={line}" for line in offline],
            f"--syslog={log}", f"--pidfile={base / 'spamd.pid'}", "--max-children=2", "--min-children=1"]
    # Use the stock rules even when sa-update has downloaded newer ones to
    # /var/lib/spamassassin: the tests want the same rules on every machine.
    if Path("/usr/share/spamassassin/10_default_prefs.cf").exists():
        argv.append("--configpath=/usr/share/spamassassin")
    return _start("spamd", argv, log,
                  lambda: _exchange(_tcp(port), b"PING SPAMC/1.5\r\n\r\n").startswith(b"SPAMD/1.5 0 PONG"),
                  f"inet:{port}@127.0.0.1")


def start_rspamd(tmpdir: Path | str, hs_cache: Path | str | None = None) -> Server:
    """rspamd's normal worker on 127.0.0.1 with the stock configuration,
    no controller, proxy or redis.

    Most of the start-up (about 10 s on 2 cores) is compiling the TLD list and
    the regular expressions for Hyperscan; rspamd caches the result (about
    90 MB) in ``hs_cache``, by default inside ``tmpdir``. Giving the same
    directory to later starts brings them under a second."""
    rspamd = require("rspamd")
    base = Path(tmpdir) / "rspamd"
    for d in ("db", "run", "log", "local.d", "override.d"):
        (base / d).mkdir(parents=True, exist_ok=True)
    cache = Path(hs_cache) if hs_cache is not None else base / "db"
    cache.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = base / "log" / "rspamd.log"
    # DNS goes to a closed port on loopback: every lookup times out after
    # 0.1 s, the same way on every machine, and no query leaves the host.
    (base / "override.d" / "options.inc").write_text(
        f'dns {{ nameserver = ["127.0.0.1:{free_port()}"]; timeout = 0.1s; retransmits = 1; }}\n'
        f'tempdir = "{base / "run"}";\nhs_cache_dir = "{cache}/";\n'
    )
    # Only the normal worker; the stock rspamd.conf would bind the fixed ports
    # 11332-11335. LOCAL_CONFDIR points here so /etc/rspamd/local.d of the
    # machine does not leak in.
    conf = base / "rspamd.conf"
    conf.write_text(f"""
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}}
logging {{
    type = "file";
    filename = "{log}";
    level = "info";
}}
worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    count = 1;
    .include "$CONFDIR/worker-normal.inc"
}}
""")
    argv = [rspamd, "--no-fork", "--insecure", "-c", str(conf),
            "--var=CONFDIR=/etc/rspamd", f"--var=LOCAL_CONFDIR={base}", f"--var=DBDIR={base / 'db'}",
            f"--var=RUNDIR={base / 'run'}", f"--var=LOGDIR={base / 'log'}"]
    return _start("rspamd", argv, log,
                  lambda: _exchange(_tcp(port), b"GET /ping HTTP/1.0\r\n\r\n").rstrip().endswith(b"pong"),
                  f"inet:{port}@127.0.0.1")


try:
    import pytest
except ImportError:  # the helpers work without pytest
    pytest = None

if pytest is not None:
    # Session-wide: the daemons keep no state between messages (no Bayes, no
    # learning), and rspamd takes several seconds to start. A test that stops
    # or breaks its scanner starts its own with start_*().
    @pytest.fixture(scope="session")
    def clamd(tmp_path_factory):
        with start_clamd(tmp_path_factory.mktemp("clamd")) as server:
            yield server

    @pytest.fixture(scope="session")
    def spamd(tmp_path_factory):
        with start_spamd(tmp_path_factory.mktemp("spamd")) as server:
            yield server

    @pytest.fixture(scope="session")
    def rspamd(tmp_path_factory):
        with start_rspamd(tmp_path_factory.mktemp("rspamd")) as server:
            yield server
