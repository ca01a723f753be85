//! Integration tests: each starts the real server on an ephemeral port with
//! its own database and talks to it over the network. SQLite always;
//! PostgreSQL too when `TEST_DATABASE_URL` is set (`.ci/run` sets it).
//! One test binary, so the suite compiles once.

mod account;
mod admission;
mod binary;
mod cancelled;
mod client;
mod cors;
mod crash;
mod cross_origin;
mod cross_surface;
mod deploy_envoy;
mod discovery;
mod email;
mod envoy_check;
mod forward_auth;
mod grpc_web;
mod health;
mod helpers;
mod instances;
mod keys;
mod limits;
mod login;
mod logout;
mod mail;
mod memory;
mod metrics;
mod openapi;
#[cfg(feature = "otel")]
mod otel;
mod outbox;
mod passkey_second_factor;
mod passkeys;
mod password_reset;
mod passwordless;
mod proxies;
mod rate_limits;
mod reflection;
mod refresh;
mod register;
mod rest;
mod rest_errors;
mod revocation_feed;
mod second_factor;
mod secrets_at_rest;
mod secrets_in_logs;
mod security_notices;
mod session_ends;
mod sessions;
mod smtp_server;
mod step_up;
mod token_attacks;
mod users_cli;
mod verify;
mod webhooks;
