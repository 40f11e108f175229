//! One integration-test binary (one link of the big dependency tree) against real OpenBao
//! and moto servers that the harness starts on free loopback ports.

mod access;
mod alarms;
mod artifacts;
mod cluster;
mod dev_stack;
mod dr;
mod elastic_ip;
mod faults;
mod gitops;
mod harness;
mod ownership;
mod refresh;
mod restore;
mod saboteur;
mod transit_key;
mod infra;
mod seal;
mod tls;
mod workspaces;
