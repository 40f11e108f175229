//! CloudWatch alarms as code and the on-call tooling around them (`ctl alarms …`).
//!
//! - [`backtest`]: the pure evaluation engine (CloudWatch's N-of-M and missing-data semantics)
//!   and its report (alarms, time in ALARM, flaps) for a current and a proposed threshold;
//! - [`recommend`]: client-side percentiles and a proposed threshold;
//! - [`review`]: the backtest a plan shows under each alarm it creates or changes in how it
//!   evaluates (reads the metric; the only part here that calls AWS besides the provider);
//! - [`resources`]: the kinds' attribute structs and desired expansion (the provider code is in
//!   `aws::cloudwatch`, `aws::sns`, `aws::route53`);
//! - [`tune`]: the surgical YAML edit of a threshold;
//! - [`chart`]: the SVG or PNG chart;
//! - [`mute`]: mute records kept in the alarm's tags;
//! - [`webhook`]: the webhook URL (a secret: env var or OpenBao KV, never the file) and its plan stand-in.

pub mod backtest;
pub mod chart;
pub mod mute;
pub mod recommend;
pub mod resources;
pub mod review;
pub mod tune;
pub mod webhook;
