//! What the OpenBao kinds' handlers ([`super::kinds`]) share, `ctl adopt`, and the namespace
//! deletion and digest recording around an apply. Every operation is idempotent: "already exists"
//! and "already gone" are success, so a re-run after any failure converges.
//!
//! Every create is create-only: an object found at the target that is not ctl's (a namespace
//! without this environment's marker, a policy without its marker line, a role, key or quota
//! the namespace does not record) stops the change with [`not_owned`]; nothing is written.
//! Objects without a marker field get their record (see [`record_key`]) before they are
//! created and lose it after they are deleted, so a failure in between leaves a record of an
//! absent object (harmless: the next apply creates it), never an unrecorded object of ctl's.

use super::client::{Bao, BaoError};
use super::resources::*;
use crate::model::{Kind, Resource};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long to wait for OpenBao's asynchronous namespace deletion.
const NAMESPACE_DELETE_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn attrs<T: serde::de::DeserializeOwned>(r: &Resource) -> Result<T, BaoError> {
    from_attrs(&r.attrs).map_err(|e| BaoError::Other(format!("{}: malformed attributes: {e}", r.address)))
}

pub(super) fn ns(r: &Resource) -> Option<&str> {
    r.scope.namespace()
}

/// Enable a mount. If the path is taken, it is fine only when it is this very mount (a
/// retried create: same type, ctl's marker); anything else is someone else's mount.
pub(super) async fn mount(bao: &Bao, ns: Option<&str>, path: &str, body: &serde_json::Value) -> Result<(), BaoError> {
    match bao.write(ns, path, body).await {
        Err(e) if e.is_already_in_use() => {
            let existing = bao.read(ns, path).await?;
            // sys/mounts/<path> answers with the fields both at the top level and under data.
            let existing = existing.as_ref().map(|b| b.get("data").unwrap_or(b));
            let field = |k: &str| existing.and_then(|d| d.get(k)).and_then(|v| v.as_str()).unwrap_or_default();
            if field("type") == body["type"].as_str().unwrap_or_default()
                && field("description") == body["description"].as_str().unwrap_or_default()
            {
                Ok(())
            } else {
                Err(BaoError::Other(format!(
                    "{path}{}: the path is already used by a {:?} mount that ctl does not manage; remove or move it, then re-run",
                    ns.map(|n| format!(" (namespace {n})")).unwrap_or_default(),
                    field("type")
                )))
            }
        }
        other => other.map(drop),
    }
}

/// The error for an object at a create's target that ctl does not own.
pub(super) fn not_owned(r: &Resource, what: &str) -> BaoError {
    BaoError::Other(format!(
        "{}: {what}; it is not ctl's, so nothing was written. Remove or rename it, or take it over with `ctl adopt {}`",
        r.address, r.address
    ))
}

/// The namespace whose custom_metadata records `r` (quotas live at the root, recorded in
/// their workspace's namespace).
fn record_namespace(r: &Resource) -> Result<String, BaoError> {
    match (&r.scope, r.kind) {
        (_, Kind::RateLimitQuota) => Ok(attrs::<QuotaAttrs>(r)?.path.trim_end_matches('/').to_string()),
        (crate::model::Scope::Namespace(n), _) => Ok(n.clone()),
        (crate::model::Scope::Root, _) => Err(BaoError::Other(format!("{}: no namespace to record it in", r.address))),
    }
}

/// Before creating an object that has no marker field at `path`: refuse if something that
/// the namespace does not record as `r` is there, then record `r` (idempotent).
pub(super) async fn claim(bao: &Bao, r: &Resource, path: &str) -> Result<(), BaoError> {
    let namespace = record_namespace(r)?;
    let key = record_key(r);
    let (existing, meta) = futures::try_join!(
        bao.read(ns(r), path),
        bao.read(None, format!("sys/namespaces/{namespace}"))
    )?;
    let recorded = meta
        .as_ref()
        .and_then(|m| m.pointer("/data/custom_metadata"))
        .and_then(|m| m.get(&key))
        .and_then(|v| v.as_str())
        == Some(r.address.as_str());
    if existing.is_some() && !recorded {
        return Err(not_owned(r, &format!("{path} already exists and ctl has no record of creating it")));
    }
    if !recorded {
        let record = BTreeMap::from([(key, r.address.to_string())]);
        patch_metadata(bao, &namespace, &record, &BTreeMap::new()).await?;
    }
    Ok(())
}

/// `ctl adopt`: make the object that collides with the declared `want` ctl's by writing
/// ctl's marker only (namespace metadata keys, a policy's marker line, a mount's description,
/// a record), never its values: the next plan shows how it differs from the declaration.
/// Refuses when the object is not of the declared kind (a transit mount where KV is declared).
pub async fn adopt(bao: &Bao, want: &Resource) -> Result<(), BaoError> {
    match want.kind {
        Kind::Namespace => {
            let a: NamespaceAttrs = attrs(want)?;
            let marker: BTreeMap<String, String> = a
                .custom_metadata
                .into_iter()
                .filter(|(k, _)| [MANAGED_BY_KEY, "environment", "workspace"].contains(&k.as_str()))
                .collect();
            patch_metadata(bao, &a.path, &marker, &BTreeMap::new()).await
        }
        Kind::Policy => {
            let path = format!("sys/policies/acl/{}", want.name);
            let body = bao.read(ns(want), &path).await?;
            let live = super::client::data(&body).ok_or_else(|| not_found(want))?;
            let text = live.get("policy").and_then(|v| v.as_str()).unwrap_or_default();
            let version = live.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
            let body_text = if text.starts_with(POLICY_MARKER) { text.split_once('\n').map_or("", |(_, b)| b) } else { text };
            let marked = format!("{POLICY_MARKER}{}\n{body_text}", want.address);
            bao.write(ns(want), &path, &json!({"policy": marked, "cas": version})).await.map(drop)
        }
        Kind::KvMount | Kind::TransitMount | Kind::AuthMount => {
            let (section, expected) = match want.kind {
                Kind::KvMount => ("mounts", "kv"),
                Kind::TransitMount => ("mounts", "transit"),
                _ => ("auth", want.attrs.get("type").and_then(|v| v.as_str()).unwrap_or_default()),
            };
            let path = format!("sys/{section}/{}", want.name);
            let live = bao.read(ns(want), &path).await?.ok_or_else(|| not_found(want))?;
            let live = live.get("data").unwrap_or(&live);
            let kind = live.get("type").and_then(|v| v.as_str()).unwrap_or_default();
            if kind != expected {
                return Err(BaoError::Other(format!(
                    "{}: the mount there is of type {kind:?}, not {expected:?}; it cannot be adopted as declared",
                    want.address
                )));
            }
            let description = want.attrs.get("description").and_then(|v| v.as_str()).unwrap_or_default();
            tune(bao, ns(want), &format!("{path}/tune"), description).await
        }
        Kind::AppRole | Kind::TransitKey | Kind::RateLimitQuota => {
            let record = BTreeMap::from([(record_key(want), want.address.to_string())]);
            patch_metadata(bao, &record_namespace(want)?, &record, &BTreeMap::new()).await
        }
        other => Err(BaoError::Other(format!("{}: {other:?} is not an OpenBao kind", want.address))),
    }
}

fn not_found(r: &Resource) -> BaoError {
    BaoError::Other(format!("{}: nothing to adopt there any more", r.address))
}

/// After deleting an object that has no marker field: drop its record.
pub(super) async fn unrecord(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    let namespace = record_namespace(r)?;
    if bao.read(None, format!("sys/namespaces/{namespace}")).await?.is_none() {
        return Ok(()); // the namespace, and the record with it, is gone
    }
    patch_metadata(bao, &namespace, &BTreeMap::new(), &BTreeMap::from([(record_key(r), String::new())])).await
}

/// Merge-patch a namespace's custom_metadata: `set` these keys, remove the keys of `remove`.
/// Other keys (ctl's ownership records) stay as they are.
pub(super) async fn patch_metadata(
    bao: &Bao,
    namespace: &str,
    set: &BTreeMap<String, String>,
    remove: &BTreeMap<String, String>,
) -> Result<(), BaoError> {
    let mut meta = serde_json::Map::new();
    for k in remove.keys() {
        meta.insert(k.clone(), serde_json::Value::Null);
    }
    for (k, v) in set {
        meta.insert(k.clone(), json!(v));
    }
    bao.patch(None, format!("sys/namespaces/{namespace}"), &json!({"custom_metadata": meta})).await.map(drop)
}

pub(super) async fn tune(bao: &Bao, ns: Option<&str>, path: &str, description: &str) -> Result<(), BaoError> {
    bao.write(ns, path, &json!({"description": description})).await.map(drop)
}

/// Resume the deletion of this environment's own namespaces that OpenBao left tainted (a
/// creation rolled back, or a deletion, interrupted by a leader crash: the new leader does not
/// pick it up). Re-issuing the DELETE finishes it. Returns the namespaces cleared.
pub async fn resume_stuck_deletions(bao: &Bao, environment: &str) -> Result<Vec<String>, BaoError> {
    let (_, unmanaged) = super::observe::namespaces(bao, environment).await?;
    let stuck_ones: Vec<String> =
        unmanaged.into_iter().filter(|u| u.reason == crate::model::UnmanagedReason::StuckDeletion).map(|u| u.name).collect();
    // All at once; right after a failover the new leader may accept a DELETE and still not
    // run it, so each is re-issued until the namespace is gone (or STUCK_DELETE_TIMEOUT).
    let results = futures::future::join_all(stuck_ones.iter().map(|path| async move {
        tracing::warn!(namespace = %path, "resuming an interrupted deletion of one of ctl's namespaces");
        delete_namespace_until(bao, path, Some(REISSUE_STUCK_DELETE), STUCK_DELETE_TIMEOUT).await
    }))
    .await;
    let mut cleared = Vec::new();
    let mut stuck = Vec::new();
    for (path, result) in stuck_ones.into_iter().zip(results) {
        match result {
            Ok(()) => cleared.push(path),
            Err(e) => stuck.push(e.to_string()),
        }
    }
    if stuck.is_empty() {
        Ok(cleared)
    } else {
        Err(BaoError::Other(format!("{}; {CRASH_LEFTOVER_REMEDY}", stuck.join("; "))))
    }
}

/// Namespace deletion is asynchronous in OpenBao: wait until it is really gone, so a
/// following create of the same name (a replace, or the next apply) does not collide.
pub(super) async fn delete_namespace(bao: &Bao, path: &str) -> Result<(), BaoError> {
    delete_namespace_until(bao, path, None, NAMESPACE_DELETE_TIMEOUT).await
}

/// OpenBao's refusal to create a namespace whose mounts it still holds from before a crash.
pub(super) const STRAY_MOUNT: &str = "new namespace conflicts with existing mount";

/// What clears OpenBao's crash leftovers (a namespace deletion the active node dropped, a
/// stray mount of a deleted namespace): the next active node reloads the mount table from
/// storage and re-runs interrupted deletions. Observed in `tests/it/cluster.rs`.
pub const CRASH_LEFTOVER_REMEDY: &str = "this is an OpenBao leftover from a leader crash: \
    step the active node down (`bao operator step-down`), wait for a new leader, re-run \
    (runbooks/leader_failover.md)";

/// How often a stuck (tainted) namespace's DELETE is sent again while waiting for it.
const REISSUE_STUCK_DELETE: Duration = Duration::from_secs(5);
/// How long ctl keeps trying to finish one such deletion before reporting it.
const STUCK_DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// DELETE `path` and wait until it is gone (at most `timeout`), sending the DELETE again every
/// `reissue` if set.
async fn delete_namespace_until(bao: &Bao, path: &str, reissue: Option<Duration>, timeout: Duration) -> Result<(), BaoError> {
    bao.delete(None, format!("sys/namespaces/{path}")).await?;
    let started = Instant::now();
    let mut sent = Instant::now();
    let mut wait = Duration::from_millis(50);
    loop {
        if bao.read(None, format!("sys/namespaces/{path}")).await?.is_none() {
            return Ok(());
        }
        if reissue.is_some_and(|every| sent.elapsed() >= every) {
            bao.delete(None, format!("sys/namespaces/{path}")).await?;
            sent = Instant::now();
        }
        if started.elapsed() > timeout {
            return Err(BaoError::Other(format!(
                "namespace {path} still exists {}s after DELETE; OpenBao is still removing it, re-run later",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// After an apply that left the environment as declared: record in each of ctl's workspace
/// namespaces the digest of its desired state ([`DIGEST_KEY`]) where it differs, so a later
/// `ctl plan --refresh changed` reads only the workspaces whose declaration moved. Returns how
/// many were written.
pub async fn record_digests(bao: &Bao, environment: &str, digests: &BTreeMap<String, String>, parallelism: usize) -> Result<usize, BaoError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let (managed, _) = super::observe::namespaces(bao, environment).await?;
    let stale: Vec<(String, &String)> = managed
        .into_iter()
        .filter_map(|m| digests.get(&m.workspace).filter(|d| m.digest.as_ref() != Some(*d)).map(|d| (m.path, d)))
        .collect();
    let n = stale.len();
    stream::iter(stale.into_iter().map(|(ns, d)| async move {
        patch_metadata(bao, &ns, &BTreeMap::from([(DIGEST_KEY.to_string(), d.clone())]), &BTreeMap::new()).await
    }))
    .buffer_unordered(parallelism.max(1))
    .try_collect::<Vec<_>>()
    .await?;
    Ok(n)
}
