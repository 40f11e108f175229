//! The resource model shared by every stage: an [`Address`], a [`Kind`] with its rules
//! ([`KindSpec`]), and a [`Resource`] whose attributes are a flat, ordered JSON map.
//!
//! Desired resources (from [`crate::desired`]) and live resources (from a provider) have the
//! same shape, so the diff engine compares them without knowing any SDK or API.
//! Adding a resource kind means: a [`Kind`] variant + its [`KindSpec`] here, an expansion in
//! `desired`, and observe/apply code in a provider. The diff engine does not change.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// A stable, human-readable resource address such as `workspace.acme.kv` or
/// `workspace.acme.approle.app`. Ordering is lexicographic, which keeps a workspace's
/// resources together in every listing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn new(s: impl Into<String>) -> Self {
        Address(s.into())
    }

    /// `workspace.<name>.<rest…>`
    pub fn workspace(workspace: &str, rest: &[&str]) -> Self {
        let mut s = format!("workspace.{workspace}");
        for part in rest {
            s.push('.');
            s.push_str(part);
        }
        Address(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The workspace this address belongs to, if it is a workspace address.
    pub fn workspace_name(&self) -> Option<&str> {
        self.0.strip_prefix("workspace.")?.split('.').next()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Every kind of resource ctl manages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Namespace,
    KvMount,
    Policy,
    AuthMount,
    AppRole,
    TransitMount,
    TransitKey,
    RateLimitQuota,
    // AWS network, EC2 and RDS kinds (src/aws/<kind>.rs, ec2.rs, rds.rs).
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    NatInstance,
    VpcEndpoint,
    SecurityGroup,
    Instance,
    ElasticIp,
    DbSubnetGroup,
    DbInstance,
    // AWS KMS and IAM kinds (src/aws/kms.rs, iam.rs).
    KmsKey,
    KmsAlias,
    IamRole,
    IamInstanceProfile,
    // CloudWatch alarms, their SNS topic and Route 53 health checks (src/aws/cloudwatch.rs, sns.rs, route53.rs).
    MetricAlarm,
    SnsTopic,
    SnsSubscription,
    Route53HealthCheck,
}

impl Kind {
    /// Every kind, in declaration order (for exhaustiveness checks in tests).
    pub const ALL: &'static [Kind] = &[
        Kind::Namespace,
        Kind::KvMount,
        Kind::Policy,
        Kind::AuthMount,
        Kind::AppRole,
        Kind::TransitMount,
        Kind::TransitKey,
        Kind::RateLimitQuota,
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::RouteTable,
        Kind::NatInstance,
        Kind::VpcEndpoint,
        Kind::SecurityGroup,
        Kind::Instance,
        Kind::ElasticIp,
        Kind::DbSubnetGroup,
        Kind::DbInstance,
        Kind::KmsKey,
        Kind::KmsAlias,
        Kind::IamRole,
        Kind::IamInstanceProfile,
        Kind::MetricAlarm,
        Kind::SnsTopic,
        Kind::SnsSubscription,
        Kind::Route53HealthCheck,
    ];
}

/// The provider that observes and applies a kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Provider {
    OpenBao,
    Aws,
}

/// The rules of a kind that the diff engine and the destroy guard need.
#[derive(Debug)]
pub struct KindSpec {
    /// Attributes that cannot be changed in place: a change means delete + create.
    pub replace_on: &'static [&'static str],
    /// Deleting (or replacing) this kind loses data; it needs `--allow-destroy=ADDRESS`.
    pub data_loss_on_delete: bool,
    /// The attribute naming the parent whose names this kind shares (an AppRole's `mount`):
    /// two objects collide only under the same parent. See [`Identity`].
    pub parent_attr: Option<&'static str>,
}

impl Kind {
    pub const fn provider(self) -> Provider {
        match self {
            Kind::Namespace
            | Kind::KvMount
            | Kind::Policy
            | Kind::AuthMount
            | Kind::AppRole
            | Kind::TransitMount
            | Kind::TransitKey
            | Kind::RateLimitQuota => Provider::OpenBao,
            Kind::Vpc
            | Kind::Subnet
            | Kind::InternetGateway
            | Kind::RouteTable
            | Kind::NatInstance
            | Kind::VpcEndpoint
            | Kind::SecurityGroup
            | Kind::Instance
            | Kind::ElasticIp
            | Kind::DbSubnetGroup
            | Kind::DbInstance => Provider::Aws,
            Kind::KmsKey | Kind::KmsAlias | Kind::IamRole | Kind::IamInstanceProfile => Provider::Aws,
            Kind::MetricAlarm | Kind::SnsTopic | Kind::SnsSubscription | Kind::Route53HealthCheck => Provider::Aws,
        }
    }

    pub const fn spec(self) -> &'static KindSpec {
        match self {
            Kind::Namespace => &KindSpec { replace_on: &["path"], data_loss_on_delete: true, parent_attr: None },
            Kind::KvMount => &KindSpec { replace_on: &["path", "version"], data_loss_on_delete: true, parent_attr: None },
            Kind::Policy => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: None },
            Kind::AuthMount => &KindSpec { replace_on: &["path", "type"], data_loss_on_delete: false, parent_attr: None },
            Kind::AppRole => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: Some("mount") },
            Kind::TransitMount => &KindSpec { replace_on: &["path"], data_loss_on_delete: true, parent_attr: None },
            Kind::TransitKey => &KindSpec { replace_on: &["type"], data_loss_on_delete: true, parent_attr: Some("mount") },
            Kind::RateLimitQuota => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: None },
            Kind::Vpc => &KindSpec { replace_on: &["cidr"], data_loss_on_delete: false, parent_attr: None },
            Kind::Subnet => &KindSpec { replace_on: &["vpc", "cidr", "az"], data_loss_on_delete: false, parent_attr: None },
            Kind::InternetGateway => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: None },
            Kind::RouteTable => &KindSpec { replace_on: &["vpc"], data_loss_on_delete: false, parent_attr: None },
            Kind::NatInstance => &INSTANCE_SPEC,
            Kind::VpcEndpoint => &KindSpec { replace_on: &["vpc", "service_name", "type"], data_loss_on_delete: false, parent_attr: None },
            Kind::SecurityGroup => &KindSpec { replace_on: &["vpc", "group_name", "description"], data_loss_on_delete: false, parent_attr: None },
            Kind::Instance => &INSTANCE_SPEC,
            // Releasing an address gives it back to AWS for good: whoever relied on it loses it.
            Kind::ElasticIp => &KindSpec { replace_on: &["domain"], data_loss_on_delete: true, parent_attr: None },
            Kind::DbSubnetGroup => &KindSpec { replace_on: &["name"], data_loss_on_delete: false, parent_attr: None },
            Kind::DbInstance => &KindSpec {
                replace_on: &["identifier", "engine", "storage_encrypted", "kms_key_id", "subnet_group"],
                data_loss_on_delete: true,
                parent_attr: None,
            },
            // Deleting a key (ScheduleKeyDeletion) makes everything encrypted under it unreadable.
            Kind::KmsKey => &KindSpec { replace_on: &["key_spec", "key_usage"], data_loss_on_delete: true, parent_attr: None },
            Kind::KmsAlias => &KindSpec { replace_on: &["name"], data_loss_on_delete: false, parent_attr: None },
            Kind::IamRole => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: None },
            Kind::IamInstanceProfile => &KindSpec { replace_on: &[], data_loss_on_delete: false, parent_attr: None },
            Kind::MetricAlarm => &KindSpec { replace_on: &["alarm_name"], data_loss_on_delete: false, parent_attr: None },
            Kind::SnsTopic => &KindSpec { replace_on: &["name"], data_loss_on_delete: false, parent_attr: None },
            Kind::SnsSubscription => &KindSpec { replace_on: &["topic", "protocol", "endpoint"], data_loss_on_delete: false, parent_attr: None },
            Kind::Route53HealthCheck => &KindSpec { replace_on: &["type", "request_interval"], data_loss_on_delete: false, parent_attr: None },
        }
    }
}

/// EC2 instances, the NAT instance included: what they boot from and how is immutable.
const INSTANCE_SPEC: KindSpec = KindSpec {
    replace_on: &[
        "instance_profile",
        "ami",
        "subnet",
        "instance_type",
        "key_name",
        "public_ip",
        "root_volume_encrypted",
        "root_volume_kms_key",
        "root_volume_size",
        "user_data_sha256",
        "user_data",
    ],
    data_loss_on_delete: false,
    parent_attr: None,
};

/// Where a resource lives in OpenBao: the root namespace or a workspace namespace.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Root,
    Namespace(String),
}

impl Scope {
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Root => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }
}

/// Attribute values: a flat JSON object with a fixed key order per kind. Durations are
/// canonical strings ("1h30m"), lists that are sets are sorted, so equal means equal.
pub type Attrs = Map<String, Value>;

/// A typed attribute struct (of any provider) as a flat attribute map.
pub fn to_attrs<T: Serialize>(value: &T) -> Attrs {
    match serde_json::to_value(value).expect("attribute structs serialize") {
        Value::Object(map) => map,
        _ => unreachable!("attribute structs are objects"),
    }
}

/// A typed attribute struct back from a resource's attributes.
pub fn from_attrs<T: serde::de::DeserializeOwned>(attrs: &Attrs) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(attrs.clone()))
}

/// One resource, desired or live.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Resource {
    pub address: Address,
    pub kind: Kind,
    pub scope: Scope,
    /// The name of the object inside its scope (mount path, policy name, role name…).
    pub name: String,
    pub attrs: Attrs,
    /// Addresses that must exist before this one (and be deleted after it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// The container whose deletion removes this resource too (its namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Address>,
}

impl Resource {
    /// A content hash of what was read: kind, scope, name and attributes.
    pub fn fingerprint(&self) -> Fingerprint {
        let canonical = serde_json::json!([self.kind, self.scope, self.name, self.attrs]);
        Fingerprint::of(canonical.to_string().as_bytes())
    }

    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key)
    }
}

/// A sha256 hex digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(hex::encode(Sha256::digest(bytes)))
    }

    /// The fingerprint recorded for an address that did not exist when read.
    pub fn absent() -> Self {
        Fingerprint("absent".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What makes two objects the same object to the server, whoever created them: the slot
/// their names live in (KV and transit mounts share `sys/mounts`), their scope, and their
/// name (under their parent, for kinds with [`KindSpec::parent_attr`]). A desired resource
/// and an unmanaged object with the same identity collide: ctl refuses, it never adopts.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Identity {
    slot: Kind,
    scope: Scope,
    name: String,
}

impl Identity {
    pub fn new(kind: Kind, scope: &Scope, name: &str) -> Identity {
        let slot = match kind {
            Kind::TransitMount => Kind::KvMount, // one path space: sys/mounts
            other => other,
        };
        Identity { slot, scope: scope.clone(), name: name.to_string() }
    }

    /// The name part (`parent/name` for kinds with a parent).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Resource {
    /// This resource's [`Identity`]; for kinds with a parent (an AppRole's mount) the name is
    /// `parent/name`, as [`Unmanaged`] records it.
    pub fn identity(&self) -> Identity {
        match self.kind.spec().parent_attr.and_then(|a| self.attrs.get(a)).and_then(Value::as_str) {
            Some(parent) => Identity::new(self.kind, &self.scope, &format!("{parent}/{}", self.name)),
            None => Identity::new(self.kind, &self.scope, &self.name),
        }
    }
}

/// Why ctl does not manage an object it saw. Rendered to words in [`crate::render::words`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum UnmanagedReason {
    /// No ownership marker (or tags) for this environment; `detail` says what is missing.
    NoMarker { detail: String },
    /// ctl's, for another environment.
    OtherEnvironment { environment: String },
    /// A kind without a marker field (a role, a key, a quota) that `namespace` has no record of.
    NotRecorded { what: String, namespace: String },
    /// It carries ctl's marker for `address`, but is not of the kind declared there.
    UnexpectedType { address: String, found: String },
    /// A second object tagged or aliased for something ctl already has; `detail` says which.
    Duplicate { detail: String },
    /// ctl's own namespace whose deletion was interrupted (`ctl apply` resumes it).
    StuckDeletion,
    /// Someone else's namespace, being deleted.
    DeletionInProgress,
}

impl UnmanagedReason {
    pub fn no_marker(detail: impl Into<String>) -> UnmanagedReason {
        UnmanagedReason::NoMarker { detail: detail.into() }
    }
}

/// Something observed that ctl reports but never touches (e.g. an unmanaged namespace, a
/// policy without ctl's marker line, an AppRole role ctl did not create).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Unmanaged {
    pub kind: Kind,
    /// Where it lives (OpenBao namespace; AWS objects are `root`).
    #[serde(default)]
    pub scope: Scope,
    /// Its name in that scope, `parent/name` for kinds with a parent (`approle/handmade`).
    pub name: String,
    pub reason: UnmanagedReason,
}

impl Unmanaged {
    /// An object in the root scope (every AWS object, root-namespace OpenBao objects).
    pub fn root(kind: Kind, name: impl Into<String>, reason: UnmanagedReason) -> Unmanaged {
        Unmanaged { kind, scope: Scope::Root, name: name.into(), reason }
    }

    /// An object inside an OpenBao namespace.
    pub fn in_namespace(kind: Kind, namespace: &str, name: impl Into<String>, reason: UnmanagedReason) -> Unmanaged {
        Unmanaged { kind, scope: Scope::Namespace(namespace.to_string()), name: name.into(), reason }
    }

    pub fn identity(&self) -> Identity {
        Identity::new(self.kind, &self.scope, &self.name)
    }

    /// `namespace/name` (or just the name at the root), for messages.
    pub fn path(&self) -> String {
        match &self.scope {
            Scope::Root => self.name.clone(),
            Scope::Namespace(ns) => format!("{ns}/{}", self.name),
        }
    }
}

/// Everything a provider read: managed resources plus what it saw but does not own.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub resources: Vec<Resource>,
    pub unmanaged: Vec<Unmanaged>,
}
