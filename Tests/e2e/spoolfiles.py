"""Spool files written by the tests themselves, in the format of
docs/spool-format.md (version 1), and a private configuration around them:
for posternctl tests that need a queue in a known state but no daemons."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

STATES = ("incoming", "scan", "outgoing", "deferred", "hold", "quarantine", "corrupt")
MAGIC = "POSTERN-SPOOL 1 envelope-at="
MESSAGE = b"Received: from client.example by filter.e2e.test\r\nSubject: crafted\r\n\r\nbody\r\n"


def queue_id(n: int) -> str:
    """A valid queue id (20 characters of Crockford base-32), sorting by n."""
    return f"K15CB883PTSW{n:08d}"


def spool_bytes(qid: str, recipients=("b@example.org",), statuses: str | None = "P",
                errors: dict[int, tuple[float, str]] | None = None, arrival: float | None = None,
                sender: str = "a@example.com", hold_reason: str | None = None,
                message: bytes = MESSAGE) -> bytes:
    """statuses: one route status character per recipient ("P", "D", "F"…), or
    None for a file that has not been scanned yet."""
    arrival = time.time() - 3600 if arrival is None else arrival
    env = [f"id {qid}", f"arrival {arrival}", "protocol smtp", "received-with ESMTP",
           "client-ip 127.0.0.1", "client-port 40000", "client-name localhost", "helo client.example",
           "server-ip 127.0.0.1", "server-port 10024", f"mail-from <{sender}>"]
    env += [f"rcpt <{r}>" for r in recipients]
    env += [f"size {len(message)}", "body-sha256 00", "guard-valid no", "valid-guards 0", "received-headers 1"]
    if hold_reason:
        env.append(f"hold-reason {hold_reason}")
    text = "\n".join(env) + "\nend envelope\n"
    if statuses is not None:
        text += "scanned 1795687549.61\nverdict pass\n"
        for i, s in enumerate(statuses):
            text += f"route {s} {i} inet:10025@127.0.0.1\n"
        text += "attempts 000002\nend verdict\n"
        if errors:
            for route, (t, why) in sorted(errors.items()):
                text += f"error {route} {t} {why}\n"
            text += "end errors\n"
    header = f"{MAGIC}{45 + len(message):016d}\n"
    return header.encode() + message + text.encode()


@dataclass
class CraftedSpool:
    dir: Path
    spool: Path
    quarantine: Path
    config: Path

    def put(self, state: str, qid: str, next_attempt: float | None = None, **kw) -> Path:
        base = self.quarantine if state == "quarantine" else self.spool / state
        path = base / qid
        path.write_bytes(spool_bytes(qid, **kw))
        if next_attempt is not None:
            os.utime(path, (next_attempt, next_attempt))
        return path

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the work directory with its contents."""
        out = {}
        for root, _, files in os.walk(self.dir):
            for f in files:
                p = Path(root) / f
                out[str(p.relative_to(self.dir))] = p.read_bytes()
        return out


def crafted_spool(workdir: Path, extra: str = "") -> CraftedSpool:
    spool, run = workdir / "spool", workdir / "run"
    for s in STATES:
        (spool / s).mkdir(parents=True, exist_ok=True)
    run.mkdir(exist_ok=True)
    config = workdir / "postern.conf"
    config.write_text(f"[General]\nSpoolDir = {spool}\nRunDir = {run}\nHostname = filter.e2e.test\n{extra}")
    return CraftedSpool(workdir, spool, spool / "quarantine", config)
