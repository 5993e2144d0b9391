# Gatehouse: the commands people use. `make help` lists them.
SHELL := /usr/bin/env bash
CARGO ?= cargo

.PHONY: help run migrate test test-only services tools lint fmt ci bench load clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## build and serve the embedded default (SQLite + in-process denylist) on 127.0.0.1:50051
	@echo "run: building and serving gatehouse (embedded mode, data in ./data)"
	$(CARGO) run -p gatehouse --bin gatehouse -- serve

migrate: ## apply database migrations (DATABASE_URL, default: the embedded SQLite file)
	$(CARGO) run -p gatehouse --bin gatehouse -- migrate

services: ## make sure PostgreSQL, Redis and RabbitMQ are up (starts them if down)
	@./scripts/services.sh

tools: ## install test and lint tools (grpcurl, buf) into .tools/
	@./scripts/install-grpcurl.sh
	@./scripts/install-buf.sh

test: services tools test-only ## the whole suite: unit, adapter (real PostgreSQL, Redis, RabbitMQ) and end-to-end tests

test-only:
	@echo "test: running every test of the workspace"
	@if command -v cargo-nextest >/dev/null; then \
	  $(CARGO) nextest run --workspace --no-fail-fast --test-threads 4; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

lint: ## rustfmt check, clippy with warnings as errors, buf lint of the protos, and the layer check
	@echo "lint: rustfmt"
	$(CARGO) fmt --all --check
	@echo "lint: clippy (warnings are errors)"
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@echo "lint: buf STANDARD lint of proto/"
	@./scripts/install-buf.sh
	.tools/buf/node_modules/.bin/buf lint
	@echo "lint: domain and application import no I/O crates"
	@./scripts/check-layers.sh

fmt: ## format the code
	$(CARGO) fmt --all

ci: lint test ## what CI runs

bench: ## measure the token-validation hot path and argon2 (release build; prints ns/op)
	@echo "bench: building in release mode and measuring"
	$(CARGO) bench -p gatehouse --bench validate

load: ## load the server over gRPC (release): every scenario, embedded and (when the services are up) production; one Markdown table, JSON in target/load/
	@echo "load: building the server and the load tool in release mode"
	$(CARGO) build --release --locked -p gatehouse -p gatehouse-load --bins
	@echo "load: starting each server, running every scenario, measuring raw argon2id"
	@bin_dir="$${CARGO_TARGET_DIR:-target}/release"; \
	if command -v taskset >/dev/null && [ "$$(nproc)" -ge 2 ]; then \
	  echo "load: server pinned to CPU 0, load tool to CPU 1"; \
	  taskset -c 1 "$$bin_dir/gatehouse-load" --server "$$bin_dir/gatehouse" --server-cpus 0 --out target/load $(LOAD_ARGS); \
	else \
	  "$$bin_dir/gatehouse-load" --server "$$bin_dir/gatehouse" --out target/load $(LOAD_ARGS); \
	fi

clean: ## remove build output, tools and the embedded data
	$(CARGO) clean
	rm -rf .tools data
