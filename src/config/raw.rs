//! The file format exactly as written: serde types with `deny_unknown_fields`, optional fields
//! where a class or default may fill in. Per-value checks live in the field types' `Deserialize`.

use super::names::*;
use super::{Cidr, Duration};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// An environment file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnv {
    pub openbao: RawOpenbao,
    #[serde(default)]
    pub aws: Option<RawAws>,
    #[serde(default)]
    pub classes: UniqueMap<ClassName, RawClass>,
    #[serde(default)]
    pub workspaces: Vec<RawWorkspace>,
    #[serde(default)]
    pub workspaces_dir: Option<NonEmpty>,
    #[serde(default)]
    pub network: Option<super::network::RawNetwork>,
    #[serde(default)]
    pub instances: UniqueMap<super::network::InfraName, super::network::RawInstance>,
    #[serde(default)]
    pub rds: Option<super::network::RawRds>,
    #[serde(default)]
    pub artifacts: Option<super::artifacts::RawArtifacts>,
    #[serde(default)]
    pub kms: Option<UniqueMap<super::infra::KeyName, super::infra::RawKmsKey>>,
    #[serde(default)]
    pub iam: Option<super::infra::RawIam>,
    #[serde(default)]
    pub openbao_cluster: Option<super::infra::RawCluster>,
    #[serde(default)]
    pub alarms: Option<super::alarms::RawAlarms>,
    #[serde(default)]
    pub dr: Option<super::dr::RawDr>,
    #[serde(default)]
    pub policy_lint: Option<super::policy_lint::RawPolicyLint>,
}

/// How to reach OpenBao; which combination is set is checked after parsing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpenbao {
    #[serde(default)]
    pub dev_stack: Option<NonEmpty>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub token_env: Option<EnvVarName>,
    #[serde(default)]
    pub token_file: Option<NonEmpty>,
    #[serde(default)]
    pub ca_cert: Option<NonEmpty>,
    #[serde(default)]
    pub client_cert: Option<NonEmpty>,
    #[serde(default)]
    pub client_key: Option<NonEmpty>,
    #[serde(default)]
    pub tls_server_name: Option<NonEmpty>,
    #[serde(default)]
    pub namespace: Option<NonEmpty>,
    #[serde(default)]
    pub auth: Option<RawAuth>,
}

/// How ctl logs in (`openbao.auth`); which fields a method needs is checked after parsing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub method: AuthMethod,
    #[serde(default)]
    pub mount: Option<MountPath>,
    #[serde(default)]
    pub role: Option<NonEmpty>,
    #[serde(default)]
    pub token_env: Option<EnvVarName>,
    #[serde(default)]
    pub token_file: Option<NonEmpty>,
    #[serde(default)]
    pub jwt_env: Option<EnvVarName>,
    #[serde(default)]
    pub jwt_file: Option<NonEmpty>,
    #[serde(default)]
    pub role_id_file: Option<NonEmpty>,
    #[serde(default)]
    pub secret_id_file: Option<NonEmpty>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMethod {
    Token,
    Jwt,
    Approle,
}

/// How to reach AWS: the dev stack's moto, or an account (region + optional endpoint).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAws {
    #[serde(default)]
    pub dev_stack: Option<NonEmpty>,
    #[serde(default)]
    pub region: Option<NonEmpty>,
    #[serde(default)]
    pub endpoint: Option<Address>,
}

/// Defaults a workspace inherits with `class:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClass {
    #[serde(default)]
    pub kv: Option<RawKv>,
    #[serde(default)]
    pub policies: Option<Vec<RawPolicy>>,
    #[serde(default)]
    pub approle: Option<RawAppRole>,
    #[serde(default)]
    pub transit: Option<RawTransit>,
    #[serde(default)]
    pub quota: Option<RawQuota>,
}

/// One workspace: an item of `workspaces:` or a file in `workspaces_dir`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkspace {
    pub name: WorkspaceName,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub namespace: Option<NamespaceName>,
    #[serde(default)]
    pub kv: Option<RawKv>,
    #[serde(default)]
    pub policies: Option<Vec<RawPolicy>>,
    #[serde(default)]
    pub approle: Option<RawAppRole>,
    #[serde(default)]
    pub transit: Option<RawTransit>,
    #[serde(default)]
    pub quota: Option<RawQuota>,
}

/// KV v2 settings; merged field by field over the class.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKv {
    #[serde(default)]
    pub path: Option<MountPath>,
    #[serde(default)]
    pub max_versions: Option<u32>,
    #[serde(default)]
    pub cas_required: Option<bool>,
    #[serde(default)]
    pub delete_version_after: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub name: PolicyName,
    pub template: TemplateName,
    #[serde(default)]
    pub vars: UniqueMap<NonEmpty, String>,
}

fn default_approle_mount() -> MountPath {
    MountPath("approle".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAppRole {
    #[serde(default = "default_approle_mount")]
    pub mount: MountPath,
    #[serde(default)]
    pub roles: UniqueMap<RoleName, RawRole>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    #[serde(default)]
    pub token_policies: Vec<String>,
    #[serde(default)]
    pub token_ttl: Duration,
    #[serde(default)]
    pub token_max_ttl: Duration,
    #[serde(default)]
    pub secret_id_ttl: Duration,
    #[serde(default)]
    pub secret_id_num_uses: u32,
    #[serde(default)]
    pub token_bound_cidrs: Vec<Cidr>,
    #[serde(default)]
    pub secret_id_bound_cidrs: Vec<Cidr>,
}

fn default_transit_mount() -> MountPath {
    MountPath("transit".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransit {
    #[serde(default = "default_transit_mount")]
    pub mount: MountPath,
    #[serde(default)]
    pub keys: Vec<RawTransitKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransitKey {
    pub name: KeyName,
    #[serde(rename = "type", default)]
    pub key_type: KeyType,
    #[serde(default)]
    pub auto_rotate_period: Duration,
}

fn one_second() -> Duration {
    Duration(1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuota {
    pub rate: f64,
    #[serde(default = "one_second")]
    pub interval: Duration,
    #[serde(default)]
    pub block_interval: Duration,
}

/// A mapping whose keys are validated and must be unique, in file order: a repeated key is an
/// error at the repeated key (plain serde maps silently keep the last one). A `Vec` rather than
/// a map: these are small, and there are thousands of them.
#[derive(Debug)]
pub(crate) struct UniqueMap<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for UniqueMap<K, V> {
    fn default() -> Self {
        UniqueMap(Vec::new())
    }
}

impl<'de, K: Parse + PartialEq + fmt::Display, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(UniqueMapVisitor(PhantomData))
    }
}

struct UniqueMapVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K: Parse + PartialEq + fmt::Display, V: Deserialize<'de>> Visitor<'de> for UniqueMapVisitor<K, V> {
    type Value = UniqueMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping from {}", K::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(K, V)> = Vec::new();
        while let Some(key) = map.next_key_seed(UniqueKey { seen: &out })? {
            let value = map.next_value()?;
            out.push((key, value));
        }
        Ok(UniqueMap(out))
    }
}

/// Deserializes one key, failing (at the key's own position) if it is already in `seen`.
struct UniqueKey<'a, K, V> {
    seen: &'a [(K, V)],
}

impl<'de, K: Parse + PartialEq + fmt::Display, V> DeserializeSeed<'de> for UniqueKey<'_, K, V> {
    type Value = K;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<K: Parse + PartialEq + fmt::Display, V> Visitor<'_> for UniqueKey<'_, K, V> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(K::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        let key = K::parse(v).map_err(E::custom)?;
        if self.seen.iter().any(|(k, _)| *k == key) {
            return Err(E::custom(format!("duplicate key {:?}: each key may appear only once", key.to_string())));
        }
        Ok(key)
    }
}
