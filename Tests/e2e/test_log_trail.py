"""The log tells every message's story: one run with mail of every fate, then
the whole log is parsed and each message followed by its queue id from the
event that took it in (`queued`, or `refused` at end of data) to the final
state of every recipient, the way an administrator greps Postfix's log.

Fates in the run: delivered; refused by the next hop (bounced, and the DSN
then delivered); deferred once and then delivered; refused before the queue
by a header rule; discarded after the queue by another; a recipient refused
at RCPT time (NOQUEUE).
"""

from __future__ import annotations

import re
import smtplib
import time
from collections import defaultdict

from conftest import Sink, free_port

# 2026-12-06T07:10:00.123456+00:00 senderd[123]: ID: text key=value ...
LINE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d) "
                  r"(?P<daemon>receiverd|scannerd|senderd|posternctl)\[\d+\]: (?P<rest>.*)$")
QID = re.compile(r"^(?P<id>[0-9A-Z]{20}): (?P<text>.*)$")
TO = re.compile(r"^to=<(?P<rcpt>[^>]*)>(?:, orig_to=<[^>]*>)?, (?P<fields>.*?)status=(?P<status>[a-z]+)")
FINAL = {"sent", "bounced", "expired", "refused", "discarded", "blocked"}


class Hop(Sink):
    """The next hop: refuses nobody@ for good, defers later@ once, takes the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.deferred_once = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
        if address.startswith("later@") and not self.deferred_once:
            self.deferred_once = True
            return "451 4.3.0 <later@example.org>: Temporary lookup failure"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"


def test_every_message_can_be_followed_through_the_log(postern, sink):
    from aiosmtpd.controller import Controller
    hop = Hop()
    hop.port = free_port()
    ctl = Controller(hop, hostname="127.0.0.1", port=hop.port, decode_data=False)
    ctl.start()
    try:
        port = free_port()
        p = postern(port, sink.port, callback_port=hop.port,
                    settings={"Sender": {"RetryIntervals": "1s"},
                              "Scanner": {"BeforeQueueFilters": "HeadersFilter"},
                              # Two Rule lines (a repeated key is a list; a regex may hold commas).
                              "HeadersFilter": {"Rule": "reject Subject ^refuse-me\nRule = discard Subject ^discard-me",
                                                "RejectActions": "reject", "DiscardActions": "discard"}})

        def send(rcpts, subject, mid):
            msg = f"Subject: {subject}\r\nMessage-ID: <{mid}@e2e.test>\r\n\r\nbody\r\n".encode()
            with smtplib.SMTP("127.0.0.1", port) as c:
                c.ehlo("client.e2e.test")
                try:
                    c.sendmail("alice@example.com", rcpts, msg)
                except smtplib.SMTPException as e:
                    return e
            return None

        assert send(["bob@example.org"], "plain", "m1") is None
        assert send(["nobody@example.org", "carol@example.org"], "one refused", "m2") is None
        assert send(["later@example.org"], "deferred once", "m3") is None
        assert isinstance(send(["dave@example.org"], "refuse-me please", "m4"), smtplib.SMTPDataError)
        assert send(["erin@example.org"], "discard-me please", "m5") is None
        with smtplib.SMTP("127.0.0.1", port) as c:   # a recipient refused at RCPT time
            c.ehlo("client.e2e.test")
            c.mail("alice@example.com")
            assert c.rcpt("bad address@")[0] >= 500
            c.rset()

        # bob, carol, later (after one retry) at the hop; the DSN about nobody at the sink.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (sum(len(m.rcpt_tos) for m in hop.messages) < 3 or not sink.messages):
            time.sleep(0.2)
        time.sleep(1.5)
    finally:
        ctl.stop()

    log = p.log_text().splitlines()
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    noqueue = []
    for line in log:
        m = LINE.match(line)
        assert m, f"line without an RFC 3339 timestamp and daemon[pid]: {line!r}"
        q = QID.match(m["rest"])
        if q:
            events[q["id"]].append((m["daemon"], q["text"]))
        elif m["rest"].startswith("NOQUEUE: reject: RCPT"):
            noqueue.append(m["rest"])

    assert len(noqueue) == 1 and 'to="<bad address@>"' in noqueue[0] and "from=<alice@example.com>" in noqueue[0], noqueue

    followed = {}
    for qid, evs in events.items():
        texts = [t for _, t in evs]
        start = next((t for t in texts if t.startswith(("queued ", "refused "))), None)
        if start is None:
            continue   # a DSN Postern wrote itself: checked below through its announcement
        nrcpt = int(re.search(r"\bnrcpt=(\d+)", start)[1])
        mid = re.search(r"\bmessage-id=(\S+)", start)
        assert mid, f"{qid}: no message-id= on {start!r}"
        # Each recipient's last to= line is a final state (deferred ones came back).
        last: dict[str, tuple[str, str]] = {}
        for t in texts:
            to = TO.match(t)
            if to:
                assert re.search(r"\bdsn=[245]\.\d{1,3}\.\d{1,3}\b", to["fields"]), f"{qid}: no dsn= in {t!r}"
                last[to["rcpt"]] = (to["status"], t)
        assert len(last) == nrcpt, f"{qid}: {nrcpt} recipients, outcomes for {sorted(last)}:\n" + "\n".join(texts)
        for rcpt, (status, t) in last.items():
            assert status in FINAL, f"{qid}: <{rcpt}> ends {status}: {t}"
        if start.startswith("queued "):
            assert texts[-1].startswith("removed"), f"{qid}: last event {texts[-1]!r}"
        followed[mid[1]] = {r: s for r, (s, _) in last.items()}

    assert followed == {
        "<m1@e2e.test>": {"bob@example.org": "sent"},
        "<m2@e2e.test>": {"nobody@example.org": "bounced", "carol@example.org": "sent"},
        "<m3@e2e.test>": {"later@example.org": "sent"},
        "<m4@e2e.test>": {"dave@example.org": "refused"},
        "<m5@e2e.test>": {"erin@example.org": "discarded"},
    }, followed

    # later@ was deferred once before it was sent, with the reply's status.
    later = [t for evs in events.values() for _, t in evs if t.startswith("to=<later@example.org>")]
    assert "status=deferred" in later[0] and "dsn=4.3.0" in later[0] and "status=sent" in later[-1], later
    # Deliveries say how long each stage took: receive/scan/queue/deliver.
    sent = [t for evs in events.values() for d, t in evs if d == "senderd" and "status=sent" in t]
    assert sent and all(re.search(r"\bdelays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, ", t) for t in sent), sent
    # The DSN about nobody@ is announced by its id and followed to its delivery.
    [dsn_id] = [re.search(r"notification: (\S+)", t)[1] for evs in events.values() for _, t in evs
                if "non-delivery notification" in t]
    dsn_texts = [t for _, t in events[dsn_id]]
    assert any(t.startswith("to=<alice@example.com>") and "status=sent" in t for t in dsn_texts), dsn_texts
    assert dsn_texts[-1].startswith("removed"), dsn_texts
    # A free-text value with spaces is quoted.
    assert any(re.search(r' reason="[^"]* [^"]*"', line) for line in log), "no quoted reason= value"
