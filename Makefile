# The two entry points the README documents.  Both prepare the machine first
# (scripts/setup: apt packages, deb-src, .venv), so each works on a fresh
# Debian machine (12 or later) as root or with sudo.
PROFILES ?= x86-64-v2,x86-64-v3,x86-64-v4
OUT ?= out/example
PYTEST_ARGS ?=
# benchmarks/<name>.py to run, in this order (see benchmarks/README.md); the
# first two read this machine's libraries (seconds), variants and build_cost
# build real packages (variants caches its builds; build_cost takes an hour or more)
BENCH ?= isa_audit scan_system variants build_cost
BENCH_ARGS ?=

.PHONY: setup example test lint bench man deb

setup:
	./scripts/setup

example: setup
	.venv/bin/hwcapdeb build examples/vecmath --profile $(PROFILES) --out $(OUT)
	.venv/bin/hwcapdeb verify --matrix $(OUT)/*.changes

test: setup
	.venv/bin/ruff check hwcapdeb tests benchmarks
	.venv/bin/mypy
	.venv/bin/pytest $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check hwcapdeb tests benchmarks
	.venv/bin/mypy

# the manual pages, written from the click definitions (never committed)
man: setup
	.venv/bin/python -m hwcapdeb.manpages out/man

bench: setup
	set -e; for b in $(BENCH); do \
	  echo "+ benchmarks/$$b.py $(BENCH_ARGS)"; .venv/bin/python benchmarks/$$b.py $(BENCH_ARGS); \
	done

# The project's own .debs (dh-hwcaps: the debhelper addon dh-sequence-hwcaps),
# built with dpkg-buildpackage into out/deb/, lintian-checked.
deb:
	./scripts/build-deb out/deb
