//! Carrying out one change against OpenBao. Every operation is idempotent: "already exists"
//! and "already gone" are success, so a re-run after any failure converges.

use super::client::{Bao, BaoError};
use super::resources::*;
use crate::diff::{Action, Change};
use crate::model::{Kind, Resource};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long to wait for OpenBao's asynchronous namespace deletion.
const NAMESPACE_DELETE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn apply_change(bao: &Bao, change: &Change) -> Result<(), BaoError> {
    if change.implied_by.is_some() {
        return Ok(()); // removed together with its container
    }
    match change.action {
        Action::Create => create(bao, change.after.as_ref().expect("create has after")).await,
        Action::Update => update(bao, change).await,
        Action::Replace => {
            delete(bao, change.before.as_ref().expect("replace has before")).await?;
            create(bao, change.after.as_ref().expect("replace has after")).await
        }
        Action::Delete => delete(bao, change.before.as_ref().expect("delete has before")).await,
    }
}

fn attrs<T: serde::de::DeserializeOwned>(r: &Resource) -> Result<T, BaoError> {
    from_attrs(&r.attrs).map_err(|e| BaoError::Other(format!("{}: malformed attributes: {e}", r.address)))
}

fn ns(r: &Resource) -> Option<&str> {
    r.scope.namespace()
}

async fn create(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    match r.kind {
        Kind::Namespace => {
            let a: NamespaceAttrs = attrs(r)?;
            bao.write(None, format!("sys/namespaces/{}", a.path), &json!({"custom_metadata": a.custom_metadata}))
                .await
                .map_err(|e| match e.to_string() {
                    m if m.contains(STRAY_MOUNT) => BaoError::Other(format!("{m}; {CRASH_LEFTOVER_REMEDY}")),
                    _ => e,
                })?;
        }
        Kind::KvMount => {
            let a: KvMountAttrs = attrs(r)?;
            let body = json!({"type": "kv", "description": a.description, "options": {"version": a.version.to_string()}});
            mount(bao, ns(r), &format!("sys/mounts/{}", a.path), &body).await?;
            write_kv_config(bao, r, &a).await?;
        }
        Kind::Policy => write_policy(bao, r).await?,
        Kind::AuthMount => {
            let a: AuthMountAttrs = attrs(r)?;
            let body = json!({"type": a.kind, "description": a.description});
            mount(bao, ns(r), &format!("sys/auth/{}", a.path), &body).await?;
        }
        Kind::AppRole => write_role(bao, r).await?,
        Kind::TransitMount => {
            let a: TransitMountAttrs = attrs(r)?;
            let body = json!({"type": "transit", "description": a.description});
            mount(bao, ns(r), &format!("sys/mounts/{}", a.path), &body).await?;
        }
        Kind::TransitKey => {
            let a: TransitKeyAttrs = attrs(r)?;
            bao.write(ns(r), format!("{}/keys/{}", a.mount, r.name), &json!({"type": a.key_type}))
                .await?;
            write_transit_key_config(bao, r, &a).await?;
        }
        Kind::RateLimitQuota => write_quota(bao, r).await?,
        other => return Err(BaoError::Other(format!("{}: {other:?} is not an OpenBao kind", r.address))),
    }
    Ok(())
}

/// Enable a mount. If the path is taken, it is fine only when it is this very mount (a
/// retried create: same type, ctl's marker); anything else is someone else's mount.
async fn mount(bao: &Bao, ns: Option<&str>, path: &str, body: &serde_json::Value) -> Result<(), BaoError> {
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

async fn update(bao: &Bao, change: &Change) -> Result<(), BaoError> {
    let r = change.after.as_ref().expect("update has after");
    let changed = |field: &str| change.fields.iter().any(|f| f.field == field);
    match r.kind {
        // POST on an existing namespace replaces its custom_metadata.
        Kind::Namespace | Kind::Policy | Kind::AppRole | Kind::RateLimitQuota => create(bao, r).await?,
        Kind::KvMount => {
            let a: KvMountAttrs = attrs(r)?;
            if changed("description") {
                tune(bao, ns(r), &format!("sys/mounts/{}/tune", a.path), &a.description).await?;
            }
            if ["max_versions", "cas_required", "delete_version_after"].iter().any(|f| changed(f)) {
                write_kv_config(bao, r, &a).await?;
            }
        }
        Kind::AuthMount => {
            let a: AuthMountAttrs = attrs(r)?;
            tune(bao, ns(r), &format!("sys/auth/{}/tune", a.path), &a.description).await?;
        }
        Kind::TransitMount => {
            let a: TransitMountAttrs = attrs(r)?;
            tune(bao, ns(r), &format!("sys/mounts/{}/tune", a.path), &a.description).await?;
        }
        Kind::TransitKey => {
            let a: TransitKeyAttrs = attrs(r)?;
            write_transit_key_config(bao, r, &a).await?;
        }
        other => return Err(BaoError::Other(format!("{}: {other:?} is not an OpenBao kind", r.address))),
    }
    Ok(())
}

async fn tune(bao: &Bao, ns: Option<&str>, path: &str, description: &str) -> Result<(), BaoError> {
    bao.write(ns, path, &json!({"description": description})).await.map(drop)
}

async fn write_kv_config(bao: &Bao, r: &Resource, a: &KvMountAttrs) -> Result<(), BaoError> {
    let body = json!({
        "max_versions": a.max_versions,
        "cas_required": a.cas_required,
        "delete_version_after": a.delete_version_after,
    });
    bao.write(ns(r), format!("{}/config", a.path), &body).await.map(drop)
}

async fn write_policy(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    let a: PolicyAttrs = attrs(r)?;
    bao.write(ns(r), format!("sys/policies/acl/{}", r.name), &json!({"policy": a.policy})).await.map(drop)
}

async fn write_role(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    let a: AppRoleAttrs = attrs(r)?;
    let body = json!({
        "token_policies": a.token_policies,
        "token_ttl": a.token_ttl,
        "token_max_ttl": a.token_max_ttl,
        "secret_id_ttl": a.secret_id_ttl,
        "secret_id_num_uses": a.secret_id_num_uses,
        "token_bound_cidrs": a.token_bound_cidrs,
        "secret_id_bound_cidrs": a.secret_id_bound_cidrs,
    });
    bao.write(ns(r), format!("auth/{}/role/{}", a.mount, r.name), &body).await.map(drop)
}

async fn write_transit_key_config(bao: &Bao, r: &Resource, a: &TransitKeyAttrs) -> Result<(), BaoError> {
    let body = json!({"auto_rotate_period": a.auto_rotate_period});
    bao.write(ns(r), format!("{}/keys/{}/config", a.mount, r.name), &body).await.map(drop)
}

async fn write_quota(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    let a: QuotaAttrs = attrs(r)?;
    let body = json!({
        "path": a.path,
        "rate": a.rate,
        "interval": a.interval,
        "block_interval": a.block_interval,
    });
    bao.write(None, format!("sys/quotas/rate-limit/{}", r.name), &body).await.map(drop)
}

async fn delete(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    match r.kind {
        Kind::Namespace => delete_namespace(bao, &r.name).await?,
        Kind::KvMount | Kind::TransitMount => {
            bao.delete(ns(r), format!("sys/mounts/{}", r.name)).await?;
        }
        Kind::AuthMount => {
            bao.delete(ns(r), format!("sys/auth/{}", r.name)).await?;
        }
        Kind::Policy => {
            bao.delete(ns(r), format!("sys/policies/acl/{}", r.name)).await?;
        }
        Kind::AppRole => {
            let a: AppRoleAttrs = attrs(r)?;
            bao.delete(ns(r), format!("auth/{}/role/{}", a.mount, r.name)).await?;
        }
        Kind::TransitKey => {
            let a: TransitKeyAttrs = attrs(r)?;
            let config = format!("{}/keys/{}/config", a.mount, r.name);
            match bao.write(ns(r), &config, &json!({"deletion_allowed": true})).await {
                Err(e) if e.is_not_found() => return Ok(()),
                other => other?,
            };
            bao.delete(ns(r), format!("{}/keys/{}", a.mount, r.name)).await?;
        }
        Kind::RateLimitQuota => {
            bao.delete(None, format!("sys/quotas/rate-limit/{}", r.name)).await?;
        }
        other => return Err(BaoError::Other(format!("{}: {other:?} is not an OpenBao kind", r.address))),
    }
    Ok(())
}

/// Resume the deletion of this environment's own namespaces that OpenBao left tainted (a
/// creation rolled back, or a deletion, interrupted by a leader crash: the new leader does not
/// pick it up). Re-issuing the DELETE finishes it. Returns the namespaces cleared.
pub async fn resume_stuck_deletions(bao: &Bao, environment: &str) -> Result<Vec<String>, BaoError> {
    let (_, unmanaged) = super::observe::namespaces(bao, environment).await?;
    let stuck_ones: Vec<String> =
        unmanaged.into_iter().filter(|u| u.reason == super::observe::STUCK_DELETION).map(|u| u.path).collect();
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
async fn delete_namespace(bao: &Bao, path: &str) -> Result<(), BaoError> {
    delete_namespace_until(bao, path, None, NAMESPACE_DELETE_TIMEOUT).await
}

/// OpenBao's refusal to create a namespace whose mounts it still holds from before a crash.
const STRAY_MOUNT: &str = "new namespace conflicts with existing mount";

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
