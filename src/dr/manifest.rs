//! The manifest: one JSON document naming everything a rebuild restores from, with digests and
//! times. Written next to the snapshot in S3 and to a local file; `ctl dr rebuild --from` takes
//! either.

use super::DrError;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub environment: String,
    /// RFC 3339, UTC: when the snapshot command started.
    pub created_at: String,
    pub git_commit: Option<String>,
    pub openbao: RaftSnapshot,
    /// The KMS key wrapping the root key in the snapshot; `None` for a shamir-sealed server.
    pub seal: Option<SealKey>,
    /// One per DB instance of the environment.
    #[serde(default)]
    pub rds: Vec<DbSnapshot>,
    /// Managed workspaces (namespaces) at snapshot time.
    pub workspaces: usize,
    /// What the snapshot should hold (`ctl dr verify-snapshot` checks it); absent in manifests
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub census: Option<super::census::Census>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSnapshot {
    pub bucket: String,
    pub key: String,
    /// The S3 object version holding exactly these bytes (`None` in an unversioned bucket).
    pub version_id: Option<String>,
    pub sidecar_key: String,
    /// SHA-256 (lowercase hex) of the snapshot as OpenBao sent it.
    pub sha256: String,
    pub size: u64,
    /// Seconds since the epoch when OpenBao produced it: the recovery point.
    pub taken_unix: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealKey {
    pub kms_key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSnapshot {
    /// The DB instance identifier.
    pub instance: String,
    /// The manual DB snapshot identifier.
    pub snapshot: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

impl Manifest {
    /// A short digest of the manifest: names the rebuild's state file, so a resumed rebuild
    /// only ever continues the same manifest.
    pub fn id(&self) -> String {
        crate::artifacts::hash::sha256_hex(self.to_json().as_bytes())[..16].to_string()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes") + "\n"
    }

    /// Parse a manifest; `origin` names it in errors.
    pub fn parse(text: &[u8], origin: &str) -> Result<Manifest, DrError> {
        let m: Manifest = serde_json::from_slice(text).map_err(|e| DrError::Manifest {
            path: origin.to_string(),
            message: format!("line {}, column {}: {e}", e.line(), e.column()),
        })?;
        if m.format_version != FORMAT_VERSION {
            return Err(DrError::Manifest {
                path: origin.to_string(),
                message: format!("format_version {} is not {FORMAT_VERSION}; use the ctl that wrote it", m.format_version),
            });
        }
        if m.openbao.sha256.len() != 64 || !m.openbao.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DrError::Manifest { path: origin.to_string(), message: "openbao.sha256 is not 64 hex characters".into() });
        }
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Manifest, DrError> {
        let text = std::fs::read(path).map_err(|e| DrError::io(format!("reading the manifest {}", path.display()), e))?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// `s3://bucket/key` → `(bucket, key)`.
    pub fn s3_location(from: &str) -> Option<(&str, &str)> {
        let rest = from.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            environment: "prod".into(),
            created_at: "2026-11-23T15:10:40Z".into(),
            git_commit: Some("abc".into()),
            openbao: RaftSnapshot {
                bucket: "b".into(),
                key: "dr/prod/20261123T151040Z/raft.snap".into(),
                version_id: Some("v1".into()),
                sidecar_key: "dr/prod/20261123T151040Z/raft.snap.sha256".into(),
                sha256: "a".repeat(64),
                size: 10,
                taken_unix: 1,
            },
            seal: Some(SealKey { kms_key_id: "k".into() }),
            rds: vec![],
            workspaces: 3,
            census: None,
        }
    }

    #[test]
    fn round_trip_and_id_changes_with_content() {
        let m = sample();
        assert_eq!(Manifest::parse(m.to_json().as_bytes(), "m.json").unwrap(), m);
        let mut other = m.clone();
        other.openbao.size = 11;
        assert_ne!(m.id(), other.id());
    }

    #[test]
    fn bad_manifests_say_where_and_what() {
        let err = Manifest::parse(b"{\n  \"format_version\": 1,\n  \"extra\": 2\n}", "m.json").unwrap_err().to_string();
        assert!(err.starts_with("m.json: line 3"), "{err}");
        let mut m = sample();
        m.format_version = 9;
        let err = Manifest::parse(m.to_json().as_bytes(), "m.json").unwrap_err().to_string();
        assert!(err.contains("format_version 9"), "{err}");
        assert_eq!(Manifest::s3_location("s3://b/k/x"), Some(("b", "k/x")));
        assert_eq!(Manifest::s3_location("s3://b"), None);
    }
}
