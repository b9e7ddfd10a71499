"""SMTP client inside the test container, standing in for the MTA: sends --count messages
to Postern on 127.0.0.1:--port, one connection each, Subject and body carrying a tag
(PREFIX-N), and --body-lines more lines in each body. Prints one line per attempt, flushed: `ACCEPTED TAG QUEUE-ID` after a 250, or
`FAILED TAG REASON`. With --retry-for, a message that was not accepted is tried again (as
an MTA would) until that many seconds have passed. --ehlo prints the EHLO keywords instead.
The first line is `PID N`, so that a test can stop it."""

import argparse
import os
import smtplib
import sys
import time


def body_lines(n: int) -> str:
    """`n` more lines of 78 octets (none starts with a dot): a large message."""
    return "".join(f"{i:07d}" + "L" * 69 + "\r\n" for i in range(n))


def send(port: int, tag: str, rcpt: str, lines: int = 0) -> str:
    msg = (f"From: <alice@example.com>\r\nTo: <{rcpt}>\r\nSubject: {tag}\r\n"
           f"Message-ID: <{tag}@client.test>\r\n\r\nbody of {tag}\r\n") + body_lines(lines)
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
        s.ehlo()
        s.mail("alice@example.com")
        code, reply = s.rcpt(rcpt)
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        code, reply = s.data(msg.encode())
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        return reply.decode(errors="replace").rsplit(" ", 1)[-1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=10024)
    p.add_argument("--prefix", default="msg")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rcpt", default="bob@example.org")
    p.add_argument("--retry-for", type=float, default=0)
    p.add_argument("--pause", type=float, default=0, help="seconds between messages")
    p.add_argument("--body-lines", type=int, default=0, help="lines of 78 octets added to each body")
    p.add_argument("--ehlo", action="store_true")
    a = p.parse_args()
    print(f"PID {os.getpid()}", flush=True)
    if a.ehlo:
        with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            for k, v in s.esmtp_features.items():
                print(f"{k.upper()} {v}".strip(), flush=True)
        return
    for i in range(a.count):
        tag = f"{a.prefix}-{i}"
        deadline = time.monotonic() + a.retry_for
        while True:
            try:
                print(f"ACCEPTED {tag} {send(a.port, tag, a.rcpt, a.body_lines)}", flush=True)
                break
            except (OSError, smtplib.SMTPException) as e:
                print(f"FAILED {tag} {type(e).__name__}: {e}".replace("\n", " "), flush=True)
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        if a.pause:
            time.sleep(a.pause)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
