//! ctl's own state inside the deployment: a KV v2 mount `ctl-state/` in the root namespace
//! holding apply locks and the audit journal. Nothing secret is ever written there.

use super::client::{data, Bao, BaoError};
use super::resources::MOUNT_MARKER;
use serde_json::{json, Value};

pub const STATE_MOUNT: &str = "ctl-state";

/// Enable the state mount if it is missing (idempotent). `ctl bootstrap` creates it, so ctl's
/// own policy only needs to read its settings; an admin token creates it on first use.
pub async fn ensure_mount(bao: &Bao) -> Result<(), BaoError> {
    if bao.read(None, format!("{STATE_MOUNT}/config")).await?.is_some() {
        return Ok(());
    }
    let body = json!({"type": "kv", "options": {"version": "2"}, "description": format!("{MOUNT_MARKER}state (apply locks, audit journal)")});
    match bao.write(None, format!("sys/mounts/{STATE_MOUNT}"), &body).await {
        Err(e) if e.is_already_in_use() => return Ok(()),
        other => other.map(drop)?,
    }
    // A new mount is not usable at once everywhere: a standby may not route it yet (404) and
    // KV v2 upgrades its storage first (400, retried by the client). Wait until it answers.
    let started = std::time::Instant::now();
    loop {
        if bao.read(None, format!("{STATE_MOUNT}/config")).await?.is_some() {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            return Err(BaoError::Other(format!("the new {STATE_MOUNT}/ mount did not become usable within 30s")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A KV v2 document and its version (0 when absent), for check-and-set.
pub struct Versioned {
    pub data: Option<Value>,
    pub version: u64,
}

pub async fn read(bao: &Bao, key: &str) -> Result<Versioned, BaoError> {
    let body = bao.read(None, format!("{STATE_MOUNT}/data/{key}")).await?;
    let Some(d) = data(&body) else { return Ok(Versioned { data: None, version: 0 }) };
    let version = d.pointer("/metadata/version").and_then(Value::as_u64).unwrap_or(0);
    let deleted = d.pointer("/metadata/deletion_time").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    Ok(Versioned { data: if deleted { None } else { d.get("data").cloned() }, version })
}

/// Outcome of a check-and-set write.
#[derive(Debug, PartialEq, Eq)]
pub enum Cas {
    Written { version: u64 },
    /// Someone else wrote first.
    Lost,
}

/// A check-and-set write is safe to resend (the server applies it at most once), but a resend
/// after an unseen success loses to itself: a lost write whose document is now exactly ours
/// (documents carry unique ids and timestamps) was written by us.
pub async fn write_cas(bao: &Bao, key: &str, cas: u64, doc: &Value) -> Result<Cas, BaoError> {
    let body = json!({"options": {"cas": cas}, "data": doc});
    match bao.write(None, format!("{STATE_MOUNT}/data/{key}"), &body).await {
        Ok(reply) => Ok(Cas::Written {
            version: data(&reply).and_then(|d| d.get("version")).and_then(Value::as_u64).unwrap_or(cas + 1),
        }),
        Err(e) if e.status() == Some(400) && e.to_string().contains("check-and-set") => match read(bao, key).await? {
            now if now.version == cas + 1 && now.data.as_ref() == Some(doc) => Ok(Cas::Written { version: now.version }),
            _ => Ok(Cas::Lost),
        },
        Err(e) => Err(e),
    }
}

pub async fn list(bao: &Bao, prefix: &str) -> Result<Vec<String>, BaoError> {
    bao.list(None, format!("{STATE_MOUNT}/metadata/{prefix}")).await
}

pub async fn destroy(bao: &Bao, key: &str) -> Result<(), BaoError> {
    bao.delete(None, format!("{STATE_MOUNT}/metadata/{key}")).await.map(drop)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Who is acting: the CI run when there is one, else user@host.
pub fn actor() -> String {
    if let (Ok(repo), Ok(run)) = (std::env::var("GITHUB_REPOSITORY"), std::env::var("GITHUB_RUN_ID")) {
        return format!("github:{repo}#{run}");
    }
    if let (Ok(project), Ok(job)) = (std::env::var("CI_PROJECT_PATH"), std::env::var("CI_JOB_ID")) {
        return format!("gitlab:{project}#{job}");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}
