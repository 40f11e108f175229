//! The apply lock: one KV v2 document per environment in `ctl-state/`, taken and renewed with
//! check-and-set, so two applies can never both believe they hold it. Planning takes no lock.
//! The holder renews (heartbeat) every third of the TTL; a crashed holder's lock expires.

use super::client::{Bao, BaoError};
use super::state::{self, Cas};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    pub id: String,
    pub owner: String,
    pub acquired_at: u64,
    pub expires_at: u64,
    #[serde(default)]
    pub plan: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment {environment} is locked by {owner} (lock {id}, expires in {expires_in}s); waited {waited}s. If that apply is dead, `ctl lock break --id {id}`")]
    Held { environment: String, owner: String, id: String, expires_in: u64, waited: u64 },
    #[error("the lock was lost while applying (someone broke it, or heartbeats failed)")]
    Lost,
    #[error("no lock {id} on environment {environment} (current: {current})")]
    NotFound { environment: String, id: String, current: String },
    #[error(transparent)]
    Bao(#[from] BaoError),
}

fn key(environment: &str) -> String {
    format!("locks/{environment}")
}

fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(state::now_secs());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The current holder, if the lock is held and not expired.
pub async fn status(bao: &Bao, environment: &str) -> Result<Option<LockInfo>, LockError> {
    let doc = state::read(bao, &key(environment)).await?;
    Ok(doc
        .data
        .and_then(|d| serde_json::from_value::<LockInfo>(d).ok())
        .filter(|l| l.expires_at > state::now_secs()))
}

/// A held lock. Call [`Held::heartbeat`] while working and [`Held::release`] at the end.
pub struct Held<'a> {
    bao: &'a Bao,
    environment: String,
    pub info: LockInfo,
    version: u64,
    ttl: Duration,
}

/// Take the lock, waiting up to `wait` for another holder to finish.
pub async fn acquire<'a>(
    bao: &'a Bao,
    environment: &str,
    owner: &str,
    plan: Option<String>,
    ttl: Duration,
    wait: Duration,
) -> Result<Held<'a>, LockError> {
    state::ensure_mount(bao).await?;
    let started = std::time::Instant::now();
    loop {
        let doc = state::read(bao, &key(environment)).await?;
        let now = state::now_secs();
        let current = doc.data.as_ref().and_then(|d| serde_json::from_value::<LockInfo>(d.clone()).ok());
        match current {
            Some(other) if other.expires_at > now => {
                if started.elapsed() >= wait {
                    return Err(LockError::Held {
                        environment: environment.to_string(),
                        owner: other.owner,
                        id: other.id,
                        expires_in: other.expires_at - now,
                        waited: started.elapsed().as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_secs(1).min(wait.saturating_sub(started.elapsed()))).await;
            }
            _ => {
                let info = LockInfo {
                    id: new_id(),
                    owner: owner.to_string(),
                    acquired_at: now,
                    expires_at: now + ttl.as_secs(),
                    plan: plan.clone(),
                };
                let doc_value = serde_json::to_value(&info).expect("lock info serializes");
                if let Cas::Written { version } = state::write_cas(bao, &key(environment), doc.version, &doc_value).await? {
                    tracing::info!(environment, id = %info.id, owner, "apply lock acquired");
                    return Ok(Held { bao, environment: environment.to_string(), info, version, ttl });
                }
                // Someone else took it between our read and write: look again.
            }
        }
    }
}

impl Held<'_> {
    /// Extend the lock (check-and-set on our own version).
    pub async fn renew(&mut self) -> Result<(), LockError> {
        let mut info = self.info.clone();
        info.expires_at = state::now_secs() + self.ttl.as_secs();
        let doc = serde_json::to_value(&info).expect("lock info serializes");
        match state::write_cas(self.bao, &key(&self.environment), self.version, &doc).await? {
            Cas::Written { version } => {
                self.version = version;
                self.info = info;
                Ok(())
            }
            Cas::Lost => Err(LockError::Lost),
        }
    }

    /// Renew every third of the TTL until `done` resolves.
    pub async fn heartbeat(&mut self, done: tokio::sync::watch::Receiver<bool>) -> Result<(), LockError> {
        let mut done = done;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.ttl / 3) => self.renew().await?,
                _ = done.changed() => return Ok(()),
            }
        }
    }

    pub async fn release(self) -> Result<(), LockError> {
        // Only if it is still ours.
        let doc = state::read(self.bao, &key(&self.environment)).await?;
        if doc.version == self.version {
            state::destroy(self.bao, &key(&self.environment)).await?;
        }
        Ok(())
    }
}

/// Remove a lock by id (for a dead holder). Returns what was removed.
pub async fn break_lock(bao: &Bao, environment: &str, id: &str) -> Result<LockInfo, LockError> {
    let doc = state::read(bao, &key(environment)).await?;
    let current = doc.data.and_then(|d| serde_json::from_value::<LockInfo>(d).ok());
    match current {
        Some(info) if info.id == id => {
            state::destroy(bao, &key(environment)).await?;
            Ok(info)
        }
        other => Err(LockError::NotFound {
            environment: environment.to_string(),
            id: id.to_string(),
            current: other.map(|l| format!("{} held by {}", l.id, l.owner)).unwrap_or_else(|| "none".into()),
        }),
    }
}
