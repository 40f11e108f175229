//! A scratch OpenBao booted from a snapshot: the manifest's snapshot is downloaded and checked
//! (manifest + sidecar, as `dr rebuild` does), the seal key must be usable, and a private
//! `bao server` on loopback ([`crate::dev::Scratch`]) sealed by the same KMS key restores it and
//! unseals by itself. The live deployment is not touched. Dropping the [`Booted`] server stops
//! it and deletes its files, whatever happened.

use super::manifest::Manifest;
use super::rebuild::{fetch_verified, restore_into, seal_key_usable};
use super::snapshot::SNAPSHOT_FILE;
use super::DrError;
use crate::aws::Aws;
use crate::config::{AwsConnection, Environment};
use crate::dev::{AwsKmsSealConfig, Scratch};
use std::path::Path;
use std::time::{Duration, Instant};

/// A scratch server holding the snapshot, readable with the environment's own login.
pub struct Booted {
    pub scratch: Scratch,
    /// From the start of the download to an unsealed server.
    pub boot: Duration,
    /// What was checked, for the report.
    pub checks: Vec<String>,
}

/// How the scratch server reaches the seal key: the environment's AWS connection (the dev
/// stack's moto, or a region and optional endpoint, with credentials from the environment
/// `bao` inherits, as ctl's own).
fn seal_config(env: &Environment, kms_key_id: &str) -> Result<AwsKmsSealConfig, DrError> {
    match &env.aws {
        Some(AwsConnection::DevStack { dir }) => {
            let state = crate::dev::StackState::load(dir)?;
            let endpoint = state.moto_endpoint.ok_or_else(|| DrError::Refused(format!("the dev stack in {} has no moto (KMS)", dir.display())))?;
            Ok(crate::dev::moto_seal(&endpoint, kms_key_id))
        }
        Some(AwsConnection::Account { region, endpoint }) => Ok(AwsKmsSealConfig {
            region: region.clone(),
            kms_key_id: kms_key_id.to_string(),
            endpoint: endpoint.clone(),
            access_key: None,
            secret_key: None,
        }),
        None => Err(DrError::Refused(format!("{}: no aws: section; the snapshot and its seal key are in AWS", env.file.display()))),
    }
}

/// Boot a scratch server from `manifest`'s snapshot, in a private dir under `work`.
pub async fn boot(env: &Environment, manifest: &Manifest, aws: &Aws, work: &Path, bao_bin: &Path) -> Result<Booted, DrError> {
    if manifest.environment != env.name {
        return Err(DrError::Refused(format!("the manifest is for environment {:?}, not {:?}", manifest.environment, env.name)));
    }
    let Some(seal) = &manifest.seal else {
        return Err(DrError::Refused(
            "the manifest names no seal key (a shamir-sealed server): a scratch server could not unseal the snapshot without the unseal keys".into(),
        ));
    };
    let t = Instant::now();
    let mut checks = vec![seal_key_usable(aws, manifest).await?];
    let download = work.join(format!("download-{}", std::process::id()));
    let fetched = fetch_verified(aws, manifest, &download).await;
    let result = async {
        checks.push(fetched?);
        let scratch = Scratch::start(bao_bin, seal_config(env, &seal.kms_key_id)?, work).await?;
        restore_into(&scratch.addr, &download.join(SNAPSHOT_FILE), true).await.map_err(|e| match e {
            DrError::Other(m) => DrError::Other(format!("{m} (scratch server log: {})", scratch.log().display())),
            other => other,
        })?;
        checks.push(format!("restored into a scratch server at {}, unsealed by KMS key {}", scratch.addr, seal.kms_key_id));
        Ok::<_, DrError>(scratch)
    }
    .await;
    std::fs::remove_dir_all(&download).ok();
    Ok(Booted { scratch: result?, boot: t.elapsed(), checks })
}
