//! Disaster recovery: `ctl dr snapshot | rebuild | runbook | drill`.
//!
//! - [`snapshot`]: OpenBao raft snapshot → S3 (+ sha256 sidecar), RDS snapshots, and a
//!   [`Manifest`] tying them together.
//! - [`steps`]: THE ordered list of rebuild steps. [`rebuild`] executes it; [`runbook`] renders
//!   it as `runbooks/disaster_recovery.md`. A step added here shows up in both.
//! - [`rebuild`]: runs the steps in order, records each finished step in a state file so an
//!   interrupted rebuild resumes at the first unfinished one, and measures RTO/RPO.
//! - `ctl dr drill` (`cli/dr_drill.rs`): the whole cycle on a private local stack, counting
//!   secret versions lost.
//! - [`scratch`]: a throw-away server booted from a snapshot (same seal key, loopback, torn
//!   down) for [`restore`] (`ctl dr restore-workspace`: one workspace's KV secrets back, as
//!   new versions) and `ctl dr verify-snapshot` (does it restore, are the counts right);
//!   [`kv`] is KV v2 as both see it.
//!
//! What must survive a disaster (by design, and said so in the runbook): the seal's KMS key
//! (the raft snapshot's root key is wrapped by it), the `dr:` bucket, the RDS snapshots, the
//! operator's OpenBao token, and git. Everything else is rebuilt.

pub mod census;
pub mod kv;
pub mod manifest;
pub mod rebuild;
pub mod restore;
pub mod runbook;
pub mod scratch;
pub mod snapshot;
pub mod steps;

pub use manifest::Manifest;
pub use steps::{Step, StepId, STEPS};

use crate::aws::AwsError;
use crate::openbao::client::BaoError;

/// Why a DR command stopped. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum DrError {
    /// A check that runs before anything is touched failed: nothing was changed.
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Manifest { path: String, message: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Bao(#[from] BaoError),
    #[error(transparent)]
    Dev(#[from] crate::dev::DevError),
    #[error("{0}")]
    Other(String),
}

impl DrError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> DrError {
        DrError::Io { context: context.into(), source }
    }
}

/// Seconds since the Unix epoch (the same clock the lock and journal use).
pub(crate) use crate::openbao::state::now_secs as now_unix;

/// `20261123T151040Z`: sortable, and valid in S3 keys and RDS snapshot identifiers (lowercased).
pub(crate) fn stamp(unix: u64) -> String {
    crate::alarms::mute::rfc3339(unix as i64).replace(['-', ':'], "")
}
