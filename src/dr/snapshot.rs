//! `ctl dr snapshot`: raft snapshot → S3 with a sidecar, RDS snapshots, manifest.

use super::manifest::{DbSnapshot, Manifest, RaftSnapshot, SealKey, FORMAT_VERSION};
use super::{census, stamp, DrError};
use crate::artifacts::{s3, sidecar};
use crate::aws::{Aws, AwsError};
use crate::config::{Connection, Dr, Environment};
use crate::openbao::Bao;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file name of the snapshot object (and the name its sidecar must carry).
pub const SNAPSHOT_FILE: &str = "raft.snap";
const MANIFEST_FILE: &str = "manifest.json";
/// Requests in flight while counting what the snapshot holds.
const CENSUS_PARALLELISM: usize = 32;
/// Versions the manifest names for `ctl dr verify-snapshot` to read back.
const CENSUS_SAMPLE: usize = 20;
/// How long to wait for RDS snapshots to become available.
const RDS_WAIT: Duration = Duration::from_secs(1800);

/// What `take` did.
#[derive(Debug)]
pub struct Taken {
    pub manifest: Manifest,
    /// `s3://bucket/key` of the manifest.
    pub manifest_url: String,
    /// The local copy.
    pub manifest_file: PathBuf,
}

/// The `dr:` section, or a refusal naming the file.
pub fn dr_config(env: &Environment) -> Result<&Dr, DrError> {
    env.dr.as_ref().ok_or_else(|| {
        DrError::Refused(format!("{}: no dr: section (dr: {{ bucket: NAME }}): there is nowhere to keep snapshots", env.file.display()))
    })
}

/// Take a raft snapshot (through `work`, a private directory), upload it with its sidecar,
/// snapshot every RDS instance of the environment, and write the manifest to S3 and to
/// `out_dir/<env>-<stamp>.manifest.json`.
pub async fn take(
    env: &Environment,
    bao: &Bao,
    aws: &Aws,
    work: &Path,
    out_dir: &Path,
    git_commit: Option<String>,
) -> Result<Taken, DrError> {
    let dr = dr_config(env)?;
    let created = super::now_unix();
    let stamp = stamp(created);
    let client = s3::client(aws);
    s3::ensure_bucket(aws, &client, &dr.bucket).await?;
    let base = format!("{}{}/{stamp}/", dr.prefix, env.name);
    let workspaces = crate::openbao::observe::namespaces(bao, &env.name).await?.0.len();

    std::fs::create_dir_all(work).map_err(|e| DrError::io(format!("creating {}", work.display()), e))?;
    let file = work.join(SNAPSHOT_FILE);
    let (before, sample) = census::count(bao, &env.name, CENSUS_PARALLELISM, CENSUS_SAMPLE).await?;
    let hashed = bao.raft_snapshot_save(&file).await?;
    let taken_unix = super::now_unix();
    let (after, _) = census::count(bao, &env.name, CENSUS_PARALLELISM, 0).await?;
    let key = format!("{base}{SNAPSHOT_FILE}");
    let expected = hashed.sha256.clone();
    let uploaded = s3::upload_file(&client, &dr.bucket, &key, &file, |h| {
        if h.sha256 == expected {
            Ok(())
        } else {
            Err(format!("the snapshot file changed on disk while uploading ({} ≠ {expected})", h.sha256))
        }
    })
    .await;
    std::fs::remove_file(&file).ok();
    let (_, version_id) = uploaded.map_err(|e| DrError::Other(format!("uploading the raft snapshot to s3://{}/{key}: {e}", dr.bucket)))?;
    let sidecar_key = crate::config::sidecar_key(&key);
    s3::put_small(&client, &dr.bucket, &sidecar_key, sidecar::format(&hashed.sha256, SNAPSHOT_FILE).into_bytes()).await?;

    let rds = snapshot_databases(env, aws, &stamp).await?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        environment: env.name.clone(),
        created_at: crate::alarms::mute::rfc3339(created as i64),
        git_commit,
        openbao: RaftSnapshot {
            bucket: dr.bucket.clone(),
            key,
            version_id,
            sidecar_key,
            sha256: hashed.sha256,
            size: hashed.size,
            taken_unix,
        },
        seal: seal_key(env, aws).await?,
        rds,
        workspaces,
        census: Some(census::Census { before, after, sample }),
    };
    let manifest_key = format!("{base}{MANIFEST_FILE}");
    s3::put_small(&client, &dr.bucket, &manifest_key, manifest.to_json().into_bytes()).await?;
    std::fs::create_dir_all(out_dir).map_err(|e| DrError::io(format!("creating {}", out_dir.display()), e))?;
    let manifest_file = out_dir.join(format!("{}-{stamp}.manifest.json", env.name));
    std::fs::write(&manifest_file, manifest.to_json())
        .map_err(|e| DrError::io(format!("writing {}", manifest_file.display()), e))?;
    Ok(Taken { manifest, manifest_url: format!("s3://{}/{manifest_key}", dr.bucket), manifest_file })
}

/// The seal's KMS key: the dev stack's (from its `stack.json`), or the `kms:` key named by
/// `openbao_cluster.seal_key`, resolved through its alias.
pub async fn seal_key(env: &Environment, aws: &Aws) -> Result<Option<SealKey>, DrError> {
    if let Connection::DevStack { dir } = &env.openbao {
        let state = crate::dev::StackState::load(dir)?;
        return Ok(state.kms_key_id.map(|kms_key_id| SealKey { kms_key_id }));
    }
    let Some(name) = env.kms_iam.openbao_cluster.as_ref().and_then(|c| c.seal_key.as_ref()) else {
        return Ok(None);
    };
    let Some(key) = env.kms_iam.kms_keys.get(name) else { return Ok(None) };
    let kms = crate::aws::client::kms(aws);
    let described = kms.describe_key().key_id(&key.alias).send().await.map_err(|e| AwsError::api("kms", "DescribeKey", e))?;
    Ok(described.key_metadata().map(|m| SealKey { kms_key_id: m.key_id().to_string() }))
}

/// A manual snapshot of the environment's DB instance (if any, and if it exists), waited for.
async fn snapshot_databases(env: &Environment, aws: &Aws, stamp: &str) -> Result<Vec<DbSnapshot>, DrError> {
    let Some(rds) = &env.infra.rds else { return Ok(Vec::new()) };
    let client = crate::aws::client::rds(aws);
    let exists = client.describe_db_instances().db_instance_identifier(&rds.identifier).send().await;
    match exists {
        Ok(out) if !out.db_instances().is_empty() => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_db_instance_not_found_fault()) => {
            tracing::warn!(instance = %rds.identifier, "no such DB instance: no RDS snapshot in this manifest");
            return Ok(Vec::new());
        }
        Err(e) => return Err(AwsError::api("rds", "DescribeDBInstances", e).into()),
        Ok(_) => return Ok(Vec::new()),
    }
    let id = format!("{}-ctl-{}", rds.identifier, stamp.to_ascii_lowercase());
    client
        .create_db_snapshot()
        .db_instance_identifier(&rds.identifier)
        .db_snapshot_identifier(&id)
        .send()
        .await
        .map_err(|e| AwsError::api("rds", "CreateDBSnapshot", e))?;
    let deadline = tokio::time::Instant::now() + RDS_WAIT;
    loop {
        let out = client
            .describe_db_snapshots()
            .db_snapshot_identifier(&id)
            .send()
            .await
            .map_err(|e| AwsError::api("rds", "DescribeDBSnapshots", e))?;
        if let Some(s) = out.db_snapshots().first().filter(|s| s.status() == Some("available")) {
            return Ok(vec![DbSnapshot {
                instance: rds.identifier.clone(),
                snapshot: id,
                encrypted: s.encrypted().unwrap_or(false),
                kms_key_id: s.kms_key_id().map(str::to_string),
            }]);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DrError::Other(format!("RDS snapshot {id} not available after {} s", RDS_WAIT.as_secs())));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
