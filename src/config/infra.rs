//! The AWS identity and key sections of an environment file and the OpenBao cluster layout:
//! `kms:`, `iam:` and `openbao_cluster:`.
//!
//! ```yaml
//! iam:
//!   roles:
//!     openbao: { instance_profile: true, description: OpenBao servers }
//!     api: { instance_profile: true }
//! kms:
//!   unseal_key:
//!     alias: alias/ctl-prod-unseal
//!     description: OpenBao auto-unseal
//!     openbao_role: openbao          # the only principal allowed Encrypt/Decrypt/DescribeKey
//!     extra_principals: [rds]        # RDS may use the key on the account's behalf (kms:ViaService)
//! openbao_cluster:
//!   nodes: 3                         # 1, 3 or 5
//!   api_addresses: [https://10.0.1.10:8200, https://10.0.2.10:8200, https://10.0.3.10:8200]
//!   seal_key: unseal_key             # a key of kms:; without it the seal is shamir
//!   audit_file: /var/log/openbao/audit.log
//!   kms_plugin: { artifact: openbao-plugin-kms-aws }   # 2.7 form only: an item of artifacts:
//! ```
//!
//! Per-value checks (alias names, role names, node counts, principals) run inside
//! `Deserialize`, so serde_yaml reports the offending scalar's position; references between
//! sections (`openbao_role`, `seal_key`, the number of addresses) are checked in [`validate`]
//! and located through the YAML path.

use super::problems::Problems;
use super::names::{via_parse, Address, NonEmpty, Parse};
use super::raw::UniqueMap;
use super::{Duration, PathSeg};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

/// IAM role names are at most this long (AWS limit).
pub const IAM_NAME_MAX: usize = 64;

// ---------------------------------------------------------------------------------------------
// The validated result.

/// `kms:`, `iam:` and `openbao_cluster:`, validated. Empty when the file has none of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KmsIam {
    /// KMS keys by their name in the file (the address is `aws.kms.<name>`).
    pub kms_keys: BTreeMap<String, KmsKey>,
    /// IAM roles by their name in the file (the AWS name is `ctl-<env>-<name>`).
    pub iam_roles: BTreeMap<String, IamRole>,
    /// How OpenBao servers are configured (`ctl render openbao-config`).
    pub openbao_cluster: Option<OpenbaoCluster>,
}

/// A symmetric KMS key with one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    /// `alias/…`.
    pub alias: String,
    pub description: String,
    /// The `iam.roles` entry whose role alone may Encrypt/Decrypt/DescribeKey.
    pub openbao_role: String,
    /// AWS services allowed to use the key on the account's behalf (through `kms:ViaService`).
    pub extra_principals: Vec<ServicePrincipal>,
}

/// A service that may use a key through `kms:ViaService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServicePrincipal {
    Rds,
}

impl ServicePrincipal {
    pub const ALL: &'static [(&'static str, ServicePrincipal)] = &[("rds", ServicePrincipal::Rds)];

    pub fn as_str(self) -> &'static str {
        match self {
            ServicePrincipal::Rds => "rds",
        }
    }
}

/// An IAM role assumed by EC2 instances (or the services in `trusted_services`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamRole {
    pub description: String,
    /// Service principals allowed to assume the role, sorted; default `ec2.amazonaws.com`.
    pub trusted_services: Vec<String>,
    /// Default 1h, 1h–12h.
    pub max_session_duration: Duration,
    /// Whether an instance profile of the same name carries the role.
    pub instance_profile: bool,
}

/// The OpenBao server layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenbaoCluster {
    /// 1, 3 or 5.
    pub nodes: u8,
    /// Node `i`'s API address (`http(s)://host:port`), one per node.
    pub api_addresses: Vec<String>,
    /// Node `i`'s cluster address; default: the API host with port + 1.
    pub cluster_addresses: Vec<String>,
    /// The listener's bind address, the same on every node; default: the node's API host:port.
    pub listen_address: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    /// The raft data dir is `<data_dir>/<node id>`.
    pub data_dir: String,
    /// Declarative file audit device at `audit/file`; `None`: no audit stanza.
    pub audit_file: Option<String>,
    /// A key of `kms:` for the awskms seal; `None`: shamir.
    pub seal_key: Option<String>,
    /// Raft timing multiplier (OpenBao default 5 when unset).
    pub performance_multiplier: Option<u32>,
    /// 2.7 form: where plugins live, and the awskms KMS plugin.
    pub plugin_directory: String,
    pub kms_plugin: Option<KmsPlugin>,
}

/// The awskms KMS plugin of OpenBao 2.7: binary name and its pinned sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsPlugin {
    /// The `artifacts:` item it comes from.
    pub artifact: String,
    pub command: String,
    /// The artifact's pinned digest.
    pub sha256: String,
}

// ---------------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIam {
    #[serde(default)]
    pub roles: UniqueMap<IamRoleName, RawIamRole>,
}

fn ec2_only() -> Vec<ServiceHost> {
    vec![ServiceHost("ec2.amazonaws.com".into())]
}

fn one_hour() -> Duration {
    Duration(3600)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIamRole {
    #[serde(default)]
    pub description: String,
    #[serde(default = "ec2_only")]
    pub trusted_services: Vec<ServiceHost>,
    #[serde(default = "one_hour")]
    pub max_session_duration: Duration,
    #[serde(default)]
    pub instance_profile: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKmsKey {
    pub alias: KmsAliasName,
    #[serde(default)]
    pub description: String,
    pub openbao_role: IamRoleName,
    #[serde(default)]
    pub extra_principals: Vec<ServicePrincipal>,
}

fn default_data_dir() -> NonEmpty {
    NonEmpty("/opt/openbao/data".into())
}

fn default_plugin_dir() -> NonEmpty {
    NonEmpty("/usr/local/lib/openbao/plugins".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub nodes: NodeCount,
    pub api_addresses: Vec<Address>,
    #[serde(default)]
    pub cluster_addresses: Option<Vec<Address>>,
    #[serde(default)]
    pub listen_address: Option<NonEmpty>,
    #[serde(default)]
    pub tls_cert_file: Option<NonEmpty>,
    #[serde(default)]
    pub tls_key_file: Option<NonEmpty>,
    #[serde(default = "default_data_dir")]
    pub data_dir: NonEmpty,
    #[serde(default)]
    pub audit_file: Option<NonEmpty>,
    #[serde(default)]
    pub seal_key: Option<KeyRef>,
    #[serde(default)]
    pub performance_multiplier: Option<u32>,
    #[serde(default = "default_plugin_dir")]
    pub plugin_directory: NonEmpty,
    #[serde(default)]
    pub kms_plugin: Option<RawKmsPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKmsPlugin {
    /// The name of an item of `artifacts:` (its pinned digest becomes `sha256sum`).
    pub artifact: NonEmpty,
    /// The plugin's file name in `plugin_directory`; default: the artifact's `file`.
    #[serde(default)]
    pub command: Option<NonEmpty>,
}

// ---------------------------------------------------------------------------------------------
// Validated scalars.

/// A KMS alias: `alias/` + `[A-Za-z0-9/_-]`, at most 256 characters, not `alias/aws/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KmsAliasName(pub String);

impl Parse for KmsAliasName {
    const EXPECTING: &'static str = "a KMS alias name such as alias/ctl-prod-unseal";
    fn parse(s: &str) -> Result<Self, String> {
        check_alias(s).map(|()| KmsAliasName(s.to_string())).map_err(|why| format!("KMS alias {s:?} is invalid: {why}"))
    }
}
via_parse!(KmsAliasName);

/// AWS's rules for alias names.
pub fn check_alias(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("alias/") else {
        return Err("must start with \"alias/\"".into());
    };
    if rest.is_empty() {
        return Err("needs a name after \"alias/\"".into());
    }
    if rest.starts_with("aws/") {
        return Err("\"alias/aws/\" is reserved for AWS managed keys".into());
    }
    if s.len() > 256 {
        return Err(format!("must be at most 256 characters (has {})", s.len()));
    }
    if let Some(c) = rest.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))) {
        return Err(format!("contains {c:?}; allowed are A-Z, a-z, 0-9, '/', '_', '-'"));
    }
    Ok(())
}

/// The name of a role in the file: lowercase `[a-z0-9-]`, starting with a letter. The AWS
/// name (`ctl-<env>-<name>`) is checked against the 64-character limit in [`validate`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IamRoleName(pub String);

impl Parse for IamRoleName {
    const EXPECTING: &'static str = "an IAM role name";
    fn parse(s: &str) -> Result<Self, String> {
        let why = if s.is_empty() {
            Some("must not be empty".to_string())
        } else if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some("must start with a lowercase letter".to_string())
        } else if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            Some(format!("contains {c:?}; allowed are a-z, 0-9, '-'"))
        } else if s.len() > IAM_NAME_MAX {
            Some(format!("must be at most {IAM_NAME_MAX} characters (has {})", s.len()))
        } else {
            None
        };
        match why {
            Some(why) => Err(format!("IAM role name {s:?} is invalid: {why}")),
            None => Ok(IamRoleName(s.to_string())),
        }
    }
}
via_parse!(IamRoleName);

impl fmt::Display for IamRoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a key in `kms:` (same spelling as role names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyName(pub String);

impl Parse for KeyName {
    const EXPECTING: &'static str = "a KMS key name";
    fn parse(s: &str) -> Result<Self, String> {
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && s.len() <= 64;
        if ok {
            Ok(KeyName(s.to_string()))
        } else {
            Err(format!(
                "KMS key name {s:?} is invalid: expected a lowercase letter, then a-z, 0-9, '-', '_' (at most 64)"
            ))
        }
    }
}
via_parse!(KeyName);

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to a key of `kms:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRef(pub String);

impl Parse for KeyRef {
    const EXPECTING: &'static str = "the name of a key in kms:";
    fn parse(s: &str) -> Result<Self, String> {
        KeyName::parse(s).map(|k| KeyRef(k.0))
    }
}
via_parse!(KeyRef);

/// A service host name such as `ec2.amazonaws.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceHost(pub String);

impl Parse for ServiceHost {
    const EXPECTING: &'static str = "a service principal such as ec2.amazonaws.com";
    fn parse(s: &str) -> Result<Self, String> {
        let ok = s.ends_with(".amazonaws.com")
            && s.len() > ".amazonaws.com".len()
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if ok {
            Ok(ServiceHost(s.to_string()))
        } else {
            Err(format!("service principal {s:?} is invalid: expected a name such as ec2.amazonaws.com"))
        }
    }
}
via_parse!(ServiceHost);

impl Parse for ServicePrincipal {
    const EXPECTING: &'static str = "a service that may use the key";
    fn parse(s: &str) -> Result<Self, String> {
        ServicePrincipal::ALL.iter().find(|(n, _)| *n == s).map(|(_, p)| *p).ok_or_else(|| {
            let all: Vec<&str> = ServicePrincipal::ALL.iter().map(|(n, _)| *n).collect();
            format!("unsupported extra principal {s:?}; expected one of: {}", all.join(", "))
        })
    }
}
via_parse!(ServicePrincipal);

/// 1, 3 or 5: raft needs an odd number, and more than 5 only slows writes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeCount(pub u8);

impl<'de> Deserialize<'de> for NodeCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match n {
            1 | 3 | 5 => Ok(NodeCount(n as u8)),
            _ => Err(serde::de::Error::custom(format!(
                "nodes must be 1, 3 or 5 (is {n}): raft needs an odd number of voters, and more than 5 slows every write"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-field validation.

/// The AWS name of role `role` in environment `env`.
pub fn iam_name(env: &str, role: &str) -> String {
    format!("ctl-{env}-{role}")
}

/// Checks references and limits that span values, recording problems in file 0 (the
/// environment file). `env` is the environment's name.
pub(crate) fn validate(
    env: &str,
    kms: Option<&UniqueMap<KeyName, RawKmsKey>>,
    iam: Option<&RawIam>,
    cluster: Option<&RawCluster>,
    artifacts: Option<&super::Artifacts>,
    has_aws: bool,
    problems: &mut Problems,
) -> KmsIam {
    let mut out = KmsIam::default();
    for (section, set) in [("kms", kms.is_some()), ("iam", iam.is_some())] {
        if set && !has_aws {
            problems.at(
                0,
                vec![PathSeg::key(section)],
                format!("{section} needs an aws: section (region, or the dev stack) to reach AWS"),
            );
        }
    }
    if let Some(iam) = iam {
        for (name, role) in &iam.roles.0 {
            let aws_name = iam_name(env, &name.0);
            if aws_name.len() > IAM_NAME_MAX {
                problems.at(
                    0,
                    vec![PathSeg::key("iam"), PathSeg::key("roles"), PathSeg::key(&name.0)],
                    format!(
                        "IAM role name {aws_name:?} (ctl-<environment>-<role>) is longer than {IAM_NAME_MAX} characters; shorten the role name"
                    ),
                );
            }
            let d = role.max_session_duration.0;
            if !(3600..=43_200).contains(&d) {
                problems.at(
                    0,
                    vec![
                        PathSeg::key("iam"),
                        PathSeg::key("roles"),
                        PathSeg::key(&name.0),
                        PathSeg::key("max_session_duration"),
                    ],
                    format!("max_session_duration must be from 1h to 12h (is {})", role.max_session_duration),
                );
            }
            let mut trusted: Vec<String> = role.trusted_services.iter().map(|s| s.0.clone()).collect();
            trusted.sort();
            trusted.dedup();
            out.iam_roles.insert(
                name.0.clone(),
                IamRole {
                    description: role.description.clone(),
                    trusted_services: trusted,
                    max_session_duration: role.max_session_duration,
                    instance_profile: role.instance_profile,
                },
            );
        }
    }
    if let Some(kms) = kms {
        let mut aliases: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, key) in &kms.0 {
            let at = |field: &str| vec![PathSeg::key("kms"), PathSeg::key(&name.0), PathSeg::key(field)];
            if !out.iam_roles.contains_key(&key.openbao_role.0) {
                let have: Vec<&str> = out.iam_roles.keys().map(String::as_str).collect();
                problems.at(
                    0,
                    at("openbao_role"),
                    format!(
                        "openbao_role {:?} is not declared in iam.roles (declared: {})",
                        key.openbao_role.0,
                        if have.is_empty() { "none".to_string() } else { have.join(", ") }
                    ),
                );
            }
            if let Some(other) = aliases.insert(&key.alias.0, &name.0) {
                problems.at(0, at("alias"), format!("alias {:?} is already used by kms key {other:?}", key.alias.0));
            }
            let mut extra = key.extra_principals.clone();
            extra.sort();
            extra.dedup();
            out.kms_keys.insert(
                name.0.clone(),
                KmsKey {
                    alias: key.alias.0.clone(),
                    description: key.description.clone(),
                    openbao_role: key.openbao_role.0.clone(),
                    extra_principals: extra,
                },
            );
        }
    }
    if let Some(c) = cluster {
        out.openbao_cluster = cluster_section(c, &out, artifacts, problems);
    }
    out
}

fn cluster_section(
    c: &RawCluster,
    infra: &KmsIam,
    artifacts: Option<&super::Artifacts>,
    problems: &mut Problems,
) -> Option<OpenbaoCluster> {
    let at = |field: &str| vec![PathSeg::key("openbao_cluster"), PathSeg::key(field)];
    let n = usize::from(c.nodes.0);
    let mut ok = true;
    if c.api_addresses.len() != n {
        problems.at(
            0,
            at("api_addresses"),
            format!("api_addresses must list one address per node ({n}), has {}", c.api_addresses.len()),
        );
        ok = false;
    }
    if let Some(cluster) = &c.cluster_addresses {
        if cluster.len() != n {
            problems.at(
                0,
                at("cluster_addresses"),
                format!("cluster_addresses must list one address per node ({n}), has {}", cluster.len()),
            );
            ok = false;
        }
    }
    if let Some(key) = &c.seal_key {
        if !infra.kms_keys.contains_key(&key.0) {
            let have: Vec<&str> = infra.kms_keys.keys().map(String::as_str).collect();
            problems.at(
                0,
                at("seal_key"),
                format!(
                    "seal_key {:?} is not declared in kms (declared: {})",
                    key.0,
                    if have.is_empty() { "none".to_string() } else { have.join(", ") }
                ),
            );
            ok = false;
        }
    }
    if c.tls_cert_file.is_some() != c.tls_key_file.is_some() {
        problems.at(
            0,
            at(if c.tls_cert_file.is_some() { "tls_cert_file" } else { "tls_key_file" }),
            "set both tls_cert_file and tls_key_file, or neither",
        );
        ok = false;
    }
    let mut kms_plugin = None;
    if let Some(p) = &c.kms_plugin {
        match artifacts.and_then(|a| a.get(&p.artifact.0)) {
            Some(artifact) => {
                kms_plugin = Some(KmsPlugin {
                    artifact: artifact.name.clone(),
                    command: p.command.as_ref().map_or_else(|| artifact.file.clone(), |c| c.0.clone()),
                    sha256: artifact.sha256.clone(),
                })
            }
            None => {
                let have: Vec<&str> =
                    artifacts.map(|a| a.items.iter().map(|i| i.name.as_str()).collect()).unwrap_or_default();
                problems.at(
                    0,
                    vec![PathSeg::key("openbao_cluster"), PathSeg::key("kms_plugin"), PathSeg::key("artifact")],
                    format!(
                        "artifact {:?} is not declared in artifacts.items (declared: {})",
                        p.artifact.0,
                        if have.is_empty() { "none".to_string() } else { have.join(", ") }
                    ),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let api: Vec<String> = c.api_addresses.iter().map(|a| a.0.clone()).collect();
    let cluster = match &c.cluster_addresses {
        Some(list) => list.iter().map(|a| a.0.clone()).collect(),
        None => api.iter().map(|a| default_cluster_address(a)).collect(),
    };
    Some(OpenbaoCluster {
        nodes: c.nodes.0,
        api_addresses: api,
        cluster_addresses: cluster,
        listen_address: c.listen_address.as_ref().map(|s| s.0.clone()),
        tls_cert_file: c.tls_cert_file.as_ref().map(|s| s.0.clone()),
        tls_key_file: c.tls_key_file.as_ref().map(|s| s.0.clone()),
        data_dir: c.data_dir.0.clone(),
        audit_file: c.audit_file.as_ref().map(|s| s.0.clone()),
        seal_key: c.seal_key.as_ref().map(|k| k.0.clone()),
        performance_multiplier: c.performance_multiplier,
        plugin_directory: c.plugin_directory.0.clone(),
        kms_plugin,
    })
}

/// `scheme://host:(port+1)`: OpenBao's own convention for the cluster port.
fn default_cluster_address(api: &str) -> String {
    match api.rsplit_once(':') {
        Some((head, port)) => match port.parse::<u16>() {
            Ok(p) if p < u16::MAX => format!("{head}:{}", p + 1),
            _ => api.to_string(),
        },
        None => api.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules() {
        assert!(check_alias("alias/ctl-prod-unseal").is_ok());
        assert!(check_alias("alias/a/b_c-D9").is_ok());
        assert!(check_alias("ctl-unseal").unwrap_err().contains("alias/"));
        assert!(check_alias("alias/").is_err());
        assert!(check_alias("alias/aws/rds").unwrap_err().contains("reserved"));
        assert!(check_alias("alias/has space").unwrap_err().contains("' '"));
        assert!(check_alias(&format!("alias/{}", "a".repeat(251))).unwrap_err().contains("256"));
    }

    fn load(body: &str) -> Result<crate::config::Environment, crate::config::ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prod.yaml");
        std::fs::write(
            &path,
            format!("openbao:\n  address: https://bao:8200\n  token_env: T\naws: {{ region: eu-west-1 }}\n{body}"),
        )
        .unwrap();
        let out = crate::config::load(&path);
        drop(dir);
        out
    }

    /// The single error's `line:col: message` (file name stripped).
    fn error(body: &str) -> String {
        let errors = load(body).expect_err("should fail");
        assert_eq!(errors.len(), 1, "{errors}");
        let e = &errors.0[0];
        format!("{}:{}: {}", e.line, e.column, e.message)
    }

    const ROLES: &str = "iam:\n  roles:\n    openbao: { instance_profile: true }\n";

    #[test]
    fn valid_sections_load() {
        let env = load(&format!(
            "{ROLES}kms:\n  unseal_key: {{ alias: alias/ctl-prod-unseal, description: d, openbao_role: openbao, extra_principals: [rds] }}\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let key = &env.kms_iam.kms_keys["unseal_key"];
        assert_eq!(key.alias, "alias/ctl-prod-unseal");
        assert_eq!(key.extra_principals, vec![ServicePrincipal::Rds]);
        let role = &env.kms_iam.iam_roles["openbao"];
        assert!(role.instance_profile);
        assert_eq!(role.trusted_services, vec!["ec2.amazonaws.com"]);
        assert_eq!(role.max_session_duration, Duration(3600));
    }

    #[test]
    fn bad_alias_is_located_at_the_value() {
        let e = error(&format!("{ROLES}kms:\n  k:\n    alias: ctl-prod-unseal\n    openbao_role: openbao\n"));
        assert!(e.starts_with("10:12: "), "{e}");
        assert!(e.contains("must start with \"alias/\""), "{e}");
        let e = error(&format!("{ROLES}kms:\n  k: {{ alias: alias/aws/ebs, openbao_role: openbao }}\n"));
        assert!(e.starts_with("9:15: ") && e.contains("reserved"), "{e}");
    }

    #[test]
    fn bad_role_name_is_located_at_the_key() {
        let e = error("iam:\n  roles:\n    Open_Bao: {}\n");
        assert!(e.starts_with("7:5: "), "{e}");
        assert!(e.contains("IAM role name \"Open_Bao\" is invalid"), "{e}");
        let long = "a".repeat(60);
        let e = error(&format!("iam:\n  roles:\n    {long}: {{}}\n"));
        assert!(e.starts_with("7:") && e.contains("longer than 64"), "{e}");
    }

    #[test]
    fn node_counts_other_than_1_3_5_are_refused() {
        for n in [0, 2, 4, 6, 7] {
            let e = error(&format!("openbao_cluster:\n  nodes: {n}\n  api_addresses: []\n"));
            assert!(e.starts_with("6:"), "{n}: {e}");
            assert!(e.contains("nodes must be 1, 3 or 5"), "{e}");
        }
        let e = error("openbao_cluster:\n  nodes: 3\n  api_addresses: [\"http://a:1\"]\n");
        assert!(e.starts_with("7:18: ") && e.contains("one address per node (3), has 1"), "{e}");
    }

    #[test]
    fn missing_references_are_located() {
        let e = error("iam: { roles: { api: {} } }\nkms:\n  k:\n    alias: alias/x\n    openbao_role: openbao\n");
        assert!(e.starts_with("9:19: "), "{e}");
        assert!(e.contains("openbao_role \"openbao\" is not declared in iam.roles (declared: api)"), "{e}");
        let e = error("openbao_cluster:\n  nodes: 1\n  api_addresses: [\"http://a:1\"]\n  seal_key: nope\n");
        assert!(e.starts_with("8:13: ") && e.contains("seal_key \"nope\" is not declared in kms"), "{e}");
        let e =
            error("openbao_cluster:\n  nodes: 1\n  api_addresses: [\"http://a:1\"]\n  kms_plugin: { artifact: p }\n");
        assert!(e.contains("artifact \"p\" is not declared"), "{e}");
    }

    #[test]
    fn kms_needs_an_aws_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, "openbao:\n  address: https://bao:8200\n  token_env: T\niam: { roles: { a: {} } }\n")
            .unwrap();
        let e = crate::config::load(&path).unwrap_err().to_string();
        assert!(e.contains(":4:6: iam needs an aws: section"), "{e}");
    }

    #[test]
    fn default_cluster_port_is_api_port_plus_one() {
        assert_eq!(default_cluster_address("https://10.0.0.1:8200"), "https://10.0.0.1:8201");
    }
}
