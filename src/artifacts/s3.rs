//! The S3 calls behind publish and verify: the bucket (created versioned, private, tagged),
//! streamed uploads that hash the bytes they send, and versioned reads.

use super::hash::{sha256_hex, Hashed, Running};
use crate::aws::{Aws, AwsError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, PublicAccessBlockConfiguration, ServerSideEncryption, Tag, Tagging,
    VersioningConfiguration,
};
use aws_sdk_s3::Client;
use std::path::Path;
use tokio::io::AsyncReadExt;

/// Files up to this size go up in one PutObject; larger ones in parts of this size.
pub const PART: usize = 8 << 20;

/// An S3 client for `aws` (path-style addressing when an endpoint such as moto is set).
pub fn client(aws: &Aws) -> Client {
    crate::aws::client::s3(aws)
}

/// What `ensure_bucket` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Created,
    Existed { versioned: bool },
}

/// Create `bucket` if it does not exist: versioning enabled, public access blocked, tagged
/// as ctl's. An existing bucket is left as it is (and reported with its versioning status).
pub async fn ensure_bucket(aws: &Aws, s3: &Client, bucket: &str) -> Result<BucketState, AwsError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {
            // Best effort: moto answers GetBucketVersioning with a root element the SDK rejects.
            let versioned = match s3.get_bucket_versioning().bucket(bucket).send().await {
                Ok(v) => v.status() == Some(&BucketVersioningStatus::Enabled),
                Err(_) => true,
            };
            return Ok(BucketState::Existed { versioned });
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(e) => return Err(AwsError::api("s3", "HeadBucket", e)),
    }
    let mut create = s3.create_bucket().bucket(bucket);
    let region = aws.sdk.region().map(|r| r.as_ref().to_string()).unwrap_or_default();
    if !region.is_empty() && region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(AwsError::api("s3", "CreateBucket", e)),
    }
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "PutBucketVersioning", e))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "PutPublicAccessBlock", e))?;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().map_err(|e| AwsError::Other(e.to_string()));
    let tagging = Tagging::builder()
        .tag_set(tag("managed-by", "ctl")?)
        .tag_set(tag("ctl-environment", &aws.environment)?)
        .tag_set(tag("ctl-address", &format!("artifacts.bucket.{bucket}"))?)
        .build()
        .map_err(|e| AwsError::Other(e.to_string()))?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "PutBucketTagging", e))?;
    Ok(BucketState::Created)
}

/// Why an upload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// The check run on the digest before committing refused it (nothing was written).
    #[error("{0}")]
    Refused(String),
}

/// Stream the file at `path` to `bucket`/`key` with SSE (AES256), hashing exactly the bytes
/// sent. `check` sees the digest before anything becomes visible in the bucket (a small file
/// is hashed before its PutObject; a large one before its multipart upload completes) and can
/// refuse it. Memory: one part buffer ([`PART`]). Returns the digest and the new VersionId.
pub async fn upload_file(
    s3: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    check: impl FnOnce(&Hashed) -> Result<(), String>,
) -> Result<(Hashed, Option<String>), UploadError> {
    let read_err = |error| UploadError::Read { path: path.display().to_string(), error };
    let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
    let mut first = Vec::with_capacity(PART);
    let n = fill(&mut file, &mut first, PART).await.map_err(read_err)?;
    if n < PART {
        let hashed = Hashed { sha256: sha256_hex(&first), size: n as u64 };
        check(&hashed).map_err(UploadError::Refused)?;
        let put = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .content_type("application/octet-stream")
            .body(ByteStream::from(first))
            .send()
            .await
            .map_err(|e| AwsError::api("s3", "PutObject", e))?;
        return Ok((hashed, put.version_id().map(str::to_string)));
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .content_type("application/octet-stream")
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "CreateMultipartUpload", e))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_string();
    let result = upload_parts(s3, bucket, key, &upload_id, &mut file, first, check, read_err).await;
    if result.is_err() {
        // Best effort: the error that matters is the one already in hand.
        let _ = s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn upload_parts(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    file: &mut tokio::fs::File,
    first: Vec<u8>,
    check: impl FnOnce(&Hashed) -> Result<(), String>,
    read_err: impl Fn(std::io::Error) -> UploadError,
) -> Result<(Hashed, Option<String>), UploadError> {
    let mut running = Running::default();
    let mut parts = Vec::new();
    let mut chunk = first;
    for number in 1.. {
        running.update(&chunk);
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(chunk))
            .send()
            .await
            .map_err(|e| AwsError::api("s3", "UploadPart", e))?;
        parts.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build());
        let mut next = Vec::with_capacity(PART);
        let n = fill(file, &mut next, PART).await.map_err(&read_err)?;
        if n == 0 {
            break;
        }
        chunk = next;
    }
    let hashed = running.finish();
    check(&hashed).map_err(UploadError::Refused)?;
    let done = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "CompleteMultipartUpload", e))?;
    Ok((hashed, done.version_id().map(str::to_string)))
}

/// Read into `buf` until it holds `want` bytes or the input ends; returns the bytes read.
async fn fill(file: &mut tokio::fs::File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    buf.clear();
    (&mut *file).take(want as u64).read_to_end(buf).await
}

/// Put a small object (a sidecar) with SSE; returns its VersionId.
pub async fn put_small(s3: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<Option<String>, AwsError> {
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .content_type("text/plain")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "PutObject", e))?;
    Ok(put.version_id().map(str::to_string))
}

/// The current version of an object: its VersionId (`None` in an unversioned bucket) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub version_id: Option<String>,
    pub size: u64,
}

/// HEAD `key`: `Ok(None)` if there is no such object.
pub async fn head(s3: &Client, bucket: &str, key: &str) -> Result<Option<Head>, AwsError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(Head {
            version_id: out.version_id().filter(|v| *v != "null").map(str::to_string),
            size: out.content_length().unwrap_or(0).max(0) as u64,
        })),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
        Err(e) => Err(AwsError::api("s3", "HeadObject", e)),
    }
}

/// GET `key` at `version_id` (the current version if `None`): a streaming body.
pub async fn get(s3: &Client, bucket: &str, key: &str, version_id: Option<&str>) -> Result<ByteStream, AwsError> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| AwsError::api("s3", "GetObject", e))?;
    Ok(out.body)
}

/// The greatest key under `prefix` ending in `suffix` (keys carrying a sortable UTC stamp sort
/// newest last), through the ListObjectsV2 paginator.
pub async fn last_key_with_suffix(s3: &Client, bucket: &str, prefix: &str, suffix: &str) -> Result<Option<String>, AwsError> {
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut last: Option<String> = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::api("s3", "ListObjectsV2", e))?;
        for key in page.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(suffix)) {
            if last.as_deref().is_none_or(|l| key > l) {
                last = Some(key.to_string());
            }
        }
    }
    Ok(last)
}
