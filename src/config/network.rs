//! The AWS infrastructure sections of an environment file: `network:`, `instances:` and `rds:`.
//!
//! ```yaml
//! network:
//!   vpc_cidr: 10.20.0.0/16
//!   public_subnets:  [ { name: public-a,  cidr: 10.20.0.0/24,  az: us-east-1a } ]
//!   private_subnets: [ { name: private-a, cidr: 10.20.10.0/24, az: us-east-1a },
//!                      { name: private-b, cidr: 10.20.11.0/24, az: us-east-1b } ]
//!   nat: { instance_type: t3.micro, ami: ami-1e749f67, subnet: public-a }
//!   s3_endpoint: true
//!   security_groups:
//!     api:     { ingress: [ { port: 443, cidr: 0.0.0.0/0 } ] }
//!     openbao: { ingress: [ { port: 8200, from: api } ] }
//!   elastic_ips:
//!     api: { instance: api.0 }    # or `nat`; omitted: allocated, not associated
//! instances:
//!   api:     { subnet: public-a,  instance_type: t3.small, ami: ami-1e749f67, security_group: api,
//!              public_ip: true, kms_key: <key id or ARN>, user_data_template: api }
//!   openbao: { subnet: private-a, count: 3, instance_type: t3.small, ami: ami-1e749f67,
//!              security_group: openbao, kms_key: <key id or ARN>, user_data_template: openbao }
//! rds:
//!   identifier: ctl-main
//!   engine: postgres
//!   instance_class: db.t3.micro
//!   allocated_storage: 20
//!   backup_retention_period: 30
//!   subnets: [ private-a, private-b ]
//!   kms_key: <key id or ARN>
//! ```
//!
//! Per-value checks (CIDRs, names, retention range, key references) happen while deserializing,
//! so errors carry the value's own position; cross-field checks (containment, overlap,
//! references) record a YAML path for [`super::load`] to locate.

use super::problems::Problems;
use super::names::NonEmpty;
use super::raw::UniqueMap;
use super::{Cidr, Origin, PathSeg};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

pub use super::network_values::{is_declared_key, kms_key_id};
pub(crate) use super::network_values::{DbIdentifier, Engine, InfraName, KmsKeyRef, Port, Protocol, RetentionDays, UserDataTemplate};

// ---------------------------------------------------------------------------------------------
// Raw (as written).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub vpc_cidr: Cidr,
    #[serde(default)]
    pub public_subnets: Vec<RawSubnet>,
    #[serde(default)]
    pub private_subnets: Vec<RawSubnet>,
    #[serde(default)]
    pub nat: Option<RawNat>,
    #[serde(default)]
    pub s3_endpoint: bool,
    #[serde(default)]
    pub security_groups: UniqueMap<InfraName, RawSecurityGroup>,
    #[serde(default)]
    pub elastic_ips: UniqueMap<InfraName, RawElasticIp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawElasticIp {
    /// `nat`, `<instance group>` (its first instance) or `<instance group>.<index>`.
    #[serde(default)]
    pub instance: Option<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubnet {
    pub name: InfraName,
    pub cidr: Cidr,
    pub az: NonEmpty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNat {
    pub instance_type: NonEmpty,
    pub ami: NonEmpty,
    pub subnet: InfraName,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurityGroup {
    #[serde(default)]
    pub description: Option<NonEmpty>,
    #[serde(default)]
    pub ingress: Vec<RawIngress>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIngress {
    pub port: Port,
    #[serde(default)]
    pub to_port: Option<Port>,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub cidr: Option<Cidr>,
    #[serde(default)]
    pub from: Option<InfraName>,
}

fn one() -> u32 {
    1
}

fn eight() -> u32 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    pub subnet: InfraName,
    pub instance_type: NonEmpty,
    pub ami: NonEmpty,
    pub security_group: InfraName,
    pub kms_key: KmsKeyRef,
    #[serde(default)]
    pub user_data_template: Option<UserDataTemplate>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub public_ip: Option<bool>,
    #[serde(default = "eight")]
    pub root_volume_size: u32,
    #[serde(default)]
    pub artifacts: Vec<NonEmpty>,
    #[serde(default)]
    pub vars: UniqueMap<NonEmpty, String>,
    /// An `iam:` role with `instance_profile: true`: the instances run with its profile.
    #[serde(default)]
    pub instance_profile: Option<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRds {
    pub identifier: DbIdentifier,
    pub engine: Engine,
    pub instance_class: NonEmpty,
    pub allocated_storage: u32,
    #[serde(default)]
    pub backup_retention_period: RetentionDays,
    pub subnets: Vec<InfraName>,
    pub kms_key: KmsKeyRef,
    #[serde(default)]
    pub master_username: Option<NonEmpty>,
}

// ---------------------------------------------------------------------------------------------
// Validated.

/// The AWS infrastructure an environment declares (all empty when it declares none).
#[derive(Debug, Clone, Default)]
pub struct Infra {
    pub network: Option<Network>,
    /// Instance groups, in file order.
    pub instances: Vec<InstanceGroup>,
    pub rds: Option<Rds>,
}

impl Infra {
    pub fn is_empty(&self) -> bool {
        self.network.is_none() && self.instances.is_empty() && self.rds.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_cidr: Cidr,
    /// Public subnets first, then private, each in file order.
    pub subnets: Vec<Subnet>,
    pub nat: Option<Nat>,
    pub s3_endpoint: bool,
    pub security_groups: Vec<SecurityGroup>,
    /// In file order.
    pub elastic_ips: Vec<ElasticIp>,
}

/// A public address kept across instance replacements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticIp {
    pub name: String,
    pub instance: Option<EipTarget>,
}

/// What an Elastic IP is associated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EipTarget {
    Nat,
    Instance { group: String, index: u32 },
}

impl Network {
    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub name: String,
    pub cidr: Cidr,
    pub az: String,
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat {
    pub instance_type: String,
    pub ami: String,
    /// A public subnet.
    pub subnet: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub ingress: Vec<Ingress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source: IngressSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressSource {
    Cidr(Cidr),
    /// Another security group of this environment, by name.
    Group(String),
}

#[derive(Debug, Clone)]
pub struct InstanceGroup {
    pub name: String,
    pub subnet: String,
    pub instance_type: String,
    pub ami: String,
    pub security_group: String,
    /// KMS key id for the encrypted root volume.
    pub kms_key_id: String,
    pub user_data_template: Option<String>,
    pub count: u32,
    pub public_ip: bool,
    pub root_volume_size: u32,
    /// Boot artifacts (names from the pinned-artifacts list) the instance needs.
    pub artifacts: Vec<String>,
    /// Extra template variables (`{{vars.x}}`).
    pub vars: BTreeMap<String, String>,
    /// The `iam:` role whose instance profile the instances run with.
    pub instance_profile: Option<String>,
    /// Where the group is declared (`instances.<name>`).
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Rds {
    pub identifier: String,
    pub engine: String,
    pub instance_class: String,
    pub allocated_storage: u32,
    pub backup_retention_period: u8,
    /// Private subnet names.
    pub subnets: Vec<String>,
    pub kms_key_id: String,
    pub master_username: String,
}

/// Validate the three sections (file 0 is the environment file).
pub(crate) fn validate(
    file: &Path,
    network: Option<&RawNetwork>,
    instances: &UniqueMap<InfraName, RawInstance>,
    rds: Option<&RawRds>,
    problems: &mut Problems,
) -> Infra {
    let key = |k: &str| PathSeg::key(k);
    let mut infra = Infra::default();
    if let Some(raw) = network {
        infra.network = Some(validate_network(raw, problems));
    }
    let no_network = "needs a network: section (the VPC and subnets it lives in)";
    for (name, raw) in &instances.0 {
        let at = |field: &str| vec![key("instances"), key(&name.0), key(field)];
        let Some(net) = &infra.network else {
            problems.at(
                0,
                vec![key("instances"), key(&name.0)],
                format!("instance {name} {no_network}"),
            );
            continue;
        };
        let subnet = net.subnet(&raw.subnet.0);
        match subnet {
            None => problems.at(
                0,
                at("subnet"),
                format!(
                    "instance {name}: no subnet named {:?} in network",
                    raw.subnet.0
                ),
            ),
            Some(s) if !s.public && raw.public_ip == Some(true) => problems.at(
                0,
                at("public_ip"),
                format!(
                    "instance {name}: public_ip is not possible in private subnet {:?}",
                    s.name
                ),
            ),
            Some(_) => {}
        }
        if !net
            .security_groups
            .iter()
            .any(|g| g.name == raw.security_group.0)
        {
            problems.at(
                0,
                at("security_group"),
                format!(
                    "instance {name}: no security group named {:?} in network.security_groups",
                    raw.security_group.0
                ),
            );
        }
        if raw.count == 0 || raw.count > 9 {
            problems.at(
                0,
                at("count"),
                format!("instance {name}: count {} is out of range (1-9)", raw.count),
            );
        }
        if raw.root_volume_size < 8 || raw.root_volume_size > 16384 {
            problems.at(
                0,
                at("root_volume_size"),
                format!("instance {name}: root_volume_size must be 8-16384 GiB"),
            );
        }
        infra.instances.push(InstanceGroup {
            name: name.0.clone(),
            subnet: raw.subnet.0.clone(),
            instance_type: raw.instance_type.0.clone(),
            ami: raw.ami.0.clone(),
            security_group: raw.security_group.0.clone(),
            kms_key_id: raw.kms_key.0.clone(),
            user_data_template: raw.user_data_template.as_ref().map(|t| t.0.clone()),
            count: raw.count,
            public_ip: raw.public_ip.unwrap_or(subnet.is_some_and(|s| s.public)),
            root_volume_size: raw.root_volume_size,
            artifacts: raw.artifacts.iter().map(|a| a.0.clone()).collect(),
            vars: raw
                .vars
                .0
                .iter()
                .map(|(k, v)| (k.0.clone(), v.clone()))
                .collect(),
            instance_profile: raw.instance_profile.as_ref().map(|p| p.0.clone()),
            origin: Origin::new(file, vec![key("instances"), key(&name.0)]),
        });
    }
    if let (Some(raw), Some(net)) = (network, infra.network.as_mut()) {
        net.elastic_ips = validate_elastic_ips(raw, &infra.instances, problems);
    }
    if let Some(raw) = rds {
        let at = |field: &str| vec![key("rds"), key(field)];
        match &infra.network {
            None => problems.at(0, vec![key("rds")], format!("rds {no_network}")),
            Some(net) => {
                let mut azs = BTreeSet::new();
                let mut resolved = true;
                for (i, s) in raw.subnets.iter().enumerate() {
                    let here = vec![key("rds"), key("subnets"), PathSeg::Index(i)];
                    match net.subnet(&s.0) {
                        None => {
                            resolved = false;
                            problems.at(
                                0,
                                here,
                                format!("rds: no subnet named {:?} in network", s.0),
                            );
                        }
                        Some(sub) if sub.public => {
                            resolved = false;
                            problems.at(
                                0,
                                here,
                                format!("rds: subnet {:?} is public; the database belongs in private subnets", s.0),
                            );
                        }
                        Some(sub) => {
                            azs.insert(sub.az.clone());
                        }
                    }
                }
                if azs.len() < 2 && resolved {
                    problems.at(0, at("subnets"), "rds: the DB subnet group needs private subnets in at least 2 availability zones");
                }
            }
        }
        if raw.allocated_storage < 20 || raw.allocated_storage > 65536 {
            problems.at(
                0,
                at("allocated_storage"),
                "rds: allocated_storage must be 20-65536 GiB for postgres",
            );
        }
        infra.rds = Some(Rds {
            identifier: raw.identifier.0.clone(),
            engine: raw.engine.0.clone(),
            instance_class: raw.instance_class.0.clone(),
            allocated_storage: raw.allocated_storage,
            backup_retention_period: raw.backup_retention_period.0,
            subnets: raw.subnets.iter().map(|s| s.0.clone()).collect(),
            kms_key_id: raw.kms_key.0.clone(),
            master_username: raw
                .master_username
                .as_ref()
                .map_or_else(|| "ctl_admin".to_string(), |u| u.0.clone()),
        });
    }
    infra
}

fn validate_network(raw: &RawNetwork, problems: &mut Problems) -> Network {
    let key = |k: &str| PathSeg::key(k);
    let vpc = &raw.vpc_cidr;
    if !vpc.addr().is_ipv4() || !(16..=28).contains(&vpc.prefix_len()) {
        problems.at(
            0,
            vec![key("network"), key("vpc_cidr")],
            format!(
                "vpc_cidr {vpc} is invalid: a VPC needs an IPv4 CIDR with a prefix from /16 to /28"
            ),
        );
    }
    let mut subnets: Vec<(Subnet, Vec<PathSeg>)> = Vec::new();
    for (section, public, list) in [
        ("public_subnets", true, &raw.public_subnets),
        ("private_subnets", false, &raw.private_subnets),
    ] {
        for (i, s) in list.iter().enumerate() {
            let base = vec![key("network"), key(section), PathSeg::Index(i)];
            let at = |f: &str| {
                let mut p = base.clone();
                p.push(key(f));
                p
            };
            if let Some((_, other)) = subnets.iter().find(|(o, _)| o.name == s.name.0) {
                problems.at(
                    0,
                    at("name"),
                    format!(
                        "duplicate subnet name {:?} (first declared at {})",
                        s.name.0,
                        show(other)
                    ),
                );
            }
            if !s.cidr.addr().is_ipv4() || !(16..=28).contains(&s.cidr.prefix_len()) {
                problems.at(
                    0,
                    at("cidr"),
                    format!(
                        "subnet {} cidr {} is invalid: an IPv4 CIDR from /16 to /28",
                        s.name, s.cidr
                    ),
                );
            } else if !contains(vpc, &s.cidr) {
                problems.at(
                    0,
                    at("cidr"),
                    format!(
                        "subnet {} cidr {} is not inside vpc_cidr {vpc}",
                        s.name, s.cidr
                    ),
                );
            } else if let Some((other, _)) =
                subnets.iter().find(|(o, _)| overlaps(&o.cidr, &s.cidr))
            {
                problems.at(
                    0,
                    at("cidr"),
                    format!(
                        "subnet {} cidr {} overlaps subnet {} ({})",
                        s.name, s.cidr, other.name, other.cidr
                    ),
                );
            }
            let sub = Subnet {
                name: s.name.0.clone(),
                cidr: s.cidr.clone(),
                az: s.az.0.clone(),
                public,
            };
            subnets.push((sub, base));
        }
    }
    let subnets: Vec<Subnet> = subnets.into_iter().map(|(s, _)| s).collect();

    let nat = raw.nat.as_ref().map(|n| {
        let at = vec![key("network"), key("nat"), key("subnet")];
        match subnets.iter().find(|s| s.name == n.subnet.0) {
            None => problems.at(
                0,
                at,
                format!("nat: no subnet named {:?} in network", n.subnet.0),
            ),
            Some(s) if !s.public => problems.at(
                0,
                at,
                format!(
                    "nat: subnet {:?} is private; the NAT instance needs a public subnet",
                    s.name
                ),
            ),
            Some(_) => {}
        }
        Nat {
            instance_type: n.instance_type.0.clone(),
            ami: n.ami.0.clone(),
            subnet: n.subnet.0.clone(),
        }
    });

    let names: BTreeSet<&str> = raw
        .security_groups
        .0
        .iter()
        .map(|(n, _)| n.0.as_str())
        .collect();
    let mut groups = Vec::new();
    for (name, g) in &raw.security_groups.0 {
        if name.0 == NAT_GROUP {
            problems.at(
                0,
                vec![key("network"), key("security_groups"), key(&name.0)],
                format!(
                    "security group name {NAT_GROUP:?} is reserved for the NAT instance's group"
                ),
            );
        }
        let mut ingress = Vec::new();
        for (i, rule) in g.ingress.iter().enumerate() {
            let at = vec![
                key("network"),
                key("security_groups"),
                key(&name.0),
                key("ingress"),
                PathSeg::Index(i),
            ];
            let to_port = rule.to_port.unwrap_or(rule.port).0;
            if to_port < rule.port.0 {
                problems.at(
                    0,
                    at.clone(),
                    format!(
                        "security group {name}: to_port {to_port} is below port {}",
                        rule.port.0
                    ),
                );
            }
            let source = match (&rule.cidr, &rule.from) {
                (Some(c), None) => IngressSource::Cidr(c.clone()),
                (None, Some(from)) => {
                    if !names.contains(from.0.as_str()) {
                        let mut p = at.clone();
                        p.push(key("from"));
                        problems.at(
                            0,
                            p,
                            format!(
                                "security group {name}: no security group named {:?} to allow from",
                                from.0
                            ),
                        );
                    }
                    IngressSource::Group(from.0.clone())
                }
                _ => {
                    problems.at(0, at, format!("security group {name}: each ingress rule needs exactly one of cidr or from"));
                    continue;
                }
            };
            ingress.push(Ingress {
                protocol: rule.protocol.0.clone(),
                from_port: rule.port.0,
                to_port,
                source,
            });
        }
        let description = g
            .description
            .as_ref()
            .map_or_else(|| format!("ctl: {name}"), |d| d.0.clone());
        groups.push(SecurityGroup {
            name: name.0.clone(),
            description,
            ingress,
        });
    }

    Network {
        vpc_cidr: vpc.clone(),
        subnets,
        nat,
        s3_endpoint: raw.s3_endpoint,
        security_groups: groups,
        elastic_ips: Vec::new(), // resolved against the instances in `validate`
    }
}

/// Each Elastic IP's `instance:` names the NAT instance or one declared instance.
fn validate_elastic_ips(raw: &RawNetwork, instances: &[InstanceGroup], problems: &mut Problems) -> Vec<ElasticIp> {
    let mut out = Vec::new();
    for (name, eip) in &raw.elastic_ips.0 {
        let at = vec![PathSeg::key("network"), PathSeg::key("elastic_ips"), PathSeg::key(&name.0), PathSeg::key("instance")];
        let instance = eip.instance.as_ref().and_then(|target| {
            let target = target.0.as_str();
            if target == "nat" {
                if raw.nat.is_none() {
                    problems.at(0, at.clone(), format!("elastic ip {name}: instance nat, but network has no nat:"));
                }
                return Some(EipTarget::Nat);
            }
            let (group, index) = match target.split_once('.') {
                Some((g, i)) => (g, i.parse::<u32>().ok()),
                None => (target, Some(0)),
            };
            let Some(index) = index else {
                problems.at(0, at.clone(), format!("elastic ip {name}: {target:?} is not nat, <instance group> or <instance group>.<index>"));
                return None;
            };
            match instances.iter().find(|g| g.name == group) {
                None => problems.at(0, at.clone(), format!("elastic ip {name}: no instance group named {group:?}")),
                Some(g) if index >= g.count => {
                    problems.at(0, at.clone(), format!("elastic ip {name}: instance group {group} has {} instance(s); {target} does not exist", g.count))
                }
                Some(_) => {}
            }
            Some(EipTarget::Instance { group: group.to_string(), index })
        });
        out.push(ElasticIp { name: name.0.clone(), instance });
    }
    out
}

/// The security group ctl creates for the NAT instance (not declarable).
pub const NAT_GROUP: &str = "nat";

fn show(path: &[PathSeg]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

fn range(c: &Cidr) -> (u128, u128) {
    let (bits, width) = match c.addr() {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let host = width - u32::from(c.prefix_len());
    let size = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    (bits, bits.saturating_add(size))
}

fn same_family(a: &Cidr, b: &Cidr) -> bool {
    a.addr().is_ipv4() == b.addr().is_ipv4()
}

/// Whether `inner` lies entirely inside `outer`.
pub fn contains(outer: &Cidr, inner: &Cidr) -> bool {
    let (a0, a1) = range(outer);
    let (b0, b1) = range(inner);
    same_family(outer, inner) && a0 <= b0 && b1 <= a1
}

/// Whether two networks share any address.
pub fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    let (a0, a1) = range(a);
    let (b0, b1) = range(b);
    same_family(a, b) && a0 <= b1 && b0 <= a1
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
