"""Quarantine release by the user (issue 10, item 4): a recipient releases a message
quarantined for them by replying to its notice (a signed, expiring token in a plus-address);
anyone else, an altered token or an expired one is refused and the reply is never delivered;
`posternctl quarantine release --to`; the daily digest lists each message once. Every
notice is read with Python's email package."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
import shutil
import time

import pytest

from conftest import FILTER_MAIL, POSTERN_HOSTNAME, free_port
from test_notifications import TEMPLATES
from test_scanning import ctl, message, send

RELEASE = f"quarantine-release@{POSTERN_HOSTNAME}"
TOKEN = re.compile(r"quarantine-release\+([0-9A-Z]{43})@" + re.escape(POSTERN_HOSTNAME))
EX_USAGE = 64


def settings(actions: str = "reject, quarantine, notify", lifetime: str = "7d") -> dict:
    """Banned attachments quarantined, the recipients told with the shipped templates."""
    return {
        "Scanner": {"AfterQueueFilters": "Attachments"},
        "Attachments": {"BannedNames": "*.exe", "BannedActions": f'"{actions}"'},
        "Notifier": {"TemplatesDir": str(TEMPLATES), "Notify": "recipients"},
        "Quarantine": {"ReleaseAddress": RELEASE, "ReleaseLifetime": lifetime},
    }


def banned(subject: str) -> bytes:
    return message(subject, attachments=[("setup.exe", b"MZ" + subject.encode(), "application/octet-stream")])


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def content(m) -> str:
    return m.get_content().replace("\r\n", "\n")


def wait_until(pred, sink, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in sink.messages if pred(m)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {[(m.mail_from, m.rcpt_tos) for m in sink.messages]}")


def the_notice(sink, rcpt: str, subject: str):
    """The recipient's quarantine notice: every field checked; returns it and its token."""
    [got] = wait_until(lambda m: m.mail_from == FILTER_MAIL and m.rcpt_tos == [rcpt]
                       and subject in str(parse(m.data)["Subject"]), sink)
    n = parse(got.data)
    assert n["From"].addresses[0].addr_spec == FILTER_MAIL
    assert [a.addr_spec for a in n["To"].addresses] == [rcpt]
    assert str(n["Subject"]) == f"[Postern] Quarantined for you: {subject}"
    assert email.utils.parsedate_to_datetime(str(n["Date"])) is not None
    assert str(n["Message-ID"]).endswith(f"@{POSTERN_HOSTNAME}>")
    assert n["Auto-Submitted"] == "auto-generated" and n["In-Reply-To"] is None
    assert n.get_content_type() == "text/plain" and n.get_content_charset() == "utf-8"
    [reply_to] = n["Reply-To"].addresses
    m = TOKEN.fullmatch(reply_to.addr_spec)
    assert m, reply_to.addr_spec
    assert len(reply_to.addr_spec.split("@")[0]) <= 64, "RFC 5321 local part"
    body = content(n)
    assert f"the reply goes to\n  {reply_to.addr_spec}\n" in body
    for name in ("From", "To", "Subject", "Reply-To", "Date", "Message-ID", "Auto-Submitted"):
        assert len(n.get_all(name)) == 1, name
    return n, m.group(1)


def reply(port: int, token: str, sender: str) -> None:
    r = email.message.EmailMessage()
    r["From"] = sender
    r["To"] = f"quarantine-release+{token}@{POSTERN_HOSTNAME}"
    r["Subject"] = "Re: [Postern] Quarantined for you"
    r.set_content("Please release it.\n")
    data = r.as_bytes(policy=r.policy.clone(linesep="\r\n"))
    code, text = send(port, data, rcpts=(f"quarantine-release+{token}@{POSTERN_HOSTNAME}",), sender=sender)
    assert code == 250, text


def log_lines(p, what: str) -> list[str]:
    return [line for line in p.log_text().splitlines() if what in line]


def deliveries_of(sink, subject: str):
    """The released copies: the original message (its attachment), not a notice."""
    return [m for m in sink.messages if is_copy(m, subject)]


def is_copy(m, subject: str) -> bool:
    """`m` is the banned message itself (from alice, with its attachment), not a report."""
    if m.mail_from != "alice@example.com":
        return False
    original = parse(m.data)
    return str(original["Subject"]) == subject and [a.get_filename() for a in original.iter_attachments()] == ["setup.exe"]


def test_release_by_reply_for_the_recipient_only(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings=settings())
    assert send(port, banned("first"), rcpts=("bob@example.org", "carol@example.org"))[0] == 250
    _, token = the_notice(sink, "bob@example.org", "first")
    _, carols = the_notice(sink, "carol@example.org", "first")
    assert token != carols and token[:20] == carols[:20], "one entry, a token per recipient"
    entry = token[:20]

    # Someone else with bob's token, or carol's token from bob: refused, nothing delivered.
    reply(port, token, "mallory@example.net")
    reply(port, carols, "bob@example.org")
    # Bob with an altered token: one character of the MAC, then one of the expiry.
    for k in (42, 25):
        forged = token[:k] + ("Z" if token[k] != "Z" else "Y") + token[k + 1:]
        reply(port, forged, "bob@example.org")
    deadline = time.monotonic() + 20
    while len(log_lines(p, "release by reply refused")) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    refused = log_lines(p, "release by reply refused")
    assert len(refused) == 4, p.log_text()[-3000:]
    assert all("token not valid for this sender" in line for line in refused), refused
    assert any("sender=<mallory@example.net>" in line for line in refused), refused
    # Each line carries the reply's queue id.
    assert all(re.search(r"scannerd\[\d+\]: [0-9A-Z]{20}: warning: release by reply refused", line) for line in refused), refused
    sink.settle(1.5)
    assert deliveries_of(sink, "first") == []
    assert not [m for m in sink.messages if any(r.startswith("quarantine-release") for r in m.rcpt_tos)], \
        "a release request is never delivered onward"

    # Bob with his own token: the message comes to bob alone, the reply goes nowhere.
    reply(port, token, "Bob@Example.ORG")
    [copy] = wait_until(lambda m: is_copy(m, "first"), sink)
    assert copy.rcpt_tos == ["bob@example.org"]
    assert str(parse(copy.data)["Subject"]) == "first"
    [released] = log_lines(p, "release by reply: quarantined")
    assert f"quarantined {entry} released as " in released and "to <Bob@Example.ORG>" in released
    assert f"quarantine-id={entry}" in released
    sink.settle(1.5)
    assert len(deliveries_of(sink, "first")) == 1
    assert not [m for m in sink.messages if any(r.startswith("quarantine-release") for r in m.rcpt_tos)]
    # The entry stays for carol, who has not asked; bob is marked as having had it.
    listing = ctl(p, "quarantine", "list").stdout
    assert re.search(r"<bob@example\.org>.*\(released\)", listing) and not re.search(r"<carol@example\.org>.*\(released\)", listing), listing
    listed = json.loads(ctl(p, "quarantine", "list", "--json").stdout)
    [m] = [m for m in listed["messages"] if m["queue_id"] == entry]
    assert {r["address"]: r["released"] for r in m["recipients"]} == {"bob@example.org": True, "carol@example.org": False}

    # The same token again (a second reply, or one replayed): spent, nothing more delivered.
    reply(port, token, "bob@example.org")
    deadline = time.monotonic() + 20
    while len(log_lines(p, "release by reply refused")) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    again = log_lines(p, "release by reply refused")[4:]
    assert len(again) == 1 and "already released to <bob@example.org>" in again[0], again
    sink.settle(1.5)
    assert len(deliveries_of(sink, "first")) == 1


def test_release_by_reply_is_refused_after_expiry(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings=settings(lifetime="2s"))
    assert send(port, banned("late"))[0] == 250
    _, token = the_notice(sink, "bob@example.org", "late")
    time.sleep(2.5)
    reply(port, token, "bob@example.org")
    deadline = time.monotonic() + 20
    while not log_lines(p, "release by reply refused") and time.monotonic() < deadline:
        time.sleep(0.1)
    [refused] = log_lines(p, "release by reply refused")
    assert "token expired at " in refused and f"quarantine-id={token[:20]}" in refused
    sink.settle(1.5)
    assert deliveries_of(sink, "late") == []


def test_release_to_another_address(postern, sink):
    port = free_port()
    p = postern(port, sink.port, settings=settings("reject, quarantine"))
    assert send(port, banned("elsewhere"))[0] == 250
    [entry] = quarantined(p, 1)

    both = ctl(p, "quarantine", "release", "--to", "review@example.net", "--rcpt", "bob@example.org", entry)
    assert both.returncode == EX_USAGE and "choose one of --rcpt and --to" in both.stderr
    bad = ctl(p, "quarantine", "release", "--to", "not an address", entry)
    assert bad.returncode == EX_USAGE and "--to 'not an address'" in bad.stderr

    r = ctl(p, "quarantine", "release", "--to", "review@example.net", "--json", entry)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["count"] == 1
    [one] = doc["released"]
    assert one["queue_id"] == entry and one["recipients"] == ["review@example.net"] and one["deleted"] is False
    assert (f"posternctl: {entry}: released from the quarantine as {one['new_queue_id']} to <review@example.net> "
            "instead of its recipients by user=") in r.stderr
    [copy] = wait_until(lambda m: m.mail_from == "alice@example.com", sink)
    assert copy.rcpt_tos == ["review@example.net"] and is_copy(copy, "elsewhere")
    sink.settle(1.5)
    assert [m.rcpt_tos for m in sink.messages if m.mail_from == "alice@example.com"] == [["review@example.net"]]


def quarantined(p, n: int) -> list[str]:
    """The quarantine's ids, oldest first, once there are `n`."""
    deadline = time.monotonic() + 20
    while True:
        ids = re.findall(r"^([0-9A-Z]{20}) ", ctl(p, "quarantine", "list").stdout, re.M)
        if len(ids) >= n:
            return ids
        assert time.monotonic() < deadline, ids
        time.sleep(0.1)


def digest(p) -> dict:
    r = ctl(p, "quarantine", "digest", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_digest_lists_each_message_once(postern, sink):
    port = free_port()
    # Nobody is told at once: the digest is the only notice.
    p = postern(port, sink.port, settings=settings("reject, quarantine"))
    assert send(port, banned("one"), rcpts=("bob@example.org", "carol@example.org"))[0] == 250
    entries = quarantined(p, 1)
    assert send(port, banned("two"))[0] == 250
    entries = quarantined(p, 2)

    doc = digest(p)
    assert doc["count"] == 2
    by_rcpt = {d["to"]: d for d in doc["digests"]}
    assert sorted(by_rcpt) == ["bob@example.org", "carol@example.org"]
    assert by_rcpt["bob@example.org"]["messages"] == entries and by_rcpt["carol@example.org"]["messages"] == entries[:1]
    got = wait_until(lambda m: m.mail_from == FILTER_MAIL and len(m.rcpt_tos) == 1, sink)
    sink.settle(1.5)
    got = [m for m in sink.messages if m.mail_from == FILTER_MAIL]
    assert sorted(m.rcpt_tos[0] for m in got) == ["bob@example.org", "carol@example.org"]
    for m in got:
        rcpt = m.rcpt_tos[0]
        n = parse(m.data)
        assert m.mail_from == FILTER_MAIL != "", "never from the null sender"
        assert n["From"].addresses[0].addr_spec == FILTER_MAIL
        assert [a.addr_spec for a in n["To"].addresses] == [rcpt]
        assert str(n["Subject"]) == "[Postern] Messages kept in the quarantine for you"
        assert n["Auto-Submitted"] == "auto-generated" and email.utils.parsedate_to_datetime(str(n["Date"]))
        assert str(n["Message-ID"]) == f"<{by_rcpt[rcpt]['queue_id']}@{POSTERN_HOSTNAME}>"
        body = content(n)
        wanted = by_rcpt[rcpt]["messages"]
        for entry in entries:
            assert body.count(f"Reference: {entry}\n") == (1 if entry in wanted else 0), (rcpt, entry, body)
        assert body.count("Release:   quarantine-release+") == len(wanted)
        assert ("* one\n" in body) and (("* two\n" in body) == (rcpt == "bob@example.org"))
        assert "attachments: banned: setup.exe" in body

    # A second run lists nothing again; a new quarantined message is listed alone.
    assert digest(p) == {"count": 0, "digests": []}
    assert send(port, banned("three"))[0] == 250
    [third] = [e for e in quarantined(p, 3) if e not in entries]
    doc = digest(p)
    assert [(d["to"], d["messages"]) for d in doc["digests"]] == [("bob@example.org", [third])]

    # The release address under a message in the digest works like the notice's.
    newest = wait_until(lambda m: m.mail_from == FILTER_MAIL and third.encode() in m.data, sink)[0]
    token = TOKEN.search(content(parse(newest.data))).group(1)
    reply(port, token, "bob@example.org")
    [copy] = wait_until(lambda m: is_copy(m, "three"), sink)
    assert copy.rcpt_tos == ["bob@example.org"]


def test_show_and_digest_read_a_large_quarantined_message_in_pieces(postern, sink, tmp_path):
    """`quarantine show --body` streams the entry, and the digest reads only the head of
    each message (where the header fields are): a 20 MiB message raises posternctl's peak
    memory by less than 4 MiB over a small one's."""
    from test_posternctl import peak_memory
    port = free_port()
    p = postern(port, sink.port, settings={**settings("reject, quarantine"), "Receiver": {"MaxMessageSize": "30m"}})
    assert send(port, banned("small"))[0] == 250
    [small] = quarantined(p, 1)
    digest_small = peak_memory(p, "quarantine", "digest", "--json", out=tmp_path / "digest-small")
    large = message("large", body=("y" * 76 + "\n") * (20 * 2**20 // 77),
                    attachments=[("setup.exe", b"MZlarge", "application/octet-stream")])
    assert send(port, large)[0] == 250
    [big] = set(quarantined(p, 2)) - {small}
    digest_large = peak_memory(p, "quarantine", "digest", "--json", out=tmp_path / "digest-large")
    doc = json.loads((tmp_path / "digest-large").read_text())
    assert [d["messages"] for d in doc["digests"]] == [[big]], doc
    assert digest_large - digest_small < 4 * 2**20, f"the digest's peak grew by {(digest_large - digest_small) / 2**20:.1f} MiB"
    shown_small = peak_memory(p, "quarantine", "show", small, "--body", out=tmp_path / "small")
    shown_large = peak_memory(p, "quarantine", "show", big, "--body", out=tmp_path / "large")
    assert (tmp_path / "large").read_bytes().endswith(large + b"\r\n")   # send() ends the data with an empty line
    assert shown_large - shown_small < 4 * 2**20, f"show --body's peak grew by {(shown_large - shown_small) / 2**20:.1f} MiB"


@pytest.mark.parametrize("stage", ["BeforeQueueFilters", "AfterQueueFilters"])
def test_a_message_the_quarantine_cannot_take_is_kept(postern, sink, tmp_path, stage):
    """`discard, quarantine` while the quarantine cannot store (its path is a file, not a
    directory): the message is not dropped without its copy. Before the queue the client
    gets 451 and sends it again; after the queue the message stays queued and is scanned
    again. Once the quarantine can store, the copy is made and the message discarded."""
    qdir = tmp_path / "quarantine"
    port = free_port()
    p = postern(port, sink.port, settings={"Scanner": {stage: "Attachments"},
                                           "Attachments": {"BannedNames": "*.exe", "BannedActions": '"discard, quarantine"'},
                                           "Quarantine": {"Path": str(qdir)}})
    if qdir.exists():
        shutil.rmtree(qdir)
    qdir.write_text("not a directory\n")
    code, text = send(port, banned("kept"))
    if stage == "BeforeQueueFilters":
        assert code == 451, text
        assert log_lines(p, "cannot quarantine") and log_lines(p, "the client is told to try again")
        qdir.unlink()
        code, text = send(port, banned("kept"))
        assert code == 250, text
    else:
        assert code == 250, text
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
        deadline = time.monotonic() + 20
        while not log_lines(p, "the message stays queued and is scanned again"):
            assert time.monotonic() < deadline, p.log_text()[-3000:]
            time.sleep(0.1)
        listed = ctl(p, "queue", "list").stdout
        assert [line for line in listed.splitlines() if line.startswith(qid) and " scan " in f" {line} "], listed
        qdir.unlink()
        # Held and released, the message is scanned again at once (not after the retry delay).
        assert ctl(p, "queue", "hold", qid).returncode == 0
        assert ctl(p, "queue", "release", qid).returncode == 0
    [entry] = quarantined(p, 1)
    shown = ctl(p, "quarantine", "show", entry, "--body").stdout
    assert "Subject: kept" in shown and "setup.exe" in shown
    time.sleep(0.5)
    assert not [m for m in sink.messages if is_copy(m, "kept")]   # discarded, after its copy
