//! `ctl dr restore-workspace`: bring one workspace's KV secrets back from a snapshot without
//! rolling anyone else back.
//!
//! [`plan`] reads the workspace's KV mount in a scratch server booted from the snapshot
//! ([`super::scratch`]) and live, and decides per key ([`kv::decide`]): missing live, deleted or
//! destroyed since, or holding another value (compared by digest). [`apply`] writes the
//! snapshot's value back as a **new** version, check-and-set against the live version the plan
//! saw, and the key's custom metadata; it never deletes, destroys or rewrites a live version,
//! and writes nothing outside the workspace's namespace. A re-run compares again, so it
//! finishes what a failed run left and then does nothing.

use super::kv::{self, Decision, Live, Nanos, Source, Why};
use super::DrError;
use crate::config::Workspace;
use crate::openbao::client::{Bao, Idempotency};
use crate::openbao::journal;
use crate::openbao::resources::MOUNT_MARKER;
use crate::secret::Sensitive;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub struct Options {
    /// `--path` globs (none: every key).
    pub paths: Vec<String>,
    /// `--as-of`: the version in effect at this time instead of the snapshot's latest.
    pub as_of: Option<Nanos>,
    pub parallelism: usize,
}

/// One key of the workspace's mount, as the plan found it.
pub struct KeyPlan {
    pub key: String,
    pub source: Source,
    /// `None` when there is nothing to restore ([`Source`] other than a version).
    pub decision: Option<Decision>,
    value: Option<Sensitive<Value>>,
    custom_metadata: BTreeMap<String, String>,
}

/// What a restore would do.
pub struct RestorePlan {
    pub workspace: String,
    pub namespace: String,
    pub mount: String,
    /// Keys in the snapshot (after `--path`), with what happens to each.
    pub keys: Vec<KeyPlan>,
    /// Keys live that the snapshot does not have (left as they are).
    pub live_only: Vec<String>,
    /// Mount settings that differ between the snapshot and live (reported, not changed: the
    /// environment file declares them).
    pub notes: Vec<String>,
}

impl RestorePlan {
    /// Keys a restore writes (value or metadata).
    pub fn changes(&self) -> impl Iterator<Item = (&KeyPlan, &Decision)> {
        self.keys.iter().filter_map(|k| k.decision.as_ref().filter(|d| !d.is_noop()).map(|d| (k, d)))
    }

    /// Keys whose write would push old live versions out (max_versions): each needs
    /// `--allow-eviction KEY`.
    pub fn evictions(&self) -> Vec<(&str, &[u64])> {
        self.changes().filter(|(_, d)| !d.evicts.is_empty()).map(|(k, d)| (k.key.as_str(), d.evicts.as_slice())).collect()
    }
}

/// The workspace named `name` in the environment, or a refusal listing the names.
pub fn workspace<'a>(workspaces: &'a [Workspace], name: &str) -> Result<&'a Workspace, DrError> {
    workspaces.iter().find(|w| w.name == name).ok_or_else(|| {
        let names: Vec<&str> = workspaces.iter().map(|w| w.name.as_str()).take(20).collect();
        DrError::Refused(format!("no workspace {name:?} in the environment file (workspaces: {})", names.join(", ")))
    })
}

/// Whether namespace `ns` exists in `bao` and is ctl's for `environment`, and its KV mount
/// `mount` is ctl's: restores write only into what ctl manages.
async fn check_owned(bao: &Bao, environment: &str, ns: &str, mount: &str, side: &str) -> Result<(), DrError> {
    let (managed, unmanaged) = crate::openbao::observe::namespaces(bao, environment).await?;
    if !managed.iter().any(|m| m.path == ns) {
        let why = unmanaged.iter().find(|u| u.name == ns).map(|u| format!(": {}", u.reason)).unwrap_or_default();
        return Err(DrError::Refused(match side {
            "snapshot" => format!("the snapshot has no namespace {ns} managed by ctl for environment {environment}{why}: the workspace did not exist when it was taken; nothing was written"),
            _ => format!("namespace {ns} is not live (or not ctl's){why}: apply the environment first (`ctl plan` / `ctl apply` create the workspace), then restore its secrets; nothing was written"),
        }));
    }
    let mounts = bao.get(Some(ns), "sys/mounts").await?;
    let entry = crate::openbao::client::data(&mounts).and_then(|d| d.get(format!("{mount}/")));
    let marked = entry.and_then(|m| m.get("description")).and_then(Value::as_str).is_some_and(|d| d.starts_with(MOUNT_MARKER));
    let kv2 = entry.and_then(|m| m.pointer("/options/version")).and_then(Value::as_str) == Some("2");
    if !(marked && kv2) {
        return Err(DrError::Refused(format!(
            "{side}: {ns}/{mount}/ is {}; nothing was written",
            if entry.is_none() { "not mounted".to_string() } else { "not a KV v2 mount managed by ctl".to_string() }
        )));
    }
    Ok(())
}

/// Read the scratch (`snapshot`) and live, and decide per key.
pub async fn plan(snapshot: &Bao, live: &Bao, environment: &str, ws: &Workspace, opts: &Options) -> Result<RestorePlan, DrError> {
    let (ns, mount) = (ws.namespace.as_str(), ws.kv.path.as_str());
    check_owned(snapshot, environment, ns, mount, "snapshot").await?;
    check_owned(live, environment, ns, mount, "live").await?;
    let wanted = |k: &String| opts.paths.is_empty() || opts.paths.iter().any(|p| kv::glob_match(p, k));
    let (snap_keys, live_keys) = futures::try_join!(kv::list_keys(snapshot, ns, mount), kv::list_keys(live, ns, mount))?;
    let snap_keys: Vec<String> = snap_keys.into_iter().filter(wanted).collect();
    let live_only: Vec<String> = live_keys.into_iter().filter(|k| wanted(k) && snap_keys.binary_search(k).is_err()).collect();
    let ((snap_max, snap_cas), (live_max, live_cas)) = futures::try_join!(kv::mount_config(snapshot, ns, mount), kv::mount_config(live, ns, mount))?;
    let mut notes = Vec::new();
    if (snap_max, snap_cas) != (live_max, live_cas) {
        notes.push(format!(
            "mount settings differ: snapshot max_versions {snap_max}, cas_required {snap_cas}; live {live_max}, {live_cas} (left as declared)"
        ));
    }
    let par = opts.parallelism.max(1);
    let keys: Vec<Result<KeyPlan, DrError>> = stream::iter(snap_keys.iter().map(|key| async move {
        let meta = kv::read_meta(snapshot, ns, mount, key).await?.unwrap_or_default();
        let source = kv::source(&meta, opts.as_of);
        let Source::Version(v) = source else {
            return Ok(KeyPlan { key: key.clone(), source, decision: None, value: None, custom_metadata: BTreeMap::new() });
        };
        let value = kv::read_value(snapshot, ns, mount, key, Some(v))
            .await?
            .ok_or_else(|| DrError::Other(format!("{ns}/{mount}/{key}: version {v} is not readable in the snapshot")))?;
        let live_meta = kv::read_meta(live, ns, mount, key).await?;
        let live_state = match live_meta {
            None => Live::Missing,
            Some(meta) => {
                let current = match meta.current_readable() {
                    Some(_) => kv::read_value(live, ns, mount, key, None).await?.map(|v| kv::digest(v.expose())),
                    None => None,
                };
                Live::Present { meta, current }
            }
        };
        let decision = kv::decide(&meta, kv::digest(value.expose()), &live_state, live_max);
        Ok(KeyPlan { key: key.clone(), source, decision: Some(decision), value: Some(value), custom_metadata: meta.custom_metadata })
    }))
    .buffered(par)
    .collect()
    .await;
    Ok(RestorePlan {
        workspace: ws.name.clone(),
        namespace: ns.to_string(),
        mount: mount.to_string(),
        keys: keys.into_iter().collect::<Result<_, _>>()?,
        live_only,
        notes,
    })
}

/// How one key's restore ended.
pub struct Restored {
    pub key: String,
    /// The live version written (`None`: only the metadata was set).
    pub new_version: Option<u64>,
    pub result: Result<(), String>,
}

/// Write every change of `plan` to live, `parallelism` at a time, and record the restore in
/// the journal. Failures are per key: the others go on, and the caller reports them all.
pub async fn apply(live: &Bao, environment: &str, plan: &RestorePlan, parallelism: usize) -> Vec<Restored> {
    let (ns, mount) = (plan.namespace.as_str(), plan.mount.as_str());
    let results: Vec<Restored> = stream::iter(plan.changes().map(|(k, d)| async move {
        let mut new_version = None;
        let result: Result<(), String> = async {
            if let (Some((_, cas)), Some(value)) = (&d.write, &k.value) {
                let body = json!({ "options": { "cas": cas }, "data": value.expose() });
                let check = format!("the write may have happened; run the same restore again: it compares {}/{mount}/{} again", ns, k.key);
                let path = format!("{mount}/data/{}", k.key);
                let out = live
                    .call(&live.scoped(Some(ns)), rustify::enums::RequestMethod::POST, &path, Some(&body), Idempotency::Once { check: &check })
                    .await
                    .map_err(|e| {
                        if e.is_cas_mismatch() {
                            format!("{} changed while restoring (check-and-set against v{cas} failed); run the restore again", k.key)
                        } else {
                            e.to_string()
                        }
                    })?;
                new_version = crate::openbao::client::data(&out).and_then(|d| d.get("version")).and_then(Value::as_u64);
            }
            if d.metadata {
                live.write(Some(ns), format!("{mount}/metadata/{}", k.key), &json!({ "custom_metadata": k.custom_metadata }))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        .await;
        Restored { key: k.key.clone(), new_version, result }
    }))
    .buffered(parallelism.max(1))
    .collect()
    .await;
    let entry = journal::Entry {
        at: crate::openbao::state::now_secs(),
        actor: crate::openbao::state::actor(),
        event: "restore-workspace".into(),
        plan: None,
        git_commit: None,
        changes: results
            .iter()
            .map(|r| journal::ChangeRecord {
                address: format!("{}/{ns}/{mount}/{}", plan.workspace, r.key),
                action: match r.new_version {
                    Some(v) => format!("restore {} as v{v}", source_label(plan, &r.key)),
                    None => "restore custom_metadata".into(),
                },
                outcome: match &r.result {
                    Ok(()) => "done".into(),
                    Err(_) => "failed".into(),
                },
            })
            .collect(),
    };
    if !entry.changes.is_empty() {
        if let Err(e) = journal::record(live, environment, &entry).await {
            tracing::warn!(error = %e, "could not write the audit journal entry");
        }
    }
    results
}

fn source_label(plan: &RestorePlan, key: &str) -> String {
    match plan.keys.iter().find(|k| k.key == key).map(|k| &k.source) {
        Some(Source::Version(v)) => format!("snapshot v{v}"),
        _ => "snapshot".into(),
    }
}

/// One line per key for the plan: what happens and why, never a value or digest.
pub fn describe(k: &KeyPlan) -> Option<String> {
    let d = match (&k.source, &k.decision) {
        (Source::Version(_), Some(d)) => d,
        (Source::Absent(v), _) => return Some(format!("  . {}  (deleted in the snapshot at v{v}: nothing to bring back)", k.key)),
        (Source::Destroyed(v), _) => return Some(format!("  . {}  (v{v} was already destroyed when the snapshot was taken)", k.key)),
        (Source::NotYet, _) => return Some(format!("  . {}  (created after --as-of)", k.key)),
        _ => return None,
    };
    let Source::Version(v) = k.source else { return None };
    let mut extra = Vec::new();
    if !d.lost_since.is_empty() {
        extra.push(format!("v{} deleted or destroyed since the snapshot, left so", list(&d.lost_since)));
    }
    if !d.evicts.is_empty() {
        extra.push(format!("drops live v{} (max_versions)", list(&d.evicts)));
    }
    let extra = if extra.is_empty() { String::new() } else { format!("; {}", extra.join("; ")) };
    Some(match &d.write {
        Some((Why::Missing, _)) => format!("  + {}  missing live: recreate from snapshot v{v}{}{extra}", k.key, if d.metadata { " with its custom metadata" } else { "" }),
        Some((Why::Deleted(n), _)) => format!("  ~ {}  live v{n} is deleted: write snapshot v{v} as v{}{extra}", k.key, n + 1),
        Some((Why::Destroyed(n), _)) => format!("  ~ {}  live v{n} is destroyed: write snapshot v{v} as v{}{extra}", k.key, n + 1),
        Some((Why::Differs(n), _)) => format!("  ~ {}  live v{n} differs from snapshot v{v}: write it as v{}{extra}", k.key, n + 1),
        None if d.metadata => format!("  ~ {}  custom metadata differs: set the snapshot's{extra}", k.key),
        None if extra.is_empty() => return None,
        None => format!("  = {}  value as in snapshot v{v}{extra}", k.key),
    })
}

fn list(versions: &[u64]) -> String {
    versions.iter().map(u64::to_string).collect::<Vec<_>>().join(", v")
}

/// Parse `--as-of` (RFC 3339).
pub fn parse_as_of(s: &str) -> Result<Nanos, String> {
    kv::parse_time(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time (e.g. 2026-12-01T09:30:00Z)"))
}
