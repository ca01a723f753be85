//! authd: an authentication microservice. Transport surfaces (`grpc`,
//! `rest`, `web` for grpc-web and CORS, `proxy` for the checks proxies
//! make) sit outside, one domain service (`domain`) in the middle, storage (`storage`)
//! behind it; configuration, telemetry and start-up at the edge.

pub mod admin;
pub mod app;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod grpc;
pub mod hashing;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod rest;
pub mod storage;
pub mod telemetry;
