# config/postern.conf (the sample, run from a checkout) -> /etc/postern/postern.conf (make dist).
# Only the paths change: the spool and the sockets move to where the systemd units and
# tmpfiles.d expect them. Tests/e2e/test_packaging.py checks that nothing else differs.
/^; This sample runs from a checkout/,/^; instead (config\/production.sed)/c\
; Installed as /etc/postern/postern.conf, from the repository's config/postern.conf\
; (the documented sample) with the packaged paths: spool in /var/spool/postern, sockets in\
; /run/postern, as the systemd units and tmpfiles.d expect. See postern.conf(5).
s|\./var/spool|/var/spool/postern|g
s|\./var/run|/run/postern|g
