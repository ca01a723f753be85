//! authd: an authentication microservice. Surfaces (`grpc`, `rest`, `proxy`
//! for the checks proxies make, on shared `http` plumbing) sit outside, one
//! domain (`domain`) in the middle owning its storage ports, which `storage`
//! implements; password hashing machinery (`hashing`), the sealing of
//! secrets at rest (`secrets`), configuration, telemetry, metrics and
//! start-up (`app`) at the edge. ARCHITECTURE.md says which may call which.

pub mod admin;
pub mod app;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod grpc;
pub mod hashing;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod proxy;
pub mod qr;
pub mod rest;
pub mod secrets;
pub mod storage;
pub mod telemetry;
pub mod webhook;
