//! Boot artifacts: binaries in S3 next to a `sha256sum`-format sidecar, pinned by digest in
//! the environment file.
//!
//! - [`publish`] streams a file to `<prefix><name>/<version>/<file>` (SSE, hashed while read,
//!   constant memory), uploads `<key>.sha256`, and returns the pin that
//!   [`pin::pin_in_file`] records in the environment YAML (a surgical text edit).
//! - [`verify_pinned`] reads the current VersionId of the artifact and its sidecar, GETs both
//!   at those versions, streams the artifact through SHA-256 in 1 MiB steps and checks it
//!   against the sidecar *and* the pin. Callers (e.g. `ctl plan` before launching an instance)
//!   use the [`VerifiedArtifact`] it returns; anything else is an [`ArtifactError`] that names
//!   the artifact and says what is wrong.
//! - [`fetcher`] renders the boot-time script that downloads an artifact and installs it only
//!   if it matches the pin.

pub mod fetcher;
pub mod hash;
pub mod pin;
pub mod s3;
pub mod sidecar;

use crate::aws::{Aws, AwsError};
use crate::config::{sidecar_key, Artifact, Artifacts, Environment};
use hash::{HashError, Hashed};
use sidecar::SidecarError;
use tokio::io::AsyncReadExt;

/// Sidecars are one line; anything longer than this is refused without reading it.
pub const MAX_SIDECAR_BYTES: u64 = 4096;

/// An artifact whose current object matched its sidecar and its pinned digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact {
    pub name: String,
    pub version: String,
    /// The verified digest (= the pin), lowercase hex.
    pub sha256: String,
    /// Bytes hashed.
    pub size: u64,
    /// The object key.
    pub key: String,
    /// The S3 VersionId that was verified (`None` in an unversioned bucket).
    pub version_id: Option<String>,
}

/// Why an artifact did not verify (or publish). Every message names the artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("the environment has no artifacts: section")]
    NotConfigured,
    #[error("the environment has no aws: section (artifacts live in S3)")]
    NoAws,
    #[error("no artifact {name:?} in the artifacts: section (declared: {declared})")]
    Unknown { name: String, declared: String },
    #[error("artifact {name}: s3://{bucket}/{key} is missing")]
    Missing { name: String, bucket: String, key: String },
    #[error("artifact {name}: sidecar s3://{bucket}/{key} is missing")]
    MissingSidecar { name: String, bucket: String, key: String },
    #[error(
        "artifact {name}: sidecar s3://{bucket}/{key} is {size} bytes; a sidecar is one line of at most {max} bytes"
    )]
    SidecarTooLarge { name: String, bucket: String, key: String, size: u64, max: u64 },
    #[error("artifact {name}: sidecar s3://{bucket}/{key}: {error}")]
    Sidecar { name: String, bucket: String, key: String, error: SidecarError },
    #[error("artifact {name}: s3://{bucket}/{key} is {size} bytes, larger than its declared size of {limit} bytes")]
    TooLarge { name: String, bucket: String, key: String, size: u64, limit: u64 },
    #[error("artifact {name}: s3://{bucket}/{key} {error}")]
    Read { name: String, bucket: String, key: String, error: HashError },
    #[error("artifact {name}: s3://{bucket}/{key} has sha256 {actual}, but the pinned digest is {pinned}")]
    PinMismatch { name: String, bucket: String, key: String, actual: String, pinned: String },
    #[error(
        "artifact {name}: sidecar s3://{bucket}/{sidecar_key} says sha256 {sidecar}, but the content has {actual}"
    )]
    SidecarMismatch { name: String, bucket: String, sidecar_key: String, sidecar: String, actual: String },
    #[error("artifact {name}: {error}")]
    Aws { name: String, error: AwsError },
    #[error("artifact {name}: {message}")]
    Publish { name: String, message: String },
}

/// The `artifacts:` section and the item `name` of `env`.
pub fn lookup<'a>(env: &'a Environment, name: &str) -> Result<(&'a Artifacts, &'a Artifact), ArtifactError> {
    let artifacts = env.artifacts.as_ref().ok_or(ArtifactError::NotConfigured)?;
    let item = artifacts.get(name).ok_or_else(|| ArtifactError::Unknown {
        name: name.to_string(),
        declared: if artifacts.items.is_empty() {
            "none".to_string()
        } else {
            artifacts.items.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
        },
    })?;
    Ok((artifacts, item))
}

/// Verify the artifact `name` of `env`: the current object and its sidecar (read as a pair by
/// VersionId) must both match the pinned digest, and the object must not exceed its declared
/// size. Streams the object in constant memory.
pub async fn verify_pinned(aws: &Aws, env: &Environment, name: &str) -> Result<VerifiedArtifact, ArtifactError> {
    let (artifacts, item) = lookup(env, name)?;
    verify_item(aws, &s3::client(aws), artifacts, item).await
}

/// [`verify_pinned`] with an S3 client in hand (to verify many artifacts with one client).
pub async fn verify_item(
    aws: &Aws,
    s3: &aws_sdk_s3::Client,
    artifacts: &Artifacts,
    item: &Artifact,
) -> Result<VerifiedArtifact, ArtifactError> {
    let _ = aws;
    let name = item.name.clone();
    let bucket = artifacts.bucket.clone();
    let key = artifacts.key(item);
    let side_key = sidecar_key(&key);
    let aws_err = |error: AwsError| ArtifactError::Aws { name: item.name.clone(), error };

    // The pair: the current version of each, then both read at exactly those versions.
    let Some(object) = s3::head(s3, &bucket, &key).await.map_err(aws_err)? else {
        return Err(ArtifactError::Missing { name, bucket, key });
    };
    let Some(side) = s3::head(s3, &bucket, &side_key).await.map_err(aws_err)? else {
        return Err(ArtifactError::MissingSidecar { name, bucket, key: side_key });
    };
    if let Some(limit) = item.size.filter(|limit| object.size > *limit) {
        return Err(ArtifactError::TooLarge { name, bucket, key, size: object.size, limit });
    }
    if side.size > MAX_SIDECAR_BYTES {
        return Err(ArtifactError::SidecarTooLarge {
            name,
            bucket,
            key: side_key,
            size: side.size,
            max: MAX_SIDECAR_BYTES,
        });
    }

    let body = s3::get(s3, &bucket, &side_key, side.version_id.as_deref()).await.map_err(aws_err)?;
    let mut side_bytes = Vec::new();
    body.into_async_read().take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut side_bytes).await.map_err(|e| {
        ArtifactError::Read {
            name: name.clone(),
            bucket: bucket.clone(),
            key: side_key.clone(),
            error: HashError::Read { read: 0, source: e },
        }
    })?;
    if side_bytes.len() as u64 > MAX_SIDECAR_BYTES {
        let size = side_bytes.len() as u64;
        return Err(ArtifactError::SidecarTooLarge { name, bucket, key: side_key, size, max: MAX_SIDECAR_BYTES });
    }
    let sidecar = sidecar::parse(&side_bytes, &item.file).map_err(|error| ArtifactError::Sidecar {
        name: name.clone(),
        bucket: bucket.clone(),
        key: side_key.clone(),
        error,
    })?;

    let body = s3::get(s3, &bucket, &key, object.version_id.as_deref()).await.map_err(aws_err)?;
    let Hashed { sha256: actual, size } = match hash::hash_async(body.into_async_read(), item.size).await {
        Ok(h) => h,
        Err(HashError::TooLarge { limit, read }) => {
            return Err(ArtifactError::TooLarge { name, bucket, key, size: read, limit });
        }
        Err(error) => return Err(ArtifactError::Read { name, bucket, key, error }),
    };
    if actual != item.sha256 {
        return Err(ArtifactError::PinMismatch { name, bucket, key, actual, pinned: item.sha256.clone() });
    }
    if sidecar.sha256 != actual {
        return Err(ArtifactError::SidecarMismatch {
            name,
            bucket,
            sidecar_key: side_key,
            sidecar: sidecar.sha256,
            actual,
        });
    }
    Ok(VerifiedArtifact {
        name,
        version: item.version.clone(),
        sha256: actual,
        size,
        key,
        version_id: object.version_id,
    })
}

/// What [`publish`] uploaded: the values to pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub sidecar_version_id: Option<String>,
    /// The bucket was created by this run.
    pub created_bucket: bool,
    /// The bucket existed without versioning enabled.
    pub unversioned_bucket: bool,
}

/// Upload `path` as artifact `name` at `version` (object name `file`) and its sidecar.
///
/// Refuses, before anything becomes visible in the bucket, to publish different bytes under a
/// version that is already pinned to another digest: a version names one content.
pub async fn publish(
    aws: &Aws,
    env: &Environment,
    path: &std::path::Path,
    name: &str,
    version: &str,
    file: &str,
) -> Result<Published, ArtifactError> {
    let artifacts = env.artifacts.as_ref().ok_or(ArtifactError::NotConfigured)?;
    let fail = |message: String| ArtifactError::Publish { name: name.to_string(), message };
    crate::config::check_artifact_name(name).map_err(|e| fail(format!("name {name:?}: {e}")))?;
    for (what, value) in [("version", version), ("file", file)] {
        crate::config::check_artifact_token(value).map_err(|e| fail(format!("{what} {value:?} {e}")))?;
    }
    let existing = artifacts.get(name);
    let client = s3::client(aws);
    let aws_err = |error: AwsError| ArtifactError::Aws { name: name.to_string(), error };
    let bucket_state = s3::ensure_bucket(aws, &client, &artifacts.bucket).await.map_err(aws_err)?;
    let key = crate::config::object_key(&artifacts.prefix, name, version, file);
    let check = |h: &Hashed| match existing {
        Some(a) if a.version == version && a.sha256 != h.sha256 => Err(format!(
            "version {version} is pinned to sha256 {}, but {} has {}: publish it under a new version",
            a.sha256,
            path.display(),
            h.sha256
        )),
        _ => Ok(()),
    };
    let (hashed, version_id) =
        s3::upload_file(&client, &artifacts.bucket, &key, path, check).await.map_err(|e| match e {
            s3::UploadError::Aws(error) => aws_err(error),
            other => fail(other.to_string()),
        })?;
    let sidecar_version_id = s3::put_small(
        &client,
        &artifacts.bucket,
        &sidecar_key(&key),
        sidecar::format(&hashed.sha256, file).into_bytes(),
    )
    .await
    .map_err(aws_err)?;
    Ok(Published {
        name: name.to_string(),
        version: version.to_string(),
        file: file.to_string(),
        sha256: hashed.sha256,
        size: hashed.size,
        bucket: artifacts.bucket.clone(),
        key,
        version_id,
        sidecar_version_id,
        created_bucket: bucket_state == s3::BucketState::Created,
        unversioned_bucket: bucket_state == s3::BucketState::Existed { versioned: false },
    })
}
