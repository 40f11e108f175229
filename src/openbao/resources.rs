//! The OpenBao resource kinds as typed attribute structs. Both sides use them: `desired`
//! builds them from the environment file, `observe` builds them from API responses. Because
//! both go through the same struct (same fields, same order, same normalisation), equal
//! means equal and the diff engine only ever sees an ordered attribute map.

pub use crate::model::{from_attrs, to_attrs};
use crate::model::{Address, Attrs, Kind, Resource, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// custom_metadata key and value that mark a namespace as ctl's.
pub const MANAGED_BY_KEY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "ctl";
/// Mount descriptions start with this, followed by the resource address.
pub const MOUNT_MARKER: &str = "managed by ctl: ";
/// Policies start with this line, followed by the resource address.
pub const POLICY_MARKER: &str = "# managed by ctl: ";
/// Rate-limit quotas (in the root namespace) are named this + workspace name.
pub const QUOTA_PREFIX: &str = "ctl-";
/// Objects with no field for a marker (AppRole roles, transit keys, quotas) are ctl's only when
/// their workspace namespace's custom_metadata has a record `ctl-owns/<kind>/<identity name>`
/// → address, written by the apply that created them (before the object, removed after it).
pub const RECORD_PREFIX: &str = "ctl-owns/";
/// custom_metadata key of a workspace namespace: the digest of the workspace's desired
/// resources as last applied in full (`desired::workspace_digests`). `ctl plan --refresh
/// changed` trusts a workspace whose recorded digest equals the desired one.
pub const DIGEST_KEY: &str = "ctl-digest";

/// The custom_metadata key recording that ctl created `r` (for the kinds that need one).
pub fn record_key(r: &Resource) -> String {
    let kind = serde_json::to_value(r.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    format!("{RECORD_PREFIX}{kind}/{}", r.identity().name())
}

/// Kinds whose ownership is a record in the namespace's custom_metadata, not a marker.
pub fn is_recorded(kind: Kind) -> bool {
    matches!(kind, Kind::AppRole | Kind::TransitKey | Kind::RateLimitQuota)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamespaceAttrs {
    pub path: String,
    pub custom_metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvMountAttrs {
    pub path: String,
    pub version: u32,
    pub description: String,
    pub max_versions: u64,
    pub cas_required: bool,
    pub delete_version_after: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyAttrs {
    pub policy: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthMountAttrs {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppRoleAttrs {
    pub mount: String,
    pub token_policies: Vec<String>,
    pub token_ttl: String,
    pub token_max_ttl: String,
    pub secret_id_ttl: String,
    pub secret_id_num_uses: u64,
    pub token_bound_cidrs: Vec<String>,
    pub secret_id_bound_cidrs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitMountAttrs {
    pub path: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitKeyAttrs {
    pub mount: String,
    #[serde(rename = "type")]
    pub key_type: String,
    pub auto_rotate_period: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaAttrs {
    /// The namespace path the quota applies to, with a trailing slash.
    pub path: String,
    pub rate: f64,
    pub interval: String,
    pub block_interval: String,
}

/// Canonical duration text from seconds, shared by both sides.
pub fn duration(secs: u64) -> String {
    crate::config::Duration(secs).to_string()
}

/// Addresses of one workspace's resources.
pub struct WorkspaceAddrs<'a>(pub &'a str);

impl WorkspaceAddrs<'_> {
    pub fn namespace(&self) -> Address {
        Address::workspace(self.0, &["namespace"])
    }
    pub fn kv(&self) -> Address {
        Address::workspace(self.0, &["kv"])
    }
    pub fn policy(&self, name: &str) -> Address {
        Address::workspace(self.0, &["policy", name])
    }
    pub fn auth(&self) -> Address {
        Address::workspace(self.0, &["auth"])
    }
    pub fn role(&self, name: &str) -> Address {
        Address::workspace(self.0, &["approle", name])
    }
    pub fn transit(&self) -> Address {
        Address::workspace(self.0, &["transit"])
    }
    pub fn transit_key(&self, name: &str) -> Address {
        Address::workspace(self.0, &["transit_key", name])
    }
    pub fn quota(&self) -> Address {
        Address::workspace(self.0, &["quota"])
    }
}

/// Builds the resources of one workspace with the right scope, dependencies and container,
/// whichever side (desired or observed) the attributes come from.
pub struct WorkspaceBuilder<'a> {
    pub workspace: &'a str,
    pub namespace: &'a str,
}

impl WorkspaceBuilder<'_> {
    fn addrs(&self) -> WorkspaceAddrs<'_> {
        WorkspaceAddrs(self.workspace)
    }

    fn inside(&self, address: Address, kind: Kind, name: &str, attrs: Attrs, deps: Vec<Address>) -> Resource {
        let ns = self.addrs().namespace();
        let mut depends_on = vec![ns.clone()];
        depends_on.extend(deps);
        Resource {
            address,
            kind,
            scope: Scope::Namespace(self.namespace.to_string()),
            name: name.to_string(),
            attrs,
            depends_on,
            container: Some(ns),
        }
    }

    pub fn namespace(&self, a: &NamespaceAttrs) -> Resource {
        Resource {
            address: self.addrs().namespace(),
            kind: Kind::Namespace,
            scope: Scope::Root,
            name: self.namespace.to_string(),
            attrs: to_attrs(a),
            depends_on: vec![],
            container: None,
        }
    }

    pub fn kv(&self, a: &KvMountAttrs) -> Resource {
        self.inside(self.addrs().kv(), Kind::KvMount, &a.path, to_attrs(a), vec![])
    }

    pub fn policy(&self, name: &str, a: &PolicyAttrs) -> Resource {
        self.inside(self.addrs().policy(name), Kind::Policy, name, to_attrs(a), vec![])
    }

    pub fn auth(&self, a: &AuthMountAttrs) -> Resource {
        self.inside(self.addrs().auth(), Kind::AuthMount, &a.path, to_attrs(a), vec![])
    }

    /// Roles depend on their mount and on the policies they grant.
    pub fn role(&self, name: &str, a: &AppRoleAttrs, policy_deps: &[String]) -> Resource {
        let mut deps = vec![self.addrs().auth()];
        deps.extend(policy_deps.iter().map(|p| self.addrs().policy(p)));
        self.inside(self.addrs().role(name), Kind::AppRole, name, to_attrs(a), deps)
    }

    pub fn transit(&self, a: &TransitMountAttrs) -> Resource {
        self.inside(self.addrs().transit(), Kind::TransitMount, &a.path, to_attrs(a), vec![])
    }

    pub fn transit_key(&self, name: &str, a: &TransitKeyAttrs) -> Resource {
        let deps = vec![self.addrs().transit()];
        self.inside(self.addrs().transit_key(name), Kind::TransitKey, name, to_attrs(a), deps)
    }

    /// Quotas live in the root namespace; deleting the namespace does not remove them for
    /// sure, so they are deleted explicitly (before the namespace) and never implied.
    pub fn quota(&self, a: &QuotaAttrs) -> Resource {
        Resource {
            address: self.addrs().quota(),
            kind: Kind::RateLimitQuota,
            scope: Scope::Root,
            name: format!("{QUOTA_PREFIX}{}", self.workspace),
            attrs: to_attrs(a),
            depends_on: vec![self.addrs().namespace()],
            container: None,
        }
    }
}
