# Postern - build, run, test, package and benchmark.
#
#   make run          build deps, release build, all three daemons in the foreground
#   make test         test deps, then every test stage (Swift, e2e, units, .deb under systemd)
#   make build        debug build with tests        make release  release build
#   make deb          .deb in .build-deb/ (static Swift runtime: no toolchain on the target)
#   make install      the .deb's layout without packaging (PREFIX, DESTDIR, ...; see below)
#   make deps-build   what building and running needs      make deps-test  what the tests need
#   make bench        side-by-side benchmark against amavisd-new, ClamSMTP, Postfix
#   make bench-quick  Postern and the direct path only, one repetition, about a minute
#   make fuzz         every libFuzzer target for FUZZ_SECONDS (600) each (Fuzz/README.md)
#   make sanitizers   the Swift tests under AddressSanitizer and ThreadSanitizer

SHELL       := /bin/bash
SWIFT       ?= swift
PYTHON      ?= python3
CONFIG      ?= config/postern.conf
PEERS       ?= $(CURDIR)/../shared/bench/peers.sh
PATHS       ?= direct amavis clamsmtp postfix

# Building and running Postern: no MTA, no scanner, no package whose daemon starts.
BUILD_APT   := libsystemd-dev zlib1g-dev
# make deb: Debian's own packaging tools.
DEB_APT     := debhelper dpkg-dev
# The tests: a private Postfix, the real scanners (started by the tests themselves, never
# as services), swaks, systemd-nspawn for the .deb under a real systemd, and make deb's tools;
# Dovecot's LMTP server and Cyrus SASL's sasldb (private instances, started by the tests);
# the libraries Exim's binary needs (Exim itself conflicts with Postfix as a package: the tests
# fetch it with apt-get download and unpack it, Tests/e2e/exim.py); time(1) for the fuzz
# stage's CPU ledger; mount(8) for the fault suite's private tmpfs spool (unshare comes with
# util-linux, which is essential).
TEST_APT    := postfix swaks python3-pip clamav-daemon spamassassin spamd rspamd
TEST_APT_NORECOMMENDS := systemd-container $(DEB_APT) dovecot-core dovecot-lmtpd sasl2-bin \
               libsasl2-modules libsasl2-modules-db openssl libidn12 libgnutls-dane0 adduser time mount
PIP_PACKAGES := aiosmtpd pytest

# Installation layout (make install). The .deb uses PREFIX=/usr UNITDIR=/lib/systemd/system.
# The daemons are started by systemd only, so they live in LIBEXECDIR, like Postfix's in
# /usr/lib/postfix/sbin; SBINDIR gets a link to posternctl, the one command admins type.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
LIBEXECDIR  ?= $(PREFIX)/lib/postern
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/postern
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR  ?= /etc
DESTDIR     ?=
INSTALL     ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 0755

# Static Swift runtime build, and what `make dist` generates from it.
STATIC      := .build-static
STATIC_BIN  := $(STATIC)/release
DIST        := .build-dist
DEB_OUT     := .build-deb
PROGRAMS    := receiverd scannerd senderd posternctl
UNITS       := $(wildcard systemd/*.service systemd/*.socket systemd/*.target systemd/*.timer)
# The man pages' date: the package's (dpkg-buildpackage exports SOURCE_DATE_EPOCH from
# debian/changelog), else the last commit's.
MAN_DATE     = $(shell if [ -n "$$SOURCE_DATE_EPOCH" ]; then date -u -d "@$$SOURCE_DATE_EPOCH" +%F; \
                       else git log -1 --format=%cs 2>/dev/null || date -u +%F; fi)

.PHONY: all deps deps-build deps-deb deps-test build release run test bench bench-quick bench-clamav clean \
        static dist clean-dist install install-strip deb fuzz sanitizers

all: build

# Installs what is missing, with apt (as root); fast when everything is there. Packages
# whose daemons would start (postfix, clamav-daemon, spamd, rspamd) are installed under a
# policy-rc.d that forbids starting services, and apt must not remove anything: on a
# host with Exim, installing Postfix would remove it, so that is refused instead.
define apt_install
	@set -euo pipefail; \
	missing=(); \
	for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	        || missing+=("$$p"); \
	done; \
	if (( $${#missing[@]} )); then \
	    echo "deps: installing $${missing[*]}"; \
	    [[ $$(id -u) -eq 0 ]] || { echo "deps: need root for apt-get" >&2; exit 1; }; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    if [[ " $${missing[*]} " == *" postfix "* ]]; then \
	        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	    fi; \
	    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then apt-get update -q; fi; \
	    removed=$$(apt-get -s install $(2) "$${missing[@]}" 2>/dev/null | sed -n 's/^Remv \([^ ]*\).*/\1/p' | tr '\n' ' '); \
	    if [[ -n $$removed ]]; then \
	        echo "deps: installing $${missing[*]} would remove $$removed; install by hand if that is meant" >&2; exit 1; \
	    fi; \
	    policy=/usr/sbin/policy-rc.d; \
	    if [[ ! -e $$policy ]]; then \
	        trap "rm -f $$policy" EXIT; \
	        printf '#!/bin/sh\n# make deps: no service starts while packages install\nexit 101\n' > $$policy; \
	        chmod 755 $$policy; \
	    fi; \
	    if ! apt-get install -y -q $(2) "$${missing[@]}"; then \
	        apt-get update -q && apt-get install -y -q $(2) "$${missing[@]}"; \
	    fi; \
	fi
endef

deps-build:
	$(call apt_install,$(BUILD_APT),)
	@command -v $(SWIFT) >/dev/null || { echo "deps: $(SWIFT) not on PATH: install the Swift toolchain (swift.org, 6.1 or later)" >&2; exit 1; }
	@pkg-config --exists libsystemd 2>/dev/null || [[ -e /usr/lib/$$(uname -m)-linux-gnu/pkgconfig/libsystemd.pc ]] \
	    || { echo "deps: libsystemd.pc not found" >&2; exit 1; }

deps-deb: deps-build
	$(call apt_install,$(DEB_APT),--no-install-recommends)

deps-test: deps-build
	$(call apt_install,$(TEST_APT),)
	$(call apt_install,$(TEST_APT_NORECOMMENDS),--no-install-recommends)
	@set -euo pipefail; \
	if ! $(PYTHON) -c 'import aiosmtpd, pytest' 2>/dev/null; then \
	    echo "deps: pip install $(PIP_PACKAGES) for $$(command -v $(PYTHON))"; \
	    flags=(-q --root-user-action=ignore); \
	    if $(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then \
	        flags+=(--break-system-packages); \
	    fi; \
	    $(PYTHON) -m pip install "$${flags[@]}" $(PIP_PACKAGES); \
	fi; \
	$(PYTHON) -c 'import aiosmtpd, pytest' || { echo "deps: aiosmtpd/pytest still missing" >&2; exit 1; }; \
	for t in swaks /usr/sbin/postfix /usr/lib/postfix/sbin/master systemd-socket-activate systemd-analyze \
	         systemd-nspawn dpkg-buildpackage dh; do \
	    command -v "$$t" >/dev/null || { echo "deps: $$t not found" >&2; exit 1; }; \
	done

# Kept for old habits: everything.
deps: deps-test

build: deps-build
	$(SWIFT) build --build-tests

release: deps-build
	$(SWIFT) build -c release

run: deps-build release
	.build/release/posternctl run --config $(CONFIG)

# ---------------------------------------------------------------- static build, install, deb

# Release build with the Swift runtime and Foundation linked in: the binaries need only
# Debian's libraries (libsystemd, zlib, libstdc++, libc). generate-manual is
# swift-argument-parser's man page generator (what its generate-manual plugin runs).
static:
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC)
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC) --product generate-manual

# Everything `make install` copies that is generated: man pages (from the programs' own
# --help text, with the hand-written sections in man/ added), bash completion and the
# production postern.conf (config/postern.conf with the packaged paths, config/production.sed).
dist: static
	@set -euo pipefail; \
	rm -rf $(DIST); mkdir -p $(DIST)/man $(DIST)/completions; \
	for p in $(PROGRAMS); do \
	    $(STATIC_BIN)/generate-manual $(STATIC_BIN)/$$p --section 8 --date $(MAN_DATE) \
	        --output-directory $(DIST)/man; \
	    page=$(DIST)/man/$$p.8; test -s $$page; \
	    if [[ $$p == posternctl ]]; then \
	        sed -i -f man/generated.sed $$page; cat man/posternctl.mdoc >> $$page; \
	    else \
	        sed -i -f man/generated.sed -f man/daemon.sed $$page; cat man/daemon.mdoc >> $$page; \
	    fi; \
	done; \
	cp man/postern.conf.5 $(DIST)/man/; \
	cp -r config/templates $(DIST)/templates; \
	$(STATIC_BIN)/posternctl --generate-completion-script bash | sed '1{/^#!/d}' > $(DIST)/completions/posternctl; \
	sed -f config/production.sed config/postern.conf > $(DIST)/postern.conf; \
	if grep -n '\./var' $(DIST)/postern.conf; then echo "dist: checkout paths left in postern.conf" >&2; exit 1; fi; \
	$(STATIC_BIN)/posternctl config check --config $(DIST)/postern.conf

clean-dist:
	rm -rf $(DIST) debian/postern debian/.debhelper debian/files debian/*.substvars \
	    debian/debhelper-build-stamp debian/*.debhelper.log debian/*.debhelper

# The layout of the .deb. The units name LIBEXECDIR and SYSCONFDIR as installed. An existing
# postern.conf is never overwritten outside DESTDIR: the new one goes next to it as .dist.
install: dist
	@set -euo pipefail; \
	d='$(DESTDIR)'; \
	$(INSTALL) -d "$$d$(LIBEXECDIR)" "$$d$(SBINDIR)" "$$d$(UNITDIR)" "$$d$(SYSUSERSDIR)" \
	    "$$d$(TMPFILESDIR)" "$$d$(MANDIR)/man5" "$$d$(MANDIR)/man8" "$$d$(DOCDIR)" \
	    "$$d$(BASHCOMPDIR)" "$$d$(SYSCONFDIR)/postern"; \
	for p in $(PROGRAMS); do $(INSTALL_PROGRAM) $(STATIC_BIN)/$$p "$$d$(LIBEXECDIR)/$$p"; done; \
	ln -sfn "$$(realpath -m --relative-to='$(SBINDIR)' '$(LIBEXECDIR)/posternctl')" "$$d$(SBINDIR)/posternctl"; \
	for u in $(UNITS); do \
	    sed -e 's|/usr/lib/postern/|$(LIBEXECDIR)/|g' -e 's|/etc/postern/|$(SYSCONFDIR)/postern/|g' "$$u" \
	        > "$$d$(UNITDIR)/$${u#systemd/}"; \
	    chmod 0644 "$$d$(UNITDIR)/$${u#systemd/}"; \
	done; \
	$(INSTALL) -m 0644 systemd/postern-sysusers.conf "$$d$(SYSUSERSDIR)/postern.conf"; \
	$(INSTALL) -m 0644 systemd/postern-tmpfiles.conf "$$d$(TMPFILESDIR)/postern.conf"; \
	$(INSTALL) -m 0644 $(DIST)/man/*.8 "$$d$(MANDIR)/man8/"; \
	$(INSTALL) -m 0644 $(DIST)/man/*.5 "$$d$(MANDIR)/man5/"; \
	$(INSTALL) -m 0644 $(DIST)/completions/posternctl "$$d$(BASHCOMPDIR)/posternctl"; \
	$(INSTALL) -m 0644 README.md docs/*.md "$$d$(DOCDIR)/"; \
	$(INSTALL) -d "$$d$(SYSCONFDIR)/postern/templates"; \
	for t in $(DIST)/templates/*.txt; do \
	    dest="$$d$(SYSCONFDIR)/postern/templates/$${t##*/}"; \
	    if [[ -z $$d && -e $$dest ]] && ! cmp -s "$$t" "$$dest"; then \
	        $(INSTALL) -m 0644 "$$t" "$$dest.dist"; echo "install: kept $$dest; the new one is $$dest.dist"; \
	    else \
	        $(INSTALL) -m 0644 "$$t" "$$dest"; \
	    fi; \
	done; \
	conf="$$d$(SYSCONFDIR)/postern/postern.conf"; \
	if [[ -z $$d && -e $$conf ]] && ! cmp -s $(DIST)/postern.conf "$$conf"; then \
	    $(INSTALL) -m 0644 $(DIST)/postern.conf "$$conf.dist"; echo "install: kept $$conf; the new one is $$conf.dist"; \
	else \
	    $(INSTALL) -m 0644 $(DIST)/postern.conf "$$conf"; \
	fi; \
	if [[ -z $$d ]]; then \
	    echo "install: now run: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload;" \
	         "systemctl enable --now postern.target"; \
	fi

install-strip:
	$(MAKE) install INSTALL_PROGRAM='$(INSTALL) -m 0755 -s'

# dpkg-buildpackage with debhelper (debian/rules runs `make dist` and `make install`);
# the package, .buildinfo and .changes go to .build-deb/.
deb: deps-deb
	@set -euo pipefail; \
	rm -rf $(DEB_OUT); mkdir -p $(DEB_OUT); out=$$(realpath $(DEB_OUT)); \
	version=$$(dpkg-parsechangelog -S Version); arch=$$(dpkg-architecture -qDEB_HOST_ARCH); \
	POSTERN_DEB_DIR=$$out dpkg-buildpackage -us -uc -b \
	    --buildinfo-option=-u$$out --changes-option=-u$$out \
	    --buildinfo-file=$$out/postern_$${version}_$$arch.buildinfo \
	    --changes-file=$$out/postern_$${version}_$$arch.changes; \
	ls -l $$out/*.deb

# ---------------------------------------------------------------- tests

# Every stage runs even when an earlier one fails; the exit status is non-zero if any
# failed, and a summary says which (and how long each took). Each stage's output is also
# kept in $(TEST_LOGS)/STAGE.log; the end of a failed stage's log is printed again just
# before the summary, so that the tail of the whole run (all a CI page may show) says what
# failed. Each stage has a time limit (coreutils timeout), so that one that hangs fails
# alone instead of holding the run past CI's own limit.
TEST_LOGS ?= .build/test-logs
test: deps-test
	@set -uo pipefail; failed=(); times=(); rm -rf $(TEST_LOGS); mkdir -p $(TEST_LOGS); \
	stage() { local name=$$1 limit=$$2; shift 2; echo "==> $$name (at most $$limit): $$*"; local t0=$$SECONDS; \
	    if timeout --kill-after=30s $$limit "$$@" 2>&1 | tee $(TEST_LOGS)/$$name.log; then echo "==> $$name: ok"; \
	    else echo "==> $$name: FAILED (exit $${PIPESTATUS[0]}; 124: over its $$limit)"; failed+=("$$name"); fi; \
	    times+=("$$name $$((SECONDS - t0))s"); }; \
	stage build 30m $(SWIFT) build --build-tests; \
	stage swift-test 10m $(SWIFT) test --skip-build; \
	stage e2e 40m env POSTERN_BIN="$${POSTERN_BIN:-$(CURDIR)/.build/debug}" $(PYTHON) -m pytest -v Tests/e2e \
	    --ignore=Tests/e2e/test_deb_systemd.py --durations=15; \
	stage units 5m tools/verify-units.sh; \
	stage deb 20m $(MAKE) --no-print-directory deb; \
	stage deb-systemd 15m env POSTERN_DEB_DIR=$(CURDIR)/$(DEB_OUT) $(PYTHON) -m pytest -v Tests/e2e/test_deb_systemd.py; \
	stage fuzz-quick 15m tools/fuzz.sh --quick; \
	stage sanitizers 25m tools/sanitizers.sh; \
	for f in "$${failed[@]}"; do echo "==> $$f: the end of $(TEST_LOGS)/$$f.log:"; \
	    grep -v -E '^(✔|\[[0-9]+/[0-9]+\]|Compiling|Building|Write )' $(TEST_LOGS)/$$f.log | tail -n 25; done; \
	echo "make test: stage times: $${times[*]}"; \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: all stages passed"

bench: deps-test release
	FILTER_CMD='$(CURDIR)/tools/bench-filter.sh' FILTER_NAME=postern PATHS='$(PATHS)' \
	    bash '$(PEERS)'

# While working: Postern against the direct path only, one repetition of each scenario
# with fewer messages (one recipient). POSTERN_BIN= measures another build.
bench-quick: deps-test release
	FILTER_CMD='$(CURDIR)/tools/bench-filter.sh' FILTER_NAME=postern PATHS=direct \
	    REPS=1 RCPTS=1 MSGS_SMALL=500 MSGS_LARGE=50 WARMUP=5 LAT_MSGS=50 bash '$(PEERS)'

# Postern scanning every message with ClamAV before the queue, on the same
# clamd as ClamSMTP.
bench-clamav: deps-test release
	FILTER_CMD='$(CURDIR)/tools/bench-filter.sh' POSTERN_CLAMD=peers FILTER_NAME=postern-clamav \
	    PATHS='direct clamsmtp' bash '$(PEERS)'

# FUZZ_SECONDS per target, FUZZ_JOBS at a time (default: every core), at nice FUZZ_NICE (10);
# findings in .build-fuzz/findings/. `tools/fuzz.sh --quick` is the short stage for CI.
fuzz:
	tools/fuzz.sh

# The Swift tests built and run with -sanitize=address, then -sanitize=thread (own build dirs).
sanitizers:
	tools/sanitizers.sh

clean: clean-dist
	rm -rf .build $(STATIC) $(DEB_OUT)
