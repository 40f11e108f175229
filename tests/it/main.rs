//! One integration-test binary (one link of the big dependency tree) against real OpenBao
//! and moto servers that the harness starts on free loopback ports.

mod dev_stack;
mod harness;
mod workspaces;
