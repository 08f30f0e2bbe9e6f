# The two commands: `make demo` runs the product locally end to end, `make test` runs the
# whole test suite. Both install what they need into project-local virtual environments.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_DEPLOY := .venv-deploy
# Lambda architecture for `make build`: arm64 (default, as deployed) or x86_64.
ARCH ?= arm64
# The event `make invoke` sends (its timestamps are refreshed and it is re-signed first).
EVENT ?= events/valid-eventbridge.json
# Where `make watch` serves the function.
LOCAL_URL := http://127.0.0.1:9000/lambda-url/momento-webhook/
# The documented test secret the files in events/ are signed with.
TEST_SECRET := momento-webhook-test-secret
# Offline template checks need a region and credentials, never real ones.
DUMMY_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing SAM_CLI_TELEMETRY=0

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help:
	@echo "make demo     run the receiver and the topic bridge locally against moto, end to end"
	@echo "make test     run the whole test suite (moto server started and stopped for you)"
	@echo "make lint     cargo fmt --check, clippy -D warnings, cfn-lint and sam validate --lint"
	@echo "make bench    cold-start (plain HTTP and TLS), memory, request-time, bridge and redrive throughput, package-size benchmarks"
	@echo "make bench-entropy  make bench, plus the build with aws-lc's CPU jitter entropy on, for comparison"
	@echo "make fuzz     the property tests with many more cases (SEED=... to replay)"
	@echo "make soak     the release binary under thousands of mixed requests, then a reconciliation"
	@echo "make mutants  mutation testing of the modules that decide outcomes (cargo-mutants)"
	@echo "make build    cargo lambda build --release for ARCH=$(ARCH) (installs the Rust target if missing)"
	@echo "make test-arm64  the binary's end-to-end tests against the arm64 build, under qemu-user"
	@echo "make deploy   sam build + sam deploy (guided the first time)"
	@echo "make watch    serve the function at $(LOCAL_URL) against a local AWS emulator"
	@echo "make invoke   send EVENT=$(EVENT), re-dated and signed, to a running 'make watch'"

# SAM CLI (and so every script here) supports Python 3.9 and later: say so plainly, not with a
# traceback from inside a virtual environment.
.PHONY: python-version
python-version:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null || { \
	  echo "$(PYTHON) must be Python 3.9 or later (found: $$($(PYTHON) --version 2>&1)); pass PYTHON=python3.x" >&2; exit 1; }

$(VENV)/.installed: requirements-dev.txt | python-version
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV_DEPLOY)/.installed: requirements-deploy.txt | python-version
	$(PYTHON) -m venv $(VENV_DEPLOY)
	$(VENV_DEPLOY)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

# The test binaries side by side, each test its own process (.config/nextest.toml): cargo-nextest
# as installed, or from crates.io into target/tools the first time.
NEXTEST := $(or $(shell command -v cargo-nextest 2>/dev/null),target/tools/bin/cargo-nextest)
target/tools/bin/cargo-nextest:
	cargo install --locked --quiet cargo-nextest@0.9.143 --root target/tools

# On a fresh clone the two virtual environments install while the test binaries compile, and the
# template checks (SAM CLI's own code, CPU-bound) run beside the tests, which mostly wait.
.PHONY: test test-build test-run
test: $(NEXTEST)
	@$(MAKE) --no-print-directory -j3 $(VENV)/.installed $(VENV_DEPLOY)/.installed test-build
	@$(MAKE) --no-print-directory -j2 template-check test-run

test-build: $(NEXTEST)
	$(NEXTEST) nextest run --workspace --all-targets --no-run

test-run: $(VENV)/.installed $(VENV_DEPLOY)/.installed $(NEXTEST)
	MOTO_SERVERS=3 scripts/with-moto.sh $(NEXTEST) nextest run --workspace --all-targets

.PHONY: template-check
template-check: $(VENV_DEPLOY)/.installed
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/cfn-lint template.yaml
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/sam validate --lint --template-file template.yaml
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/python scripts/check_template.py

.PHONY: lint
lint: template-check
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# What `cargo lambda watch` runs on the first request is `cargo run --bin momento-webhook`: the
# root package alone, whose dependencies get other features than in a workspace build. Built here
# (with progress on the terminal), the function then starts at once.
WATCHED_BUILD := cargo build --bin momento-webhook

.PHONY: demo
demo: $(VENV)/.installed
	$(WATCHED_BUILD)
	cargo build -p webhook-ops
	cargo build --bin momento-bridge --example momento_standin
	scripts/with-moto.sh $(VENV)/bin/python scripts/demo.py

.PHONY: bench
bench: $(VENV)/.installed
	cargo build --release --bins --examples
	cargo bench --bench cold_start
	scripts/with-moto.sh cargo bench --bench bridge_throughput
	scripts/with-moto.sh cargo bench -p webhook-ops --bench redrive_throughput
	@if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$'; then \
	  cargo lambda build --release --arm64 --bin momento-webhook; fi
	$(PYTHON) scripts/package_size.py

# `make bench` with, beside the shipped build, the same code built with aws-lc's CPU jitter entropy
# source (its default, which .cargo/config.toml turns off): the measurement behind that decision.
JITTER_TARGET := $(or $(CARGO_TARGET_DIR),target)/jitter-entropy
.PHONY: bench-entropy
bench-entropy:
	AWS_LC_SYS_NO_JITTER_ENTROPY=0 CARGO_TARGET_DIR=$(JITTER_TARGET) cargo build --release --bin momento-webhook
	BENCH_COMPARE_BINARY=$(abspath $(JITTER_TARGET))/release/momento-webhook \
	  BENCH_COMPARE_LABEL="x86_64, aws-lc CPU jitter entropy on" $(MAKE) bench

# The Rust standard library for arm64 (the default Lambda architecture), installed when missing.
.PHONY: rust-target
rust-target:
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$'; then \
	  echo "installing the arm64 Rust standard library (rustup target add aarch64-unknown-linux-gnu)" >&2; \
	  rustup target add aarch64-unknown-linux-gnu || { \
	    echo "Could not install it. Check that rustup can reach static.rust-lang.org, or build and deploy" >&2; \
	    echo "for x86_64 instead: 'make build ARCH=x86_64', 'make deploy ARCH=x86_64'." >&2; exit 1; }; fi

# Many more cases of the property tests than `make test` runs; the seed is printed, so a
# failure can be replayed with `make fuzz SEED=<seed>`.
FUZZ_CASES ?= 200000
.PHONY: fuzz
fuzz:
	@seed=$${SEED:-$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}; \
	echo "fuzz: $(FUZZ_CASES) cases per property, seed $$seed (replay: make fuzz SEED=$$seed)"; \
	PROPTEST_CASES=$(FUZZ_CASES) PROPTEST_RNG_SEED=$$seed cargo test --release --test properties -- --nocapture \
	  || { echo "fuzz: FAILED with seed $$seed (replay: make fuzz SEED=$$seed)"; exit 1; }

# The release binary under a long mixed load, reconciled at the end (tests/soak.rs).
.PHONY: soak
soak:
	cargo test --release --test soak -- --ignored --nocapture

# Mutation testing of the modules that decide outcomes (cargo-mutants from crates.io, installed
# into target/tools), with the tests that decide them: unit, handler, adapters against the local
# AWS stub, metrics, properties (fewer cases), fixtures, Secrets Manager against moto, outcomes,
# the reference tables (each code's status), the binary's end-to-end tests (its log lines), and
# the bridge's (its run loop with fakes, the checkpoint table in moto); not the hand-over's
# failure matrix (minutes per mutant).
# Results in mutants.out/; docs/testing.md lists the survivors and why.
MUTANTS := target/tools/bin/cargo-mutants
MUTATED := src/signature.rs src/event.rs src/routing.rs src/forward/port.rs src/forward/aws.rs src/forward/eventbridge.rs \
  src/forward/stepfunctions.rs src/dead_letter/letter.rs src/signing_secrets.rs src/receiver.rs src/outcome.rs \
  src/metrics.rs src/report.rs src/pipeline.rs src/bridge/topic.rs src/bridge/ports.rs src/bridge/config.rs src/bridge/topic_run.rs src/bridge/subscription.rs \
  src/bridge/succession.rs src/bridge/feed.rs src/bridge/budget.rs src/bridge/run.rs src/bridge/checkpoint.rs
$(MUTANTS):
	cargo install --locked --quiet cargo-mutants@27.1.0 --root target/tools
.PHONY: mutants
mutants: $(MUTANTS) $(VENV)/.installed
	PROPTEST_CASES=32 scripts/with-moto.sh $(MUTANTS) mutants --package momento-webhook-receiver \
	  $(addprefix --file ,$(MUTATED)) -- --lib --test handler --test aws_adapters --test metrics \
	  --test properties --test events_fixtures --test secrets_moto --test binary_e2e --test bridge --test bridge_e2e \
	  --test outcomes --test readme

.PHONY: build
build: $(VENV)/.installed rust-target
	cargo lambda build --release --$(subst x86_64,x86-64,$(ARCH)) --bin momento-webhook

# The end-to-end tests of the binary, run against the arm64 build under qemu-user: the binary
# that is deployed, not only the one the tests were compiled with.
ARM64_BOOTSTRAP := $(or $(CARGO_TARGET_DIR),target)/lambda/momento-webhook/bootstrap
.PHONY: test-arm64
test-arm64: $(VENV)/.installed
	$(MAKE) build ARCH=arm64
	scripts/ensure-qemu.sh
	MOMENTO_WEBHOOK_BINARY=$(abspath $(ARM64_BOOTSTRAP)) MOMENTO_WEBHOOK_EXPECT_MACHINE=aarch64 \
	  MOMENTO_WEBHOOK_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
	  scripts/with-moto.sh cargo test --test binary_e2e --test trace_propagation

# Every `sam deploy` is given the architecture just built (see scripts/deploy.py); CONFIG_ENV picks
# a samconfig.toml environment (a second stack), as `sam deploy --config-env` does.
CONFIG_ENV ?= default
.PHONY: deploy
deploy: $(VENV)/.installed $(VENV_DEPLOY)/.installed rust-target
	$(VENV_DEPLOY)/bin/python scripts/deploy.py --architecture $(ARCH) --config-env $(CONFIG_ENV)

# The function at a local Function URL, with moto as AWS (an event bus whose events are printed).
.PHONY: watch
watch: $(VENV)/.installed
	$(WATCHED_BUILD)
	scripts/with-moto.sh $(VENV)/bin/python scripts/watch.py

# Re-dates, signs and POSTs EVENT to `make watch`'s URL; says so when nothing answers.
.PHONY: invoke
invoke:
	cargo build --quiet -p webhook-ops
	MOMENTO_SIGNING_SECRET=$${MOMENTO_SIGNING_SECRET:-$(TEST_SECRET)} \
	  $(or $(CARGO_TARGET_DIR),target)/debug/webhook-ops smoke --url $(LOCAL_URL) --event $(EVENT) --timeout 15

.PHONY: clean
clean:
	cargo clean
	rm -rf $(VENV) $(VENV_DEPLOY) .aws-sam
