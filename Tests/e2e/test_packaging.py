"""What the package installs agrees with itself and with the sources it comes from.

- /etc/postern/postern.conf is made from config/postern.conf by config/production.sed
  (`make dist`): the two must differ only in the paths, and the result must load.
- Its paths must be the ones the units, tmpfiles.d and sysusers.d use.
- postern.conf(5) (man/postern.conf.5, written by hand) must describe every key of the sample.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import postern_binary

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "postern.conf"
SED = ROOT / "config" / "production.sed"
MAN = ROOT / "man" / "postern.conf.5"
UNITS = ROOT / "systemd"

# What production.sed substitutes, and nothing else.
PATHS = [("./var/spool", "/var/spool/postern"), ("./var/run", "/run/postern")]


def production() -> str:
    return subprocess.run(["sed", "-f", str(SED), str(SAMPLE)], check=True, capture_output=True,
                          text=True).stdout


def ini(text: str) -> dict[tuple[str, str], str]:
    """(section, key) -> value of the plain `Key = value` lines (lower-cased names)."""
    out, section = {}, ""
    for line in text.splitlines():
        if m := re.match(r"\s*\[([^\]]+)\]", line):
            section = m.group(1).strip().lower()
        elif m := re.match(r"\s*([A-Za-z][\w./-]*)\s*=\s*(.*?)\s*$", line):
            out[(section, m.group(1).lower())] = m.group(2)
    return out


def unit(name: str) -> str:
    return (UNITS / name).read_text()


def test_makefile_generates_the_conf_with_production_sed():
    make = (ROOT / "Makefile").read_text()
    assert "sed -f config/production.sed config/postern.conf > $(DIST)/postern.conf" in make


def test_production_conf_differs_from_the_sample_only_in_paths(tmp_path):
    sample, prod = SAMPLE.read_text().splitlines(), production().splitlines()
    assert len(sample) == len(prod), "production.sed must replace lines, not add or drop them"
    for i, (a, b) in enumerate(zip(sample, prod), 1):
        if a == b:
            continue
        expected = a
        for old, new in PATHS:
            expected = expected.replace(old, new)
        assert b == expected or (a.startswith(";") and b.startswith(";")), f"line {i}: {a!r} -> {b!r}"
    assert "./var" not in production()
    conf = tmp_path / "postern.conf"
    conf.write_text(production())
    # As installed: the templates next to postern.conf (TemplatesDir = templates).
    shutil.copytree(ROOT / "config" / "templates", tmp_path / "templates")
    check = subprocess.run([str(postern_binary("posternctl")), "config", "check", "--config", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_production_paths_are_the_units_paths():
    conf = ini(production())
    assert conf[("general", "spooldir")] == "/var/spool/postern"
    assert conf[("general", "rundir")] == "/run/postern"
    assert conf[("quarantine", "path")].startswith("/var/spool/postern/")   # inside ReadWritePaths=
    # The sockets systemd passes are the ones the config names.
    assert conf[("scanner", "address")] == "local:" + re.search(
        r"^ListenStream=(\S+)", unit("postern-scannerd.socket"), re.M).group(1)
    assert conf[("sender", "controladdress")] == "local:" + re.search(
        r"^ListenStream=(\S+)", unit("postern-senderd.socket"), re.M).group(1)
    host, port = re.search(r"^ListenStream=(\S+):(\d+)$", unit("postern-receiverd.socket"), re.M).groups()
    assert conf[("receiver", "address")] == f"inet:{port}@{host}"
    # Loop-free default route: the MTA's return port, the one the seed rule calls back on.
    assert conf[("sender", "address")] == "inet:10025@127.0.0.1"
    assert "SenderAddress = inet:10025@CLIENT-IP" in production()
    for d in ("receiverd", "scannerd", "senderd"):
        text = unit(f"postern-{d}.service")
        assert f"ExecStart=/usr/lib/postern/{d} --config /etc/postern/postern.conf\n" in text
        assert "ReadWritePaths=/var/spool/postern " in text
        assert "User=postern\n" in text
    # The digest runs posternctl as the daemons' user on the same paths, daily, when enabled.
    digest = unit("postern-digest.service")
    assert "ExecStart=/usr/lib/postern/posternctl quarantine digest --config /etc/postern/postern.conf\n" in digest
    assert "ReadWritePaths=/var/spool/postern " in digest and "User=postern\n" in digest
    timer = unit("postern-digest.timer")
    assert re.search(r"^OnCalendar=\S", timer, re.M) and re.search(r"^WantedBy=timers\.target$", timer, re.M)
    tmpfiles = (UNITS / "postern-tmpfiles.conf").read_text()
    assert re.search(r"^d /var/spool/postern 0750 postern postern", tmpfiles, re.M)
    sysusers = (UNITS / "postern-sysusers.conf").read_text()
    assert re.search(r"^u postern .* /var/spool/postern ", sysusers, re.M)


def test_man_page_describes_every_key_of_the_sample():
    man = MAN.read_text()
    described = set(re.findall(r"\bCm (\w+)", man)) | set(re.findall(r"^\.It Cm (\w+) ,", man, re.M))
    described |= {w for line in re.findall(r"^\.It Cm .*$", man, re.M) for w in re.findall(r"\b[A-Z]\w+", line)}
    keys, sections = set(), set()
    for line in SAMPLE.read_text().splitlines():
        if m := re.match(r"\s*\[([A-Za-z]+)\]", line):
            sections.add(m.group(1))
        # Keys, also those shown commented out (;Receiver = ...).
        elif m := re.match(r"\s*;?([A-Z][A-Za-z]+)\s*=", line):
            keys.add(m.group(1))
    missing = sorted(k for k in keys if k not in described)
    assert not missing, f"keys of config/postern.conf not in man/postern.conf.5: {missing}"
    for s in sections:
        assert f"[{s}]" in man, f"section [{s}] not in man/postern.conf.5"
