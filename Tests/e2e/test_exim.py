"""Exim -> Postern -> Exim -> sink, in callback mode, configured from docs/exim.md.

    smtplib --SMTP--> Exim :A --router "postern"--> Postern :F
        --SenderAddress = inet:B@CLIENT-IP--> Exim :B --router "sink"--> sink

One Exim daemon listens on A (25 in the doc) and B (10025 in the doc). Its
smtp client pipelines MAIL, RCPT, BDAT LAST (or DATA and the data) and QUIT
and then shuts down its sending side. Issue 7: Postern closed the connection
before its 250 reached Exim. Exim logged "Remote host closed connection in
response to pipelined end of data", deferred the message and sent it again,
and every message reached the sink twice.

Every case runs with BDAT towards Postern (hosts_try_chunking = *) and with
DATA (hosts_try_chunking empty). Each message must reach the sink exactly
once, its body byte for byte as sent and its header as sent plus trace
fields. Exim's log must show Postern's "Ok: queued as ID" for the hop and no
deferral. Exim retries every second (-q1s, retry rule F,1h,1s), so a
deferred message comes again within the settle time and shows as a
duplicate.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import smtplib
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (POSTERN_HOSTNAME, Received, field_name, free_port, postern_binary,
                      split_message)
from exim import (EXIM_HOSTNAME, debian_config, doc_blocks, exim,  # noqa: F401  (exim: fixture)
                  exim_binary, postern_settings)

SENDER = "alice@example.org"

# Quiet time at the sink before counting: two runs of Exim's queue runner
# (every second), enough for a deferred message to come again. A deferral
# also shows at once in Exim's log, which postern_hops checks.
SETTLE = 2.0

BODY = (
    b"Hello from the Postern e2e suite, by way of Exim.\r\n"
    b".\r\n"
    b"..\r\n"
    b".leading dot\r\n"
    b" leading space\r\n"
    b"trailing spaces   \r\n"
    b"tab\there\r\n"
    b"From the mbox point of view this line is special\r\n"
    + b"x" * 998 + b"\r\n"
    + b"\r\n"
    b"last line\r\n"
)

EIGHT_BIT_BODY = (
    b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, \xe2\x82\xac 100 \xe2\x9c\x93\r\n"
    b"Latin-1 octets: caf\xe9 na\xefve \xa9\r\n"
    b"High octets \x80\x9f\xff\r\n"
    b".\xc3\xa9 leading dot before 8-bit\r\n"
) + BODY


def make_message(subject: str, to: str, body: bytes, sender: str = SENDER) -> tuple[bytes, str]:
    """A message and its Message-ID, by which the sink's copies are counted."""
    mid = f"{uuid.uuid4().hex}@example.org"
    head = (
        "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
        f"From: Alice <{sender}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{mid}>\r\n"
        "X-Folded: first part,\r\n\tsecond part\r\n"
    ).encode()
    return head + b"\r\n" + body, mid


@functools.cache
def big_body(size: int) -> bytes:
    """About `size` octets of base64 text in 76-octet lines, every 1000th of
    them starting with a dot (dot-stuffing on the way)."""
    text = base64.b64encode(random.Random(7).randbytes(size * 3 // 4))
    lines = [text[i:i + 76] for i in range(0, len(text), 76)]
    lines[::1000] = [b"." + line[1:] for line in lines[::1000]]
    return b"\r\n".join(lines) + b"\r\n"


def submit(port: int, sender: str, rcpt: str, message: bytes,
           mail_options: tuple[str, ...] = (), smtp: smtplib.SMTP | None = None) -> str:
    """One transaction on Exim's port A; returns Exim's message id from its
    250 reply ("250 OK id=1xa5fe-0006pN-1h")."""
    own = smtp is None
    if own:
        smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.e2e.test", timeout=60)
    try:
        smtp.ehlo_or_helo_if_needed()
        code, text = smtp.mail(sender, list(mail_options))
        assert code == 250, f"MAIL FROM: {code} {text!r}"
        code, text = smtp.rcpt(rcpt)
        assert code == 250, f"RCPT TO: {code} {text!r}"
        code, text = smtp.data(message)
        assert code == 250, f"end of data: {code} {text!r}"
        m = re.search(rb"id=(\S+)", text)
        assert m, f"no message id in Exim's reply {text!r}"
        return m.group(1).decode()
    finally:
        if own:
            smtp.quit()


def setup(sink, exim, postern, chunking: bool):
    """Exim and Postern as docs/exim.md configures them, on the test's ports."""
    postern_binary("posternctl")     # fail at once, before starting Exim
    filter_port = free_port()
    ex = exim(filter_port, chunking=chunking)
    settings, rules = postern_settings(doc_blocks()["postern.conf"], filter_port, ex.return_port)
    pt = postern(receiver_port=filter_port, sender_port=ex.return_port,
                 rules_first=rules, settings=settings)
    return ex, pt


def by_message_id(msgs: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for m in msgs:
        [mid] = m.header_values("Message-ID") or ["(none)"]
        out.setdefault(mid.strip("<>"), []).append(m)
    return out


def check_message(msg: Received, sent: bytes, queue_id: str) -> None:
    """The sink's copy is `sent` plus trace fields, byte for byte."""
    sent_fields, sent_body = split_message(sent)
    got_fields, got_body = split_message(msg.data)
    assert got_body == sent_body, (
        f"body changed on the way (sent {len(sent_body)} octets, got {len(got_body)})")
    added = {"received", "x-postern-guard"}
    assert [f for f in got_fields if field_name(f) not in added] == sent_fields, (
        "header changed on the way (other than Received:/X-Postern-Guard:)")
    received = msg.header_values("Received")
    assert len(received) == 3, f"expected 3 Received: fields (Exim, Postern, Exim), got {received!r}"
    assert f"by {EXIM_HOSTNAME}" in received[0] and "Exim" in received[0], received[0]
    assert re.search(r"\bPostern\b", received[1]) and POSTERN_HOSTNAME in received[1], received[1]
    assert re.search(rf"(?<![\w.-]){re.escape(queue_id)}(?![\w-])", received[1]), (
        f"Postern's Received: lacks its queue id {queue_id}: {received[1]!r}")
    assert f"by {EXIM_HOSTNAME}" in received[2] and "Exim" in received[2], received[2]
    assert len(msg.header_values("X-Postern-Guard")) == 1


def postern_hops(ex, exim_ids: list[str]) -> dict[str, str]:
    """Exim's log lines for the hop to Postern: exactly one delivery per
    message, with Postern's queue id in Exim's C="..." field. Returns Exim id
    -> Postern queue id. Also: no deferral of any hop to Postern."""
    ex.wait_log(r" => .* R=postern T=postern_smtp ", count=len(exim_ids), timeout=60)
    log = ex.log_text()
    trouble = [line for line in log.splitlines()
               if re.search(r" == .*T=postern_smtp|Remote host closed connection|"
                            r"T=postern_smtp defer|\*\* .*T=postern_smtp", line)]
    assert not trouble, "Exim deferred or failed the hop to Postern:\n" + "\n".join(trouble)
    hops: dict[str, str] = {}
    for eid in exim_ids:
        mine = [line for line in log.splitlines()
                if f" {eid} => " in line and "T=postern_smtp" in line]
        assert len(mine) == 1, f"Exim message {eid}: {len(mine)} deliveries to Postern: {mine}"
        m = re.search(r'C="250 2\.0\.0 Ok: queued as (\S+)"', mine[0])
        assert m, f"Exim's log for the hop to Postern lacks 'Ok: queued as': {mine[0]}"
        hops[eid] = m.group(1)
    return hops


def chunking_flag(ex, exim_id: str, chunking: bool) -> None:
    """Exim's delivery line carries the field K when it used BDAT."""
    [line] = [line for line in ex.log_text().splitlines()
              if f" {exim_id} => " in line and "T=postern_smtp" in line]
    assert (" K " in f"{line} ") == chunking, (
        f"expected {'BDAT' if chunking else 'DATA'} towards Postern: {line}")


def one_message(sink, ex, sent: bytes, mid: str, exim_id: str, chunking: bool) -> Received:
    sink.wait_for(1, timeout=60)
    msgs = sink.settle(SETTLE)
    copies = by_message_id(msgs).get(mid, [])
    assert len(copies) == 1 and len(msgs) == 1, (
        f"expected the message once at the sink, got {len(copies)} copies "
        f"({len(msgs)} messages in all)")
    [queue_id] = postern_hops(ex, [exim_id]).values()
    chunking_flag(ex, exim_id, chunking)
    check_message(copies[0], sent, queue_id)
    return copies[0]


CHUNKING = pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])


@CHUNKING
def test_exim_plain(sink, exim, postern, chunking):
    ex, pt = setup(sink, exim, postern, chunking)
    rcpt = "bob@example.net"
    sent, mid = make_message("plain 7-bit", rcpt, BODY)
    exim_id = submit(ex.port, SENDER, rcpt, sent)
    msg = one_message(sink, ex, sent, mid, exim_id, chunking)
    assert msg.mail_from == SENDER and msg.rcpt_tos == [rcpt]


@CHUNKING
def test_exim_8bitmime(sink, exim, postern, chunking):
    """An 8-bit body sent with BODY=8BITMIME arrives unchanged. Exim takes
    the parameter (M8S=8 in its log) but does not pass it on: it is 8-bit
    clean and sends every message as it is (Exim's spec, accept_8bitmime).
    That Postern passes BODY= on is shown behind Postfix."""
    ex, pt = setup(sink, exim, postern, chunking)
    rcpt = "bob@example.net"
    sent, mid = make_message("8bit", rcpt, EIGHT_BIT_BODY)
    exim_id = submit(ex.port, SENDER, rcpt, sent, mail_options=("BODY=8BITMIME",))
    one_message(sink, ex, sent, mid, exim_id, chunking)
    ex.wait_log(rf" {exim_id} <= .* I=\[127\.0\.0\.1\]:{ex.port} .*M8S=8 ", timeout=5)


@CHUNKING
def test_exim_smtputf8(sink, exim, postern, chunking):
    ex, pt = setup(sink, exim, postern, chunking)
    sender = "j\u00f6rg@b\u00fccher.example"
    rcpt = "\u00e9lodie@exempl\u00e9.example"
    sent, mid = make_message("SMTPUTF8 \u2713", rcpt, EIGHT_BIT_BODY, sender=sender)
    exim_id = submit(ex.port, sender, rcpt, sent, mail_options=("SMTPUTF8", "BODY=8BITMIME"))
    msg = one_message(sink, ex, sent, mid, exim_id, chunking)
    assert msg.mail_from == sender and msg.rcpt_tos == [rcpt]
    assert "SMTPUTF8" in [o.upper() for o in msg.mail_options], (
        f"SMTPUTF8 lost on the way (sink saw MAIL FROM options {msg.mail_options})")


@CHUNKING
def test_exim_large(sink, exim, postern, chunking):
    ex, pt = setup(sink, exim, postern, chunking)
    rcpt = "bob@example.net"
    sent, mid = make_message("5 MiB", rcpt, big_body(5 * 1024 * 1024))
    exim_id = submit(ex.port, SENDER, rcpt, sent)
    one_message(sink, ex, sent, mid, exim_id, chunking)


@CHUNKING
def test_exim_parallel(sink, exim, postern, chunking):
    """50 messages over 10 connections at once, 5 in each."""
    ex, pt = setup(sink, exim, postern, chunking)
    connections, per_connection = 10, 5
    messages = [make_message(f"parallel {i}", f"user{i}@example.net", BODY)
                for i in range(connections * per_connection)]

    def one_connection(batch):
        ids = []
        with smtplib.SMTP("127.0.0.1", ex.port, local_hostname="client.e2e.test",
                          timeout=60) as smtp:
            for i, (sent, _mid) in batch:
                ids.append(submit(ex.port, SENDER, f"user{i}@example.net", sent, smtp=smtp))
        return ids

    batches = [[(i, messages[i]) for i in range(c, len(messages), connections)]
               for c in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        exim_ids = [eid for ids in pool.map(one_connection, batches) for eid in ids]
    assert len(set(exim_ids)) == len(messages)

    sink.wait_for(len(messages), timeout=90)
    msgs = sink.settle(SETTLE)
    copies = by_message_id(msgs)
    wrong = {mid: len(copies.get(mid, [])) for _, mid in messages if len(copies.get(mid, [])) != 1}
    assert not wrong and len(msgs) == len(messages), (
        f"{len(msgs)} messages at the sink for {len(messages)} sent; "
        f"copies per Message-ID other than 1: {wrong}")
    hops = postern_hops(ex, exim_ids)
    assert len(set(hops.values())) == len(messages), "Postern gave two messages one queue id"
    queue_ids = set(hops.values())
    for sent, mid in messages:
        [msg] = copies[mid]
        [qid] = [q for q in queue_ids if q in msg.header_values("Received")[1]]
        check_message(msg, sent, qid)


def test_exim_debian_split_config(workdir):
    """The doc's blocks where its Debian section puts them, in Debian's own
    split configuration: update-exim4.conf builds it, Exim accepts it, the
    postern router comes first, and the RCPT ACL lets loopback (and only
    loopback) send to 10025 before Debian's relay_from_hosts statement sets
    submission mode. Exim's -bt (routing) and -bh (a fake SMTP session from
    a given client to a given local port) need no daemon."""
    binary = exim_binary()
    workdir.chmod(0o755)     # Exim's -bh checks the spool as Debian-exim
    config = debian_config(binary, workdir)

    def exim_run(*args: str, stdin: str = "") -> str:
        r = subprocess.run([str(binary), "-C", str(config), *args], input=stdin,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 or "-bh" in args, f"exim {args}: {r.returncode}\n{r.stdout}{r.stderr}"
        return r.stdout + r.stderr

    assert re.search(r"^daemon_smtp_ports = 25 : 10025$", exim_run("-bP", "daemon_smtp_ports"), re.M)
    routed = exim_run("-bt", "bob@example.net", "root@localhost")
    assert routed.count("router = postern, transport = postern_smtp") == 2, routed

    def rcpt(client: str, port: int) -> tuple[str, str]:
        session = ("EHLO client.e2e.test\r\nMAIL FROM:<alice@example.org>\r\n"
                   "RCPT TO:<bob@example.net>\r\nQUIT\r\n")
        out = exim_run("-bh", client, "-oMi", f"127.0.0.1.{port}", stdin=session)
        replies = [line for line in out.splitlines() if re.match(r"^[245]\d\d ", line)]
        return replies[-2], out    # the reply to RCPT (the last is QUIT's)

    reply, trace = rcpt("127.0.0.1", 10025)
    assert reply.startswith("250 "), f"loopback refused on 10025: {reply}\n{trace[-3000:]}"
    assert "control = submission" not in trace, "returned mail went through submission mode"
    reply, trace = rcpt("192.0.2.1", 10025)
    assert reply.startswith("550 ") and "content filter" in reply, (
        f"a remote client may relay through 10025: {reply}")
    # Port 25 from loopback: Debian's own statements, submission mode and all.
    reply, trace = rcpt("127.0.0.1", 25)
    assert reply.startswith("250 ") and "control = submission" in trace, reply
