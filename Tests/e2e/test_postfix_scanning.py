"""Postfix -> Postern (scanning before the queue) -> Postfix, with real clamd
and spamd: an infected message is refused with 550 and Postfix bounces it to
its sender; GTUBE is refused or tagged as configured; a clean message arrives.

    swaks --SMTP--> Postfix :A --content_filter--> Postern :F (ClamAV, SpamAssassin)
        --inet:B@CLIENT-IP--> Postfix :B --relayhost--> sink
"""

from __future__ import annotations

import email

from conftest import free_port, postern_binary
from scanners import EICAR, EICAR_SIGNATURE, GTUBE
from test_postfix_roundtrip import SENDER, make_message, swaks


def test_postfix_bounces_a_virus_tags_spam_and_delivers_clean_mail(sink, postfix, postern, clamd, spamd, tmp_path):
    postern_binary("posternctl")
    filter_port = free_port()
    pf = postfix(filter_port)
    postern(receiver_port=filter_port, sender_port=pf.return_port, callback_port=pf.return_port, settings={
        "Scanner": {"BeforeQueueFilters": "ClamAV, SpamAssassin"},
        "ClamAV": {"Address": clamd.address},
        "SpamAssassin": {"Address": spamd.address, "UnconditionalSpamThreshold": "10", "Timeout": "30s"}},
        rules_first='to:spamlover@example.net cont spamassassin/UnconditionalSpamActions = "pass, add-header(X-Spam-Kept: yes)"')

    infected = make_message("invoice", ["bob@example.net"],
                            b"Please find the file below.\r\n\r\n" + EICAR + b"\r\n")
    swaks(tmp_path, pf.port, ["bob@example.net"], infected)
    bounced = pf.wait_log(r"to=<bob@example\.net>.*status=bounced \(.*550 5\.7\.1 Message rejected: clamav: infected: "
                          + EICAR_SIGNATURE, timeout=60)
    assert bounced
    # Postfix tells the sender; the bounce goes out through the sink (its relayhost).
    [bounce] = [m for m in sink.wait_for(1, timeout=60) if m.rcpt_tos == [SENDER]]
    assert bounce.mail_from in ("", "<>")
    report = email.message_from_bytes(bounce.data)
    assert report.get_content_type() == "multipart/report"
    assert "5.7.1" in bounce.data.decode(errors="replace")

    spam = make_message("cheap", ["carol@example.net"], b"Buy now.\r\n" + GTUBE + b"\r\n")
    swaks(tmp_path, pf.port, ["carol@example.net"], spam)
    pf.wait_log(r"to=<carol@example\.net>.*status=bounced \(.*550 5\.7\.1 Message rejected: spamassassin: ", timeout=60)

    swaks(tmp_path, pf.port, ["spamlover@example.net"], spam)
    clean = make_message("lunch", ["dave@example.net"], b"Lunch at noon?\r\n")
    swaks(tmp_path, pf.port, ["dave@example.net"], clean)
    arrived = {m.rcpt_tos[0]: m for m in sink.wait_for(4, timeout=60)}
    kept = arrived["spamlover@example.net"]
    assert b"\r\nX-Spam-Flag: YES\r\n" in kept.data and b"\r\nX-Spam-Kept: yes\r\n" in kept.data
    assert b"Lunch at noon?" in arrived["dave@example.net"].data
    assert b"X-Spam-Status: No, score=" in arrived["dave@example.net"].data
    assert "bob@example.net" not in arrived and "carol@example.net" not in arrived
    assert len(sink.settle(1.5)) == 4, "something was delivered twice or a refused message got through"
