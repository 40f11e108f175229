//! Reading live state. Ownership is decided here and only here:
//! - a namespace is ctl's when its custom_metadata says `managed-by: ctl` and names this
//!   environment; anything else is reported as unmanaged and never touched;
//! - inside a managed namespace, a mount is ctl's when its description carries the marker with
//!   its address, a policy when its first line does;
//! - objects with no field for a marker (AppRole roles, transit keys, the workspace's quota)
//!   are ctl's when the namespace's custom_metadata records them (`ctl-owns/…`, see
//!   [`record_key`]); others inside ctl's mounts are reported as unmanaged and never touched.

use super::client::{data, Bao, BaoError, Idempotency};
use super::resources::*;
use crate::model::{Address, Kind, Observed, Resource, Unmanaged, UnmanagedReason};
use futures::stream::{self, StreamExt, TryStreamExt};
use futures::FutureExt;
use rustify::enums::RequestMethod;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub struct ObserveOptions<'a> {
    pub environment: &'a str,
    /// Only these workspaces (a saved plan's re-read); `None` reads all.
    pub only: Option<&'a BTreeSet<String>>,
    /// The namespace listing ([`namespaces`]) when the caller already made it (a trusting
    /// plan decides what to read from it), so it is not listed twice.
    pub listed: Option<&'a Listing>,
    pub parallelism: usize,
}

/// What one LIST of `sys/namespaces` found: this environment's namespaces, and the others.
pub type Listing = (Vec<ManagedNamespace>, Vec<Unmanaged>);

/// A namespace ctl manages, with the workspace it belongs to.
#[derive(Debug, Clone)]
pub struct ManagedNamespace {
    pub workspace: String,
    pub path: String,
    /// The declared metadata (ownership records left out).
    pub custom_metadata: BTreeMap<String, String>,
    /// Ownership records: [`record_key`] → address.
    pub records: BTreeMap<String, String>,
    /// The digest of the workspace's desired state as last applied ([`DIGEST_KEY`]).
    pub digest: Option<String>,
}

impl ManagedNamespace {
    fn owns(&self, r: &Resource) -> bool {
        self.records.get(&record_key(r)).map(String::as_str) == Some(r.address.as_str())
    }
}

pub async fn observe(bao: &Bao, opts: &ObserveOptions<'_>) -> Result<Observed, BaoError> {
    let wanted = |m: &ManagedNamespace| opts.only.is_none_or(|only| only.contains(&m.workspace));
    // A listing already made is copied only as far as it is read.
    let (managed, mut unmanaged): Listing = match opts.listed {
        Some((managed, unmanaged)) => (managed.iter().filter(|m| wanted(m)).cloned().collect(), unmanaged.clone()),
        None => {
            let (managed, unmanaged) = namespaces(bao, opts.environment).await?;
            (managed.into_iter().filter(wanted).collect(), unmanaged)
        }
    };

    let per_ws: Vec<(Vec<Resource>, Vec<Unmanaged>)> = stream::iter(managed.iter())
        .map(|m| observe_workspace(bao, m))
        .buffer_unordered(opts.parallelism.max(1))
        .try_collect()
        .await?;

    let mut resources: Vec<Resource> = Vec::new();
    for (r, u) in per_ws {
        resources.extend(r);
        unmanaged.extend(u);
    }
    // A quota is this environment's only if its workspace's namespace is.
    let ours: BTreeMap<&str, &ManagedNamespace> = managed.iter().map(|m| (m.workspace.as_str(), m)).collect();
    // Quotas live in the root namespace only; a ctl working inside a namespace manages none
    // (`cli::context::plan_with` refuses declared ones).
    let (q, u) = if bao.namespace().is_none() { quotas(bao, opts.parallelism, &ours).await? } else { Default::default() };
    resources.extend(q);
    unmanaged.extend(u);
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    unmanaged.sort();
    Ok(Observed { resources, unmanaged })
}

/// All namespaces at the root, split into ctl's (for this environment) and the rest.
pub async fn namespaces(bao: &Bao, environment: &str) -> Result<Listing, BaoError> {
    let body = match bao.call(&bao.scoped(None), RequestMethod::LIST, "sys/namespaces", None, Idempotency::Idempotent).await {
        Err(e) if e.is_not_found() => None,
        other => other?,
    };
    let mut managed = Vec::new();
    let mut unmanaged = Vec::new();
    let Some(info) = data(&body).and_then(|d| d.get("key_info")).and_then(Value::as_object) else {
        return Ok((managed, unmanaged));
    };
    for (key, ns) in info {
        let path = key.trim_end_matches('/').to_string();
        let meta: BTreeMap<String, String> = ns
            .get("custom_metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let tainted = ns.get("tainted").and_then(Value::as_bool).unwrap_or(false);
        let ours = meta.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
            && meta.get("environment").map(String::as_str) == Some(environment);
        let reason = if tainted && ours {
            Some(UnmanagedReason::StuckDeletion)
        } else if tainted {
            Some(UnmanagedReason::DeletionInProgress)
        } else if meta.get(MANAGED_BY_KEY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            Some(UnmanagedReason::no_marker(format!("custom_metadata has no {MANAGED_BY_KEY}: {MANAGED_BY_VALUE}")))
        } else {
            match meta.get("environment") {
                Some(env) if env != environment => Some(UnmanagedReason::OtherEnvironment { environment: env.clone() }),
                _ => None,
            }
        };
        match reason {
            Some(reason) => unmanaged.push(Unmanaged::root(Kind::Namespace, path, reason)),
            None => {
                let mut meta = meta;
                let digest = meta.remove(DIGEST_KEY);
                let (records, declared): (BTreeMap<_, _>, BTreeMap<_, _>) = meta.into_iter().partition(|(k, _)| k.starts_with(RECORD_PREFIX));
                managed.push(ManagedNamespace {
                    workspace: declared.get("workspace").cloned().unwrap_or_else(|| path.clone()),
                    path,
                    custom_metadata: declared,
                    records,
                    digest,
                })
            }
        }
    }
    Ok((managed, unmanaged))
}

fn marked_address(description: &str, marker: &str) -> Option<Address> {
    description.lines().next()?.strip_prefix(marker).map(|a| Address::new(a.trim()))
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn secs_of(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s
            .parse::<crate::config::Duration>()
            .map(|d| d.to_string())
            .unwrap_or_else(|_| s.clone()),
        Some(other) => duration(other.as_u64().unwrap_or(0)),
        None => duration(0),
    }
}

fn sorted_strings(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = match v.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) if !s.is_empty() => s.split(',').map(|p| p.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

async fn observe_workspace(
    bao: &Bao,
    m: &ManagedNamespace,
) -> Result<(Vec<Resource>, Vec<Unmanaged>), BaoError> {
    let ns = Some(m.path.as_str());
    let b = WorkspaceBuilder { workspace: &m.workspace, namespace: &m.path };
    let mut out = vec![b.namespace(&NamespaceAttrs {
        path: m.path.clone(),
        custom_metadata: m.custom_metadata.clone(),
    })];
    let mut unmanaged = Vec::new();

    // `sys/mounts` and `sys/auth` list every mount; `sys/internal/ui/mounts` would hide the
    // ones a least-privilege token has no access to, i.e. exactly the foreign ones.
    let (secret, auth, policies) = futures::try_join!(
        bao.get(ns, "sys/mounts"),
        bao.get(ns, "sys/auth"),
        bao.list(ns, "sys/policies/acl")
    )?;

    // Every managed mount's contents and every policy are read concurrently.
    let mut reads = Vec::new();
    for (body, is_auth) in [(&secret, false), (&auth, true)] {
        let Some(list) = data(body).and_then(Value::as_object) else { continue };
        for (key, mount) in list {
            let path = key.trim_end_matches('/').to_string();
            let kind = str_of(mount, "type");
            let description = str_of(mount, "description");
            let mount_kind = if is_auth { Kind::AuthMount } else { Kind::KvMount };
            match marked_address(&description, MOUNT_MARKER) {
                Some(address) => reads.push(
                    observe_mount(bao, m, &b, mount, is_auth, path, kind, description, address).boxed(),
                ),
                None if !kind.starts_with("ns_") => unmanaged.push(Unmanaged::in_namespace(
                    mount_kind,
                    &m.path,
                    path,
                    UnmanagedReason::no_marker("mount without ctl's marker in its description"),
                )),
                None => {}
            }
        }
    }
    for name in policies.iter().filter(|p| *p != "default" && *p != "root") {
        reads.push(observe_policy(bao, &b, name).boxed());
    }
    for found in futures::future::try_join_all(reads).await? {
        out.extend(found.resources);
        unmanaged.extend(found.unmanaged);
    }
    Ok((out, unmanaged))
}

/// What one read found: ctl's resources and the objects it must leave alone.
#[derive(Default)]
struct Found {
    resources: Vec<Resource>,
    unmanaged: Vec<Unmanaged>,
}

impl Found {
    fn unmanaged(u: Unmanaged) -> Found {
        Found { resources: Vec::new(), unmanaged: vec![u] }
    }

    /// A child without a marker field: ctl's only if the namespace records it.
    fn child(&mut self, m: &ManagedNamespace, r: Resource, what: &str) {
        if m.owns(&r) {
            self.resources.push(r);
        } else {
            let name = r.identity().name().to_string();
            self.unmanaged.push(Unmanaged::in_namespace(
                r.kind,
                &m.path,
                name,
                UnmanagedReason::NotRecorded { what: what.to_string(), namespace: m.path.clone() },
            ));
        }
    }
}

async fn observe_policy(bao: &Bao, b: &WorkspaceBuilder<'_>, name: &str) -> Result<Found, BaoError> {
    let body = bao.read(Some(b.namespace), format!("sys/policies/acl/{name}")).await?;
    let text = data(&body).map(|d| str_of(d, "policy")).unwrap_or_default();
    Ok(if marked_address(&text, POLICY_MARKER) == Some(WorkspaceAddrs(b.workspace).policy(name)) {
        Found { resources: vec![b.policy(name, &PolicyAttrs { policy: text })], unmanaged: Vec::new() }
    } else {
        Found::unmanaged(Unmanaged::in_namespace(Kind::Policy, b.namespace, name, UnmanagedReason::no_marker("policy without ctl's marker line")))
    })
}

#[allow(clippy::too_many_arguments)]
async fn observe_mount(
    bao: &Bao,
    m: &ManagedNamespace,
    b: &WorkspaceBuilder<'_>,
    mount: &Value,
    is_auth: bool,
    path: String,
    kind: String,
    description: String,
    address: Address,
) -> Result<Found, BaoError> {
    let ns = Some(b.namespace);
    let mut found = Found::default();
    match (is_auth, kind.as_str()) {
        (false, "kv") => {
            let config = bao.read(ns, format!("{path}/config")).await?;
            let config = data(&config).cloned().unwrap_or(Value::Null);
            let version = mount
                .pointer("/options/version")
                .and_then(Value::as_str)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let a = KvMountAttrs {
                path,
                version,
                description,
                max_versions: u64_of(&config, "max_versions"),
                cas_required: config.get("cas_required").and_then(Value::as_bool).unwrap_or(false),
                delete_version_after: secs_of(&config, "delete_version_after"),
            };
            found.resources.push(with_address(b.kv(&a), address));
        }
        (false, "transit") => {
            let keys = bao.list(ns, format!("{path}/keys")).await?;
            let reads = keys.iter().map(|key| bao.read(ns, format!("{path}/keys/{key}")));
            for (key, body) in keys.iter().zip(futures::future::try_join_all(reads).await?) {
                let Some(k) = data(&body) else { continue };
                let a = TransitKeyAttrs {
                    mount: path.clone(),
                    key_type: str_of(k, "type"),
                    auto_rotate_period: secs_of(k, "auto_rotate_period"),
                };
                found.child(m, b.transit_key(key, &a), "transit key");
            }
            found.resources.push(with_address(b.transit(&TransitMountAttrs { path, description }), address));
        }
        (true, "approle") => {
            let roles = bao.list(ns, format!("auth/{path}/role")).await?;
            let reads = roles.iter().map(|role| bao.read(ns, format!("auth/{path}/role/{role}")));
            for (role, body) in roles.iter().zip(futures::future::try_join_all(reads).await?) {
                let Some(r) = data(&body) else { continue };
                let a = AppRoleAttrs {
                    mount: path.clone(),
                    token_policies: sorted_strings(r, "token_policies"),
                    token_ttl: secs_of(r, "token_ttl"),
                    token_max_ttl: secs_of(r, "token_max_ttl"),
                    secret_id_ttl: secs_of(r, "secret_id_ttl"),
                    secret_id_num_uses: u64_of(r, "secret_id_num_uses"),
                    token_bound_cidrs: sorted_strings(r, "token_bound_cidrs"),
                    secret_id_bound_cidrs: sorted_strings(r, "secret_id_bound_cidrs"),
                };
                let deps: Vec<String> = a.token_policies.iter().filter(|p| *p != "default").cloned().collect();
                found.child(m, b.role(role, &a, &deps), "AppRole role");
            }
            found.resources.push(with_address(b.auth(&AuthMountAttrs { path, kind, description }), address));
        }
        _ => {
            return Ok(Found::unmanaged(Unmanaged::in_namespace(
                if is_auth { Kind::AuthMount } else { Kind::KvMount },
                b.namespace,
                path,
                UnmanagedReason::UnexpectedType { address: address.to_string(), found: kind.to_string() },
            )))
        }
    }
    Ok(found)
}

/// A mount's address comes from its marker, so a renamed mount keeps its identity.
fn with_address(mut r: Resource, address: Address) -> Resource {
    r.address = address;
    r
}

/// The quotas named for this environment's workspaces (`ctl-<workspace>`): ctl's when the
/// workspace's namespace records them, unmanaged (and colliding with the declared one) if not.
async fn quotas(
    bao: &Bao,
    parallelism: usize,
    ours: &BTreeMap<&str, &ManagedNamespace>,
) -> Result<(Vec<Resource>, Vec<Unmanaged>), BaoError> {
    let names: Vec<(String, &ManagedNamespace)> = bao
        .list(None, "sys/quotas/rate-limit")
        .await?
        .into_iter()
        .filter_map(|n| {
            let m = ours.get(n.strip_prefix(QUOTA_PREFIX)?)?;
            Some((n, *m))
        })
        .collect();
    let found: Vec<Found> = stream::iter(names)
        .map(|(name, m)| async move {
            let body = bao.read(None, &format!("sys/quotas/rate-limit/{name}")).await?;
            let mut found = Found::default();
            let Some(q) = data(&body) else { return Ok(found) };
            let path = str_of(q, "path");
            let a = QuotaAttrs {
                path,
                rate: q.get("rate").and_then(Value::as_f64).unwrap_or(0.0),
                interval: secs_of(q, "interval"),
                block_interval: secs_of(q, "block_interval"),
            };
            let r = WorkspaceBuilder { workspace: &m.workspace, namespace: &m.path }.quota(&a);
            if m.owns(&r) {
                found.resources.push(r);
            } else {
                found.unmanaged.push(Unmanaged::root(
                    Kind::RateLimitQuota,
                    name,
                    UnmanagedReason::NotRecorded { what: "quota".into(), namespace: m.path.clone() },
                ));
            }
            Ok::<_, BaoError>(found)
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect()
        .await?;
    let (mut resources, mut unmanaged) = (Vec::new(), Vec::new());
    for f in found {
        resources.extend(f.resources);
        unmanaged.extend(f.unmanaged);
    }
    Ok((resources, unmanaged))
}
