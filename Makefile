# The two entry points the README documents.  Both prepare the machine first
# (scripts/setup: apt packages, deb-src, .venv), so each works on a fresh
# Debian 12 machine as root or with sudo.
PROFILES ?= x86-64-v2,x86-64-v3,x86-64-v4
OUT ?= out/example
PYTEST_ARGS ?=

.PHONY: setup example test lint bench deb

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

# The project's own .debs (dh-hwcaps: the debhelper addon dh-sequence-hwcaps),
# built with dpkg-buildpackage into out/deb/, lintian-checked.
deb:
	./scripts/build-deb out/deb
