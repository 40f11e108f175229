//! The `dr:` section: where `ctl dr snapshot` puts OpenBao raft snapshots, their sidecars and
//! the manifests that tie them to RDS snapshots.
//!
//! ```yaml
//! dr:
//!   bucket: acme-dr-backups    # keep it outside the blast radius (another account or region)
//!   prefix: dr/                # default; keys are <prefix><env>/<UTC stamp>/{raft.snap,…}
//! ```

use super::artifacts::{BucketName, Prefix};
use super::problems::Problems;
use super::PathSeg;
use serde::Deserialize;

/// The loaded `dr:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dr {
    /// The S3 bucket holding snapshots, sidecars and manifests.
    pub bucket: String,
    /// Key prefix, `""` or ending in `/` (default `dr/`).
    pub prefix: String,
}

fn default_prefix() -> Prefix {
    Prefix("dr/".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDr {
    pub bucket: BucketName,
    #[serde(default = "default_prefix")]
    pub prefix: Prefix,
}

/// `dr:` needs `aws:` (the bucket is in S3).
pub(crate) fn validate(raw: &RawDr, has_aws: bool, problems: &mut Problems) -> Dr {
    if !has_aws {
        problems.at(0, vec![PathSeg::key("dr")], "dr needs an aws: section (the snapshot bucket is in S3)");
    }
    Dr { bucket: raw.bucket.0.clone(), prefix: raw.prefix.0.clone() }
}
