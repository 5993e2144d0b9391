//! End-to-end tests: the real server, built with the same wiring as `main`,
//! served on an ephemeral port and driven over gRPC. Every scenario runs in
//! both deployments: embedded (SQLite + in-process denylist) and production
//! (PostgreSQL + Redis, each test with its own database and key prefix).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_debug_implementations)]

mod harness;

mod audit;
mod bad_input;
mod broker;
mod email_flows;
mod forged_tokens;
mod grpcurl;
mod hashing;
mod limits;
mod load_tool;
mod log_hygiene;
mod login_throttle;
mod mfa;
mod one_time_codes;
mod organizations;
mod outage;
mod passwords;
mod process;
mod reset_flow;
mod revocation;
mod session_service;
mod sessions;
mod startup;
mod takeover;
mod token_cache;
