#!/usr/bin/env python3
"""Writes the seed corpus Fuzz/Corpus/<target>/ from the repository's own fixtures (SMTP
transcripts, the sample configuration, docs/rules.md) and hand-written samples of what peers
send. Run from anywhere; it rewrites only the files it names (seeds libFuzzer added with -merge
or by hand stay). Deterministic: the same script writes the same files."""
import base64, io, json, os, re, struct, zipfile, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
FIXED_TIME = (2026, 12, 1, 12, 0, 0)


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


# --- SMTP: the golden transcripts of Tests/e2e, as a client sends them (CRLF) -----------------
tdir = os.path.join(ROOT, "Tests", "e2e", "transcripts")
for name in sorted(os.listdir(tdir)):
    if name.endswith(".in"):
        put("smtp-command", name[:-3], crlf(read(os.path.join("Tests/e2e/transcripts", name)).decode()))
        put("line-framer", name[:-3], crlf(read(os.path.join("Tests/e2e/transcripts", name)).decode()))
    elif name.endswith(".ref"):
        put("reply-decoder", "postern-" + name[:-4], crlf(read(os.path.join("Tests/e2e/transcripts", name)).decode()))

put("smtp-command", "params-dsn-utf8", crlf(
    "EHLO [192.0.2.1]\nMAIL FROM:<\"john doe\"@example.org> SIZE=12345 BODY=8BITMIME RET=HDRS ENVID=QQ+2B314 SMTPUTF8\n"
    "RCPT TO:<@relay.example,@b.example:jörg@exämple.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;j+F6rg@ex+C3+A4mple.org\n"
    "RCPT TO:<Postmaster>\nRCPT TO:<\"a\\\"b>c\"@example.net>\nMAIL FROM:<>\nLHLO x\nBDAT 0 LAST\nBDAT +12\n"
    "XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP HELO=spike.porcupine.org SOURCE=REMOTE PORT=4711 IDENT=[UNAVAILABLE]\n"))
put("line-framer", "mixed-endings", b"EHLO a\r\nNOOP\nRSET\r\r\n" + b"X" * 40 + b"\r\nQUIT\r\n\r\n")

# --- DATA: message bodies as they cross the wire ---------------------------------------------
put("data-decoder", "stuffed", crlf("Subject: dots\n\n..leading dot\n.\n"))
put("data-decoder", "smuggling-lf-dot-lf", b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n")
put("data-decoder", "smuggling-cr-dot-cr", b"Subject: x\r\n\r\nbody\r.\rRCPT TO:<x@example.org>\r\n.\r\n")
put("data-decoder", "no-final-crlf", b"Subject: x\r\n\r\nlast line without end")
put("data-decoder", "dot-bare-cr", b".\rx\r\n..\r\n.\r\n")
put("data-decoder", "empty", b".\r\n")

# --- replies from next hops: Postfix, Exim, Dovecot LMTP, Sendmail ----------------------------
put("reply-decoder", "postfix-ehlo", crlf(
    "220 mx.example.org ESMTP Postfix (Debian/GNU)\n250-mx.example.org\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n"
    "250-ETRN\n250-STARTTLS\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING\n"
    "250 2.1.0 Ok\n250 2.1.5 Ok\n354 End data with <CR><LF>.<CR><LF>\n250 2.0.0 Ok: queued as 4Q7k2S0Xyz\n221 2.0.0 Bye\n"))
put("reply-decoder", "postfix-refusals", crlf(
    "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table\n"
    "452 4.5.3 Error: too many recipients\n554 5.7.1 <x@example.net>: Relay access denied\n"
    "421 4.4.2 mx.example.org Error: timeout exceeded\n"))
put("reply-decoder", "exim", crlf(
    "220 mail.example.com ESMTP Exim 4.96 Mon, 01 Dec 2026 12:00:00 +0000\n250-mail.example.com Hello client [192.0.2.1]\n"
    "250-SIZE 52428800\n250-8BITMIME\n250-PIPELINING\n250-PIPE_CONNECT\n250-CHUNKING\n250-PRDR\n250 HELP\n250 OK\n"
    "250 Accepted\n354 Enter message, ending with \".\" on a line by itself\n250 OK id=1tAbCd-000123-Xy\n"
    "550-Verification failed for <a@example.org>\n550-Unrouteable address\n550 Sender verify failed\n"))
put("reply-decoder", "dovecot-lmtp", crlf(
    "220 imap.example.org Dovecot ready.\n250-imap.example.org\n250-8BITMIME\n250-CHUNKING\n250-ENHANCEDSTATUSCODES\n"
    "250-PIPELINING\n250 SMTPUTF8\n250 2.1.0 OK\n250 2.1.5 OK\n550 5.1.1 <nouser@example.org> User doesn't exist: nouser@example.org\n"
    "452 4.2.2 <full@example.org> Quota exceeded (mailbox for user is full)\n354 OK\n"
    "250 2.0.0 <b@example.org> Xh5cBjK2amVfHwAAJ3F4Ew Saved\n"))
put("reply-decoder", "sendmail-bare-lf", b"220 host ESMTP Sendmail 8.17.1\n250-host Hello\n250 HELP\n")

# --- MIME ------------------------------------------------------------------------------------
MIME_NESTED = crlf("""From: a@example.org
To: b@example.org
Subject: =?UTF-8?B?w6l0w6k=?= =?ISO-8859-1?Q?caf=E9_cr=E8me?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe, a soft=
 break and a long line=3D
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+R3LDvMOfZTwvcD4=
--inner--
--outer
Content-Type: application/octet-stream;
 name*0*=UTF-8''%E2%82%AC%20invoice;
 name*1=".pdf.exe"
Content-Disposition: attachment; filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="; filename*=iso-8859-1'en'r%E9sum%E9.exe
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=
--outer
Content-Type: message/rfc822

Subject: forwarded
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

caf\xe9 inside
--outer--
epilogue
""")
put("mime", "nested", MIME_NESTED)
put("mime", "digest", crlf("""Content-Type: multipart/digest; boundary=d

--d

Subject: one

first
--d
Content-Type: message/rfc822

Subject: two
Content-Type: application/zip; name=x.zip
Content-Transfer-Encoding: base64

UEsDBAoAAAAAAA==
--d--
"""))
put("mime", "encoded-rfc822", crlf("""Content-Type: multipart/mixed; boundary=b

--b
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

""") + base64.encodebytes(crlf("Content-Type: text/plain; name=run.js\n\nhi\n").encode()).decode().replace("\n", "\r\n") + "--b--\r\n")
put("mime", "missing-blank-line", crlf("Content-Type: multipart/mixed; boundary=x\nContent-Type: multipart/mixed; boundary=y\n--x\nno blank line here\n--y\nContent-Type: text/plain; name=a.scr\n--x--\n"))
put("mime", "lf-only", MIME_NESTED.replace("\r\n", "\n"))

put("mime-header", "rfc2231", b"attachment; filename*0*=UTF-8''%E2%82%AC; filename*1=\"rate.exe\"; filename=\"plain.txt\"")
put("mime-header", "rfc2047", b"application/pdf; name=\"=?UTF-8?B?w6l0w6kgMjAyNi5wZGY=?= =?UTF-8?Q?_x=2Eexe?=\"")
put("mime-header", "comments", b"multipart/mixed (a (nested) comment); boundary = \"----=_Part_12_3456.789\" ; charset=\"us-ascii\\\"\"")
put("mime-header", "latin1", b"inline; filename*=iso-8859-1'fr'r%E9sum%E9.pdf; size=1234; creation-date=\"Mon, 1 Dec 2026 12:00:00 +0000\"")

put("transfer-encoding", "text-utf8", "Grüße aus Köln — a line that is long enough to need a soft break in quoted-printable output\r\n.\r\n-- \r\nsig  \r\n")
put("transfer-encoding", "binary", bytes(range(256)))
put("transfer-encoding", "qp-input", b"=C3=A9t=C3=A9 soft=\r\nbreak =3D=\r\n  trailing   \r\nbad =ZZ escape=\n")
put("transfer-encoding", "b64-input", b"TWFu\r\nTWE=TQ==\r\n!!junk!!SGVsbG8=\r\n")

put("eight-bit", "latin1-text", crlf("Subject: plain\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9 cr\xe8me\n--not a delimiter\n").encode("latin-1"))
put("eight-bit", "multipart", MIME_NESTED.encode("utf-8", "surrogateescape"))
put("eight-bit", "global", crlf("Content-Type: multipart/mixed; boundary=g\n\n--g\nContent-Type: message/global\n\nSubject: =?UTF-8?Q?x?=\nFrom: jörg@exämple.org\n\nbody ü\n--g--\n"))
put("eight-bit", "signed", crlf("Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n\n--s\nContent-Type: text/plain\n\nsigned ü\n--s\nContent-Type: application/pgp-signature\n\nsig\n--s--\n"))
put("eight-bit", "binary-part", b"Content-Type: multipart/mixed; boundary=q\r\nContent-Transfer-Encoding: binary\r\n\r\n--q\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n\x89PNG\r\n\x1a\n\x00\x00\r\n--q--\r\n")

put("message-header", "guards", crlf(
    "Received: from mx.example.org (mx.example.org [192.0.2.1])\n\tby filter.example.org (Postern) with ESMTP id 0123456789ABCDEFGHJK\n"
    "X-Postern-Guard: v=1; h=filter.example.org; id=0123456789ABCDEFGHJK; mac=00112233445566778899aabbccddeeff\n"
    "Received: by localhost\nSubject: hello\n\nbody\n"))
put("message-header", "folded", b"Subject: =?UTF-8?B?w6l0w6k=?=\r\n =?UTF-8?Q?x?=\r\nX-Empty:\r\nno colon line\r\n\r\n")

# --- zips ------------------------------------------------------------------------------------
def zipped(members, compression=zipfile.ZIP_DEFLATED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = compression
            z.writestr(info, data)
    return out.getvalue()

plain = zipped([("readme.txt", b"read me\n" * 20), ("docs/", b""), ("invoice.pdf.exe", b"MZ\x90\x00")])
inner = zipped([("evil.exe", b"MZ" + b"\x90" * 200)])
nested = zipped([("inner.zip", zipped([("deep.zip", inner)]))], zipfile.ZIP_STORED)
bomb = zipped([("zeros.bin", b"\x00" * (2 << 20))])
put("zip", "plain", plain)
put("zip", "nested", nested)
put("zip", "bomb", bomb)
put("zip", "prepended-sfx", b"MZ stub of a self-extractor\x00" * 4 + plain)
put("zip", "stored-utf8", zipped([("r\u00e9sum\u00e9.scr", b"x")], zipfile.ZIP_STORED))
# ZIP64 end records (zipfile writes them when asked to)
z64 = io.BytesIO()
with zipfile.ZipFile(z64, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open(zipfile.ZipInfo("big.txt", FIXED_TIME), "w", force_zip64=True) as f:
        f.write(b"zip64 member\n")
put("zip", "zip64", z64.getvalue())
put("mime", "zip-attached", crlf("Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: application/octet-stream; name=\"docs.zip\"\nContent-Transfer-Encoding: base64\n\n")
    + base64.encodebytes(nested).decode().replace("\n", "\r\n") + "--z--\r\n")

def raw_deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()

put("inflate", "text", raw_deflate(b"The quick brown fox jumps over the lazy dog.\n" * 30))
put("inflate", "zeros-bomb", raw_deflate(b"\x00" * (2 << 20), 9))
put("inflate", "stored-block", raw_deflate(os.urandom(0) + bytes(range(256)) * 3, 0))
put("inflate", "truncated", raw_deflate(b"abc" * 1000)[:-5])

# --- scanners --------------------------------------------------------------------------------
put("clamd-reply", "ok", b"stream: OK\x00")
put("clamd-reply", "found", b"stream: Eicar-Signature FOUND\x00")
put("clamd-reply", "found-md5", b"stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\x00")
put("clamd-reply", "error", b"INSTREAM size limit exceeded. ERROR\x00")
put("spamd-reply", "spam", crlf("SPAMD/1.1 0 EX_OK\nContent-length: 42\nSpam: True ; 1000.0 / 5.0\n\nGTUBE,NO_RECEIVED,NO_RELAYS,MISSING_DATE\n"))
put("spamd-reply", "ham", b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n")
put("spamd-reply", "error", b"SPAMD/1.0 76 Bad header line: (Content-Length mismatch: Expected 10 bytes, got 5 bytes)\r\n")
body = json.dumps({"is_skipped": False, "score": 15.0, "required_score": 15.0, "action": "reject",
                   "symbols": {"GTUBE": {"name": "GTUBE", "score": 0.0, "metric_score": 0.0,
                                          "description": "Generic Test for Unsolicited Bulk Email"}},
                   "messages": {"smtp_message": "Gtube pattern"}, "message-id": "x@y", "time_real": 0.01}).encode()
put("rspamd-reply", "gtube-content-length", b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\nDate: Mon, 01 Dec 2026 12:00:00 GMT\r\n"
    b"Content-Length: " + str(len(body)).encode() + b"\r\nContent-Type: application/json\r\n\r\n" + body)
put("rspamd-reply", "chunked", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n" % 10 + body[:10] + b"\r\n" + b"%x;ext=1\r\n" % (len(body) - 10) + body[10:] + b"\r\n0\r\nTrailer: x\r\n\r\n")
put("rspamd-reply", "error-eof", b"HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":\"invalid command\",\"error_domain\":\"protocol-error\"}")
put("rspamd-reply", "json-only", b"{\"score\": -1.5e2, \"required_score\": 7, \"symbols\": {\"R_SPF_ALLOW\": {}, \"DMARC_POLICY_ALLOW\": {\"options\": [\"a\"]}}}")

# --- configuration and rules -------------------------------------------------------------------
put("config", "postern.conf", read("config/postern.conf"))
put("config", "dialect", crlf("""; comment
# another
[General]
Hostname = filter.example.org   ; trailing comment
SpoolDir = "/var/spool/postern with space"
[Receiver]
Address = inet:10024@127.0.0.1, inet:10024@[::1], lmtp:local:/run/postern/lmtp
ProtectedNetworks = 127.0.0.0/8,::1/128
ProtectedNetworks = 192.0.2.0/24
MaxMessageSize = 10m
Timeout = 1h30m
[Sender]
RetryIntervals = 5m, 30m, 2h, 1d
[Rule:spam]
spamassassin/SpamActions = "reject, notify, add-header(X-Spam: yes)"
[Rules]
from:"" || from:root@localhost stop
!(from:@example.com && client-ip:10.0.0.0/8) \\
  cont SenderAddress = inet:10025@CLIENT-IP, rule=spam
[HeadersFilter]
Rule = reject Subject ^\\[SPAM\\]
"""))
put("config", "errors", b"[General\nKey\n= value\n[Receiver]\nMaxMessageSize = 10q\nAddress = \"unterminated\n[Rules]\nfrom:a && cont\n\xff\xfe[x]\n")

rules_md = read("docs/rules.md").decode()
blocks = re.findall(r"```\n(.*?)```", rules_md, re.S)
rule_lines = []
for block in blocks:
    if "RULE      :=" in block:
        continue
    rule_lines.append(block)
put("rules", "docs-rules-md", "\n\n".join(rule_lines))
put("rules", "seed-case", '!(from:"" || from:"root@localhost") cont SenderAddress = inet:10025@CLIENT-IP\n')
put("rules", "terms", crlf("""size:>10m && score:>=5.5 || client-port:!=25 cont ScanTimeout = 30s
header:X-Spam-Flag:regex:^y(es)?$ && !block:Eicar-Test-Signature stop clamav/InfectedActions = "discard, quarantine, redirect(a@x|b@y)"
protocol:lmtp && xforward-addr:cidr:"10.0.0.0/8, 2001:db8::/32" && helo:value:@x cont BeforeQueueFilters = "ClamAV, Rspamd", rule=grp
any:@example.org || to:file:lists/vip.txt || from:rfile:"re.txt" stop ReturnReject = no
[Rule:grp]
ProcessingErrors = tempfail, score(5), add-header(X-Error:boom)
"""))

# --- value grammars --------------------------------------------------------------------------
put("value-syntax", "values", "\n".join([
    "10m", "400k", "1g", "9223372036854775807", "30s", "5m", "1h30m", "1500ms", "2w3d", "999999999999w", "yes", "Off",
    "inet:10025@CLIENT-IP", "lmtp:inet:24@[2001:db8::1]", "local:/run/dovecot/lmtp", "unix:/x", "smtp:inet:25@mx.example.org",
    "192.0.2.7", "::ffff:192.0.2.7", "[2001:db8::1]", "fe80::1%eth0", "10.0.0.0/8", "::ffff:0:0/96", "10.1.2.3/8",
    "reject, quarantine, notify", "continue, score(-2.5), add-header(X-Postern: checked), redirect(a@example.org|b@example.org)",
    "rfc822;j+F6rg@ex+C3+A4mple.org", "2.1.5", "5.7.1 Relay access denied", "4.04.004",
    "SCAN 0123456789ABCDEFGHJK", "PRESCAN 0123456789ABCDEFGHJK", "UNSCANNED 0123456789ABCDEFGHJK internal error",
    "DELIVER 0123456789ABCDEFGHJK", "FLUSH"]) + "\n")
