# Postern - build, run, test and benchmark.
#
#   make deps      install what builds and tests need (Debian 12, as root)
#   make build     debug build with tests        make release  release build
#   make run       all three daemons in the foreground (posternctl run)
#   make test      Swift tests + e2e tests (Postfix, swaks) + unit file checks
#   make bench     side-by-side benchmark against amavisd-new, ClamSMTP, Postfix
#   make fuzz      every libFuzzer target for FUZZ_SECONDS (600) each (Fuzz/README.md)
#   make sanitizers  the unit tests under AddressSanitizer and ThreadSanitizer

SHELL       := /bin/bash
SWIFT       ?= swift
PYTHON      ?= python3
CONFIG      ?= config/postern.conf
PEERS       ?= $(CURDIR)/../shared/bench/peers.sh
PATHS       ?= direct amavis clamsmtp postfix
APT_PACKAGES := libsystemd-dev zlib1g-dev postfix swaks python3-pip clamav-daemon spamassassin spamd rspamd
PIP_PACKAGES := aiosmtpd pytest

.PHONY: all deps build release run test bench bench-clamav fuzz sanitizers clean

all: build

# Fast when everything is there: dpkg-query and one python import, no apt.
deps:
	@set -euo pipefail; \
	missing=(); \
	for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	        || missing+=("$$p"); \
	done; \
	if (( $${#missing[@]} )); then \
	    echo "deps: installing $${missing[*]}"; \
	    [[ $$(id -u) -eq 0 ]] || { echo "deps: need root for apt-get" >&2; exit 1; }; \
	    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then apt-get update -q; fi; \
	    if ! apt-get install -y -q "$${missing[@]}"; then \
	        apt-get update -q && apt-get install -y -q "$${missing[@]}"; \
	    fi; \
	fi; \
	if ! $(PYTHON) -c 'import aiosmtpd, pytest' 2>/dev/null; then \
	    echo "deps: pip install $(PIP_PACKAGES) for $$(command -v $(PYTHON))"; \
	    flags=(-q --root-user-action=ignore); \
	    if $(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then \
	        flags+=(--break-system-packages); \
	    fi; \
	    $(PYTHON) -m pip install "$${flags[@]}" $(PIP_PACKAGES); \
	fi; \
	$(PYTHON) -c 'import aiosmtpd, pytest' || { echo "deps: aiosmtpd/pytest still missing" >&2; exit 1; }; \
	for t in swaks /usr/sbin/postfix /usr/lib/postfix/sbin/master systemd-socket-activate systemd-analyze; do \
	    command -v "$$t" >/dev/null || { echo "deps: $$t not found" >&2; exit 1; }; \
	done; \
	pkg-config --exists libsystemd || { echo "deps: libsystemd.pc not found" >&2; exit 1; }

build:
	$(SWIFT) build --build-tests

release:
	$(SWIFT) build -c release

run: deps release
	.build/release/posternctl run --config $(CONFIG)

# Every stage runs even when an earlier one fails; the exit status is
# non-zero if any failed, and a summary says which.
test: deps
	@set -uo pipefail; failed=(); \
	stage() { local name=$$1; shift; echo "==> $$name: $$*"; \
	    if "$$@"; then echo "==> $$name: ok"; else echo "==> $$name: FAILED"; failed+=("$$name"); fi; }; \
	stage build $(SWIFT) build --build-tests; \
	stage swift-test $(SWIFT) test --skip-build; \
	stage e2e env POSTERN_BIN="$${POSTERN_BIN:-$(CURDIR)/.build/debug}" $(PYTHON) -m pytest -v Tests/e2e; \
	stage units tools/verify-units.sh; \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: all stages passed"

bench: deps release
	FILTER_CMD='$(CURDIR)/tools/bench-filter.sh' FILTER_NAME=postern PATHS='$(PATHS)' \
	    bash '$(PEERS)'

# Postern scanning every message with ClamAV before the queue, on the same
# clamd as ClamSMTP.
bench-clamav: deps release
	FILTER_CMD='$(CURDIR)/tools/bench-filter.sh' POSTERN_CLAMD=peers FILTER_NAME=postern-clamav \
	    PATHS='direct clamsmtp' bash '$(PEERS)'

# FUZZ_SECONDS per target, FUZZ_JOBS at a time (default: every core), at nice FUZZ_NICE (10);
# findings in .build-fuzz/findings/. `tools/fuzz.sh --quick` is the short stage for CI.
fuzz:
	tools/fuzz.sh

# The unit tests built and run with -sanitize=address, then -sanitize=thread (own build dirs).
sanitizers:
	tools/sanitizers.sh

clean:
	rm -rf .build
