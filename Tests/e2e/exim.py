"""A private, real Exim for Postern's end-to-end tests.

Debian's exim4 packages conflict with Postfix (both are the system MTA), and
the tests need Postfix installed. So the Exim binary is not installed but
unpacked: ``apt-get download exim4-daemon-light exim4-base exim4-config`` and ``dpkg -x``
into a cache directory, kept between runs. Then the test runs
``exim4 -C <config> -bdf -q1s -oX A:B``: a foreground daemon with its own
configuration, spool and logs in a temp directory, listening on two loopback
ports that the kernel picked.

What the binary needs from the system, and what this module provides when it
is missing (each step fails the test with a message, never skips it):

- its shared libraries: the ``lib*`` packages in exim4-daemon-light's
  Depends (on Debian 12 with Postfix, libidn12 and libgnutls-dane0 may be
  missing). They are installed with apt-get. They conflict with nothing and
  start no daemon.
- the user ``Debian-exim``: compiled into Debian's binary as its exim_user,
  looked up before any configuration is read. It is created as exim4-base's
  postinst creates it.

The configuration is built from ``docs/exim.md``: the fenced blocks marked
``<!-- exim-test: NAME -->`` (main, acl, routers, transports) go in as the
doc gives them. Only the port numbers change. The test adds the settings
that make a private instance (paths, users, short retry times) and a final
router to its sink, which stands in for your other routers.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, stop_server, tail, wait_port

# exim4-config (architecture all) brings Debian's configuration and
# update-exim4.conf, for the test of the doc's Debian section.
EXIM_PACKAGES = ("exim4-daemon-light", "exim4-base", "exim4-config")
EXIM_USER = "Debian-exim"
EXIM_HOSTNAME = "exim.e2e.test"
DOC = ROOT / "docs" / "exim.md"

# The ports docs/exim.md uses, and the words around them, which the test
# replaces with the ports it picked.
DOC_FILTER_PORT = "10024"
DOC_RETURN_PORT = "10025"


def exim_cache() -> Path:
    """Where the unpacked packages are kept ($POSTERN_EXIM_CACHE,
    $XDG_CACHE_HOME/postern-e2e/exim or /var/cache/postern-e2e/exim)."""
    if os.environ.get("POSTERN_EXIM_CACHE"):
        return Path(os.environ["POSTERN_EXIM_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "postern-e2e" / "exim"
    return Path("/var/cache/postern-e2e/exim")


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 300) -> str:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"cannot get Exim: {what}: {' '.join(cmd)}: {e}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"cannot get Exim: {what}: `{' '.join(cmd)}` exited with {r.returncode}:\n"
                    f"{r.stdout[-2000:]}{r.stderr[-2000:]}", pytrace=False)
    return r.stdout


def _apt_lists_present() -> bool:
    return any(Path("/var/lib/apt/lists").glob("*_Packages*"))


def _download(debs: Path) -> list[Path]:
    debs.mkdir(parents=True, exist_ok=True)
    for old in debs.glob("*.deb"):
        old.unlink()
    if not _apt_lists_present():
        _run(["apt-get", "update", "-q"], "apt-get update")
    cmd = ["apt-get", "download", "-q", *EXIM_PACKAGES]
    r = subprocess.run(cmd, cwd=debs, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if r.returncode != 0:
        # Lists may be stale (a security update replaced the .deb): refresh once.
        _run(["apt-get", "update", "-q"], "apt-get update")
        _run(cmd, "apt-get download", cwd=debs)
    found = sorted(debs.glob("*.deb"))
    if len(found) != len(EXIM_PACKAGES):
        pytest.fail(f"cannot get Exim: apt-get download left {found} in {debs}", pytrace=False)
    return found


def _library_packages(deb: Path) -> list[str]:
    """The lib* packages in a .deb's Depends (alternatives and versions dropped)."""
    depends = _run(["dpkg-deb", "-f", str(deb), "Depends"], "dpkg-deb -f")
    names = [re.split(r"[\s(:|]", d.strip(), maxsplit=1)[0] for d in depends.split(",")]
    return [n for n in names if n.startswith("lib")]


def _installed(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def _ensure_user() -> None:
    """Debian's binary looks up its compiled-in exim_user before it reads any
    configuration; create it as exim4-base's postinst does."""
    if subprocess.run(["getent", "passwd", EXIM_USER], capture_output=True).returncode == 0:
        return
    _run(["adduser", "--system", "--group", "--quiet", "--home", "/var/spool/exim4",
          "--no-create-home", "--disabled-login", "--force-badname", EXIM_USER],
         f"create the user {EXIM_USER}")


def exim_binary() -> Path:
    """Path of the unpacked exim4 binary, fetching and unpacking it (and
    installing its missing libraries) on first use. Fails, never skips."""
    if os.geteuid() != 0:
        pytest.fail("the Exim tests need root (apt-get, and Exim's daemon binds as root)",
                    pytrace=False)
    cache = exim_cache()
    cache.mkdir(parents=True, exist_ok=True)
    binary = cache / "root" / "usr" / "sbin" / "exim4"
    # Two test runs at once must not unpack over each other.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        debs = cache / "debs"
        marker = cache / "root" / ".complete"
        unpacked = {line.split("_")[0] for line in marker.read_text().split()} if marker.exists() else set()
        if not set(EXIM_PACKAGES) <= unpacked:
            found = _download(debs)
            staging = cache / "root.new"
            shutil.rmtree(staging, ignore_errors=True)
            for deb in found:
                _run(["dpkg-deb", "-x", str(deb), str(staging)], "dpkg-deb -x")
            (staging / ".complete").write_text("\n".join(d.name for d in found) + "\n")
            shutil.rmtree(cache / "root", ignore_errors=True)
            staging.rename(cache / "root")
        daemon_deb = next(iter(sorted(debs.glob("exim4-daemon-light_*.deb"))), None)
        if daemon_deb is not None:
            missing = [p for p in _library_packages(daemon_deb) if not _installed(p)]
            if missing:
                if not _apt_lists_present():
                    _run(["apt-get", "update", "-q"], "apt-get update")
                _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                     f"install Exim's libraries {missing}")
        _ensure_user()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"cannot get Exim: {binary} is missing after unpacking "
                    f"(remove {cache} and retry)", pytrace=False)
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    unresolved = [line.strip() for line in ldd.stdout.splitlines() if "not found" in line]
    if unresolved:
        pytest.fail(f"cannot run Exim: libraries not found: {unresolved}", pytrace=False)
    return binary


# ---------------------------------------------------------------- the doc

def doc_blocks(path: Path = DOC) -> dict[str, str]:
    """The fenced blocks of docs/exim.md that follow `<!-- exim-test: NAME -->`."""
    text = path.read_text()
    blocks = dict(re.findall(r"<!-- exim-test: ([\w.-]+) -->\s*\n```[^\n]*\n(.*?)^```",
                             text, flags=re.S | re.M))
    for name in ("main", "acl", "routers", "transports", "postern.conf"):
        assert name in blocks, f"{path} has no block marked <!-- exim-test: {name} -->"
    return blocks


def with_ports(text: str, filter_port: int, return_port: int, inbound_port: int) -> str:
    """The doc's text with the test's ports in place of 10024, 10025 and 25
    (25 only in daemon_smtp_ports, the one place the doc names it)."""
    text = re.sub(rf"\b{DOC_FILTER_PORT}\b", str(filter_port), text)
    text = re.sub(rf"\b{DOC_RETURN_PORT}\b", str(return_port), text)
    return re.sub(r"^(daemon_smtp_ports\s*=\s*)25\b", rf"\g<1>{inbound_port}", text, flags=re.M)


def postern_settings(block: str, filter_port: int, return_port: int
                     ) -> tuple[dict[str, dict[str, str]], str]:
    """The doc's postern.conf block as (settings, rules) for conftest's
    `postern` factory: key = value lines per section, and the [Rules] lines."""
    block = with_ports(block, filter_port, return_port, 0)
    settings: dict[str, dict[str, str]] = {}
    rules: list[str] = []
    section = None
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        m = re.fullmatch(r"\[(.+)\]", stripped)
        if m:
            section = m.group(1)
            continue
        if section is not None and section.lower() == "rules":
            rules.append(line)
        elif section is not None:
            key, value = (s.strip() for s in stripped.split("=", 1))
            settings.setdefault(section, {})[key] = value
    return settings, "\n".join(rules)


# ---------------------------------------------------------------- the config

# Settings for a private instance; the doc's blocks go in between.
CONFIG_HEAD = """\
# Private Exim for Postern's e2e tests (written by Tests/e2e/exim.py from
# docs/exim.md). Everything in {dir}.
primary_hostname = {hostname}
# Processes re-exec the binary (deliveries, queue runs): not /usr/sbin/exim4.
exim_path = {binary}
qualify_domain = e2e.test
exim_user = {user}
exim_group = {user}
never_users = root
keep_environment =
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
local_interfaces = 127.0.0.1
# No DNS, no ident, no TLS: loopback only.
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = acl_check_rcpt
message_size_limit = 64M
smtp_accept_max = 200
# Deliver every message at once, however many come in one session.
smtp_accept_queue_per_connection = 0
queue_run_max = 10
log_selector = +incoming_port +incoming_interface +outgoing_port +pipelining +8bitmime +smtp_protocol_error \\
    +smtp_syntax_error +received_recipients +delivery_size +deliver_time
"""

# The test's clients submit from 127.0.0.1 to port A: accept them after the
# doc's lines; the sink router stands in for the routers of a real site.
CONFIG_ACL_TAIL = """\
  accept  hosts   = 127.0.0.1
  deny    message = relay not permitted
"""

CONFIG_SINK_ROUTER = """\
sink:
  driver     = manualroute
  route_list = * 127.0.0.1
  transport  = sink_smtp
  self       = send
"""

CONFIG_SINK_TRANSPORT = """\
sink_smtp:
  driver          = smtp
  port            = {sink_port}
  allow_localhost
  hosts_avoid_tls = *
"""

# Retry every second, so that a deferred message comes again within the
# test (with -q1s) and a duplicate shows.
CONFIG_RETRY = """\
*   *   F,1h,1s
"""


# Debian's own configuration: update-exim4.conf's answers for an Internet
# site (no DNS lookups of clients: the sandbox has no DNS).
DEBIAN_ANSWERS = """\
dc_eximconfig_configtype='internet'
dc_other_hostnames='mx.e2e.test'
dc_local_interfaces='127.0.0.1 ; ::1'
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='true'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='true'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
"""


def debian_config(binary: Path, workdir: Path) -> Path:
    """Debian's split configuration (exim4-config's conf.d) with the doc's
    blocks put where docs/exim.md's "Debian's configuration files" says,
    built by Debian's update-exim4.conf. Only paths are the test's own
    (CONFDIR, SPOOLDIR, log_file_path); the ports stay the doc's."""
    root = binary.parents[2]
    confdir = workdir / "etc"
    shutil.copytree(root / "etc" / "exim4", confdir)
    (confdir / "update-exim4.conf.conf").write_text(DEBIAN_ANSWERS)
    spool = workdir / "spool"
    spool.mkdir()
    shutil.chown(spool, EXIM_USER, EXIM_USER)
    blocks = doc_blocks()
    confd = confdir / "conf.d"
    (confd / "main" / "000_localmacros").write_text(
        f"CONFDIR = {confdir}\nSPOOLDIR = {spool}\nMAIN_QUALIFY_DOMAIN = e2e.test\n"
        f"log_file_path = {workdir}/%slog\n" + blocks["main"])
    (confd / "router" / "050_postern").write_text(blocks["routers"])
    (confd / "transport" / "30_postern").write_text(blocks["transports"])
    acl = confd / "acl" / "30_exim4-config_check_rcpt"
    text = acl.read_text()
    assert text.count("\nacl_check_rcpt:\n") == 1, f"{acl} has no single acl_check_rcpt: line"
    acl.write_text(text.replace("\nacl_check_rcpt:\n", "\nacl_check_rcpt:\n" + blocks["acl"], 1))
    out = workdir / "exim4.conf"
    r = subprocess.run(["sh", str(root / "usr" / "sbin" / "update-exim4.conf"),
                        "--confdir", str(confdir), "--output", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and out.exists(), (
        f"update-exim4.conf failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return out


class Exim:
    def __init__(self, sink_port: int, filter_port: int, chunking: bool = True) -> None:
        self.sink_port = sink_port
        self.filter_port = filter_port
        self.chunking = chunking
        self.port = free_port()          # A: where mail is submitted (25 in the doc)
        self.return_port = free_port()   # B: where Postern returns mail (10025 in the doc)
        # Not pytest's tmp_path (mode 0700 parents): Exim's delivery processes
        # run as Debian-exim and need the spool and log directories.
        self.dir = Path(tempfile.mkdtemp(prefix="postern-e2e-exim."))
        self.dir.chmod(0o755)
        self.config = self.dir / "exim.conf"
        self.log_path = self.dir / "log" / "mainlog"
        self.proc: subprocess.Popen | None = None
        self.blocks = doc_blocks()

    def doc(self, name: str) -> str:
        return with_ports(self.blocks[name], self.filter_port, self.return_port, self.port)

    def config_text(self) -> str:
        transports = self.doc("transports")
        if not self.chunking:
            transports, n = re.subn(r"^(\s*hosts_try_chunking\s*=).*$", r"\1", transports,
                                    flags=re.M)
            assert n == 1, "the doc's transport has no hosts_try_chunking line"
        return "\n".join([
            CONFIG_HEAD.format(dir=self.dir, hostname=EXIM_HOSTNAME, user=EXIM_USER,
                              binary=self.binary),
            self.doc("main"),
            "begin acl", "", "acl_check_rcpt:", self.doc("acl"), CONFIG_ACL_TAIL,
            "begin routers", "", self.doc("routers"), CONFIG_SINK_ROUTER,
            "begin transports", "", transports,
            CONFIG_SINK_TRANSPORT.format(sink_port=self.sink_port),
            "begin retry", "", CONFIG_RETRY,
        ])

    def start(self, binary: Path) -> None:
        self.binary = binary
        for sub in ("spool", "log"):
            (self.dir / sub).mkdir()
            shutil.chown(self.dir / sub, EXIM_USER, EXIM_USER)
        self.config.write_text(self.config_text())
        self.config.chmod(0o644)
        check = subprocess.run([str(binary), "-C", str(self.config), "-bV"],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, (
            f"exim -bV refuses the configuration {self.config}:\n{check.stdout}{check.stderr}")
        self.out_path = self.dir / "exim.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(self.config), "-bdf", "-q1s",
                 "-oX", f"{self.port}:{self.return_port}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        try:
            wait_port(self.port, 30, self.proc, "exim")
            wait_port(self.return_port, 30, self.proc, "exim")
        except AssertionError:
            print(tail(self.out_path))
            print(self.log_tail())
            raise

    def stop(self) -> None:
        if self.proc is None:
            return
        # Delivery and queue-runner processes are in the daemon's session.
        stop_server(self.proc)
        self.proc = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        out = tail(self.log_path, lines)
        panic = self.dir / "log" / "paniclog"
        if panic.exists():
            out += f"\n---- Exim paniclog:\n{tail(panic, lines)}"
        return out

    def wait_log(self, regex: str, timeout: float = 30.0, count: int = 1) -> list[re.Match]:
        """Wait until Exim's mainlog has at least `count` lines matching `regex`."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in (pattern.search(line) for line in self.log_text().splitlines()) if m]
            if len(matches) >= count:
                return matches
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Exim's log has {len(matches)} of {count} lines matching {regex!r} "
                    f"after {timeout:.0f}s; last lines:\n{self.log_tail(40)}")
            time.sleep(0.1)

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("E2E_KEEP"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def exim(sink):
    """Factory: ``exim(filter_port, chunking=True) -> Exim``, started.

    One Exim daemon with two ports, configured as docs/exim.md says:
    ``port`` (A, submit here; 25 in the doc) hands every message to Postern
    on ``filter_port``; ``return_port`` (B; 10025 in the doc) takes it back
    and relays it to the sink. With ``chunking=False`` the transport to
    Postern has ``hosts_try_chunking =`` (DATA instead of BDAT)."""
    binary = exim_binary()
    instances: list[Exim] = []

    def start(filter_port: int, chunking: bool = True) -> Exim:
        ex = Exim(sink.port, filter_port, chunking)
        instances.append(ex)
        ex.start(binary)
        return ex

    yield start
    for ex in instances:
        print(f"---- Exim mainlog ({ex.log_path}), last lines:\n{ex.log_tail()}")
        ex.cleanup()
