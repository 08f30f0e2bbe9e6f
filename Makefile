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
# The documented test secret the files in events/ are signed with.
TEST_SECRET := momento-webhook-test-secret
# Offline template checks need a region and credentials, never real ones.
DUMMY_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing SAM_CLI_TELEMETRY=0

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help:
	@echo "make demo     run the receiver locally against moto and send signed sample events"
	@echo "make test     run the whole test suite (moto server started and stopped for you)"
	@echo "make lint     cargo fmt --check, clippy -D warnings, cfn-lint and sam validate --lint"
	@echo "make bench    cold-start and request-time benchmarks (figures as ratios)"
	@echo "make build    cargo lambda build --release for ARCH=$(ARCH)"
	@echo "make deploy   sam build + sam deploy (guided the first time)"
	@echo "make watch    serve the function at http://127.0.0.1:9000/lambda-url/momento-webhook/"
	@echo "make invoke   send EVENT=$(EVENT) to a running 'make watch'"

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV_DEPLOY)/.installed: requirements-deploy.txt
	$(PYTHON) -m venv $(VENV_DEPLOY)
	$(VENV_DEPLOY)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

.PHONY: test
test: $(VENV)/.installed template-check
	scripts/with-moto.sh cargo test --all-targets

.PHONY: template-check
template-check: $(VENV_DEPLOY)/.installed
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/cfn-lint template.yaml
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/sam validate --lint --template-file template.yaml
	$(DUMMY_AWS) $(VENV_DEPLOY)/bin/python scripts/check_template.py

.PHONY: lint
lint: template-check
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

.PHONY: demo
demo: $(VENV)/.installed
	cargo build --bins
	scripts/with-moto.sh $(VENV)/bin/python scripts/demo.py

.PHONY: bench
bench: $(VENV)/.installed
	cargo build --release --bins --examples
	scripts/with-moto.sh cargo bench --bench cold_start

.PHONY: build
build: $(VENV)/.installed
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$'; then \
	  echo "The arm64 standard library is missing: run 'rustup target add aarch64-unknown-linux-gnu'," >&2; \
	  echo "or build for x86_64 with 'make build ARCH=x86_64' (and deploy with Architecture=x86_64)." >&2; \
	  exit 1; fi
	cargo lambda build --release --$(subst x86_64,x86-64,$(ARCH)) --bin momento-webhook

.PHONY: deploy
deploy: $(VENV)/.installed $(VENV_DEPLOY)/.installed
	$(VENV_DEPLOY)/bin/sam build --parameter-overrides Architecture=$(ARCH)
	@if grep -q '^stack_name' samconfig.toml 2>/dev/null; then \
	  $(VENV_DEPLOY)/bin/sam deploy; \
	else \
	  echo "First deploy: answer the Architecture prompt with $(ARCH), the architecture just built."; \
	  $(VENV_DEPLOY)/bin/sam deploy --guided; fi

.PHONY: watch
watch: $(VENV)/.installed
	MOMENTO_SIGNING_SECRET=$${MOMENTO_SIGNING_SECRET:-$(TEST_SECRET)} cargo lambda watch --bin momento-webhook

.PHONY: invoke
invoke: $(VENV)/.installed
	mkdir -p target
	cargo run --quiet --bin sign -- --secret $${MOMENTO_SIGNING_SECRET:-$(TEST_SECRET)} --fresh --event $(EVENT) > target/invoke-event.json
	cargo lambda invoke momento-webhook --data-file target/invoke-event.json

.PHONY: clean
clean:
	cargo clean
	rm -rf $(VENV) $(VENV_DEPLOY) .aws-sam
