//! EC2 instance kinds: workload instances (`instances:`, e.g. the API and the OpenBao nodes)
//! and the NAT instance of the network.
//!
//! - Root volumes are encrypted with the declared KMS key, set explicitly in the block-device
//!   mapping (account-level EBS default encryption is not relied on).
//! - User data is rendered from `templates/userdata/<name>.hbs` (strict handlebars), sent
//!   base64-encoded, and compared by content: a change replaces the instance, like a change of
//!   AMI, subnet, instance type or root volume.
//! - The NAT instance has no key pair and `SourceDestCheck=false` (it forwards other hosts'
//!   traffic); turning the check back on is drift that `ctl apply` reverts in place.

use super::network::{self, group_address, subnet_address, Ids, NAT};
use super::network_common::{self as common, api, from_attrs, set, to_attrs};
use super::{Aws, AwsError};
use crate::config::{ConfigError, Environment, InstanceGroup, Nat, NAT_GROUP};
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Resource, Scope};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, BlockDeviceMapping, EbsBlockDevice, Filter, InstanceAttributeName,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, ResourceType,
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The root device of the AMIs ctl launches (moto's and most Linux AMIs).
const ROOT_DEVICE: &str = "/dev/sda1";
/// How long a delete waits for an instance to reach `terminated` (security groups and subnets
/// cannot be deleted while it is shutting down).
const TERMINATE_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAttrs {
    pub ami: String,
    pub instance_type: String,
    pub subnet: String,
    pub security_groups: Vec<String>,
    /// Always null: no SSH key pairs (access is through the control plane).
    pub key_name: Option<String>,
    pub public_ip: bool,
    pub source_dest_check: bool,
    pub root_volume_encrypted: bool,
    /// The KMS key id encrypting the root volume (null: the account's default EBS key).
    pub root_volume_kms_key: Option<String>,
    pub root_volume_size: i32,
    pub user_data_sha256: String,
    /// Boot artifacts (checked against their pins before a launch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// The IAM instance profile's name (`ctl-<env>-<role>`), if it runs with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
}

pub fn instance_address(group: &str, index: u32) -> Address {
    Address::new(format!("instance.{group}.{index}"))
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What a user-data template sees.
#[derive(Serialize)]
struct UserDataContext<'a> {
    environment: &'a str,
    group: &'a str,
    index: u32,
    address: String,
    vpc_cidr: String,
    vars: &'a BTreeMap<String, String>,
}

/// The NAT instance's boot script: forward and masquerade the VPC's traffic.
const NAT_USER_DATA: &str = "#!/bin/sh\n# ctl: NAT instance\nsysctl -w net.ipv4.ip_forward=1\n\
iptables -t nat -C POSTROUTING -o eth0 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n";

fn resource(
    address: Address,
    kind: Kind,
    attrs: &InstanceAttrs,
    deps: Vec<Address>,
    user_data: &str,
) -> Resource {
    let name = address.to_string();
    let mut attrs = to_attrs(attrs);
    // The rendered script travels in the plan (apply needs it); its hash is what is compared.
    attrs.insert("user_data".into(), serde_json::Value::from(user_data));
    Resource {
        address,
        kind,
        scope: Scope::Root,
        name,
        attrs,
        depends_on: deps,
        container: None,
    }
}

pub fn nat_desired(nat: &Nat) -> Resource {
    let attrs = InstanceAttrs {
        ami: nat.ami.clone(),
        instance_type: nat.instance_type.clone(),
        subnet: subnet_address(&nat.subnet).to_string(),
        security_groups: vec![group_address(NAT_GROUP).to_string()],
        key_name: None,
        public_ip: true,
        source_dest_check: false,
        root_volume_encrypted: true,
        root_volume_kms_key: None,
        root_volume_size: 8,
        user_data_sha256: sha256(NAT_USER_DATA),
        instance_profile: None,
        artifacts: Vec::new(),
    };
    resource(
        Address::new(NAT),
        Kind::NatInstance,
        &attrs,
        vec![subnet_address(&nat.subnet), group_address(NAT_GROUP)],
        NAT_USER_DATA,
    )
}

/// Workload instances: one resource per instance of each group. User data is rendered here, so
/// a missing template or variable is an error located at the group, before any API call.
pub fn desired(
    env: &Environment,
    templates_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<Resource> {
    let Some(net) = &env.infra.network else {
        return Vec::new();
    };
    let mut hb = crate::templates::engine();
    let mut out = Vec::new();
    for g in &env.infra.instances {
        let template = match &g.user_data_template {
            Some(name) => {
                let path = templates_dir.join("userdata").join(format!("{name}.hbs"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => match hb.register_template_string(name, text) {
                        Ok(()) => Some(name.clone()),
                        Err(e) => {
                            errors.push(
                                g.origin
                                    .join([crate::config::PathSeg::key("user_data_template")])
                                    .error(format!("user-data template {}: {e}", path.display())),
                            );
                            continue;
                        }
                    },
                    Err(e) => {
                        errors.push(
                            g.origin
                                .join([crate::config::PathSeg::key("user_data_template")])
                                .error(format!(
                                    "cannot read user-data template {}: {e}",
                                    path.display()
                                )),
                        );
                        continue;
                    }
                }
            }
            None => None,
        };
        for index in 0..g.count {
            let address = instance_address(&g.name, index);
            let user_data = match &template {
                Some(name) => {
                    let ctx = UserDataContext {
                        environment: &env.name,
                        group: &g.name,
                        index,
                        address: address.to_string(),
                        vpc_cidr: net.vpc_cidr.to_string(),
                        vars: &g.vars,
                    };
                    match hb.render(name, &ctx) {
                        Ok(text) => text,
                        Err(e) => {
                            errors.push(
                                g.origin
                                    .join([crate::config::PathSeg::key("user_data_template")])
                                    .error(format!("rendering user-data template {name:?}: {e}")),
                            );
                            break;
                        }
                    }
                }
                None => String::new(),
            };
            out.push(instance_resource(&env.name, g, address, &user_data));
        }
    }
    out
}

fn instance_resource(environment: &str, g: &InstanceGroup, address: Address, user_data: &str) -> Resource {
    let attrs = InstanceAttrs {
        ami: g.ami.clone(),
        instance_type: g.instance_type.clone(),
        subnet: subnet_address(&g.subnet).to_string(),
        security_groups: vec![group_address(&g.security_group).to_string()],
        key_name: None,
        public_ip: g.public_ip,
        source_dest_check: true,
        root_volume_encrypted: true,
        root_volume_kms_key: Some(super::kms::reference(&g.kms_key_id)),
        root_volume_size: i32::try_from(g.root_volume_size).unwrap_or(i32::MAX),
        user_data_sha256: sha256(user_data),
        artifacts: g.artifacts.clone(),
        instance_profile: g.instance_profile.as_ref().map(|role| crate::config::iam_name(environment, role)),
    };
    resource(
        address,
        Kind::Instance,
        &attrs,
        [subnet_address(&g.subnet), group_address(&g.security_group)]
            .into_iter()
            .chain(super::kms::declared_dependency(&g.kms_key_id))
            .chain(g.instance_profile.as_deref().map(super::resources::profile_address))
            .collect(),
        user_data,
    )
}

// ---------------------------------------------------------------------------------------------
// Observe.

/// This environment's instances that are not (being) terminated.
fn live_filters(aws: &Aws) -> Vec<Filter> {
    let mut filters = network::tag_filters(aws);
    let live = ["pending", "running", "stopping", "stopped"].map(String::from).to_vec();
    filters.push(Filter::builder().name("instance-state-name").set_values(Some(live)).build());
    filters
}

/// Read this environment's instances (NAT and workload). Records instance ids and primary
/// network interface ids in `ids` (route targets).
pub async fn observe(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    ids: &mut Ids,
) -> Result<Vec<Resource>, AwsError> {
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(live_filters(aws)))
        .into_paginator()
        .send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api(aws, "ec2", "DescribeInstances", e))?;
        for res in page.reservations() {
            for i in res.instances() {
                let tags = i.tags().iter().filter_map(|t| Some((t.key()?, t.value()?)));
                let (Some(addr), Some(id)) = (common::owned_address(aws, tags), i.instance_id())
                else {
                    continue;
                };
                ids.0.insert(id.to_string(), addr.clone());
                for nic in i.network_interfaces() {
                    if let Some(eni) = nic.network_interface_id() {
                        ids.0.insert(eni.to_string(), addr.clone());
                    }
                }
                instances.push((addr, i.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (addr, i) in instances {
        let id = i.instance_id().unwrap_or_default();
        let kind = if addr.as_str() == NAT {
            Kind::NatInstance
        } else {
            Kind::Instance
        };
        let user_data = ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeInstanceAttribute", e))?;
        let user_data = user_data
            .user_data()
            .and_then(|v| v.value())
            .unwrap_or_default();
        let user_data = base64::engine::general_purpose::STANDARD
            .decode(user_data.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| user_data.to_string());
        let sdc = ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::SourceDestCheck)
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeInstanceAttribute", e))?;
        let volume = match root_volume_id(&i) {
            Some(vid) => {
                let v = ec2.describe_volumes().volume_ids(vid).send().await;
                v.map_err(|e| api(aws, "ec2", "DescribeVolumes", e))?.volumes().first().cloned()
            }
            None => None,
        };
        let live = Live { source_dest_check: sdc.source_dest_check().and_then(|v| v.value()), root_volume: volume.as_ref(), user_data: &user_data };
        let attrs = normalize(&i, ids, kind == Kind::NatInstance, &live);
        out.push(resource(addr, kind, &attrs, vec![], &user_data));
    }
    Ok(out)
}

fn root_volume_id(i: &aws_sdk_ec2::types::Instance) -> Option<&str> {
    let root = i.root_device_name().unwrap_or(ROOT_DEVICE);
    i.block_device_mappings().iter().find(|m| m.device_name() == Some(root)).and_then(|m| m.ebs()).and_then(|e| e.volume_id())
}

/// What `DescribeInstances` does not say about an instance, read separately.
pub struct Live<'a> {
    pub source_dest_check: Option<bool>,
    pub root_volume: Option<&'a aws_sdk_ec2::types::Volume>,
    /// Decoded.
    pub user_data: &'a str,
}

/// A described instance as attributes: references by address where they are ctl's, the root
/// volume's key as its id (none for the NAT, whose volume uses the account's default key).
pub fn normalize(i: &aws_sdk_ec2::types::Instance, ids: &Ids, nat: bool, live: &Live<'_>) -> InstanceAttrs {
    let volume = live.root_volume;
    let kms = volume.and_then(|v| v.kms_key_id()).map(|k| crate::config::kms_key_id(k).unwrap_or_else(|| k.to_string()));
    InstanceAttrs {
        ami: i.image_id().unwrap_or_default().to_string(),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        subnet: ids.show(i.subnet_id().unwrap_or_default()),
        // Groups of the instance and of its primary interface (where RunInstances with a
        // network-interface specification puts them).
        security_groups: set(i
            .security_groups()
            .iter()
            .chain(
                i.network_interfaces()
                    .iter()
                    .filter(|n| n.attachment().and_then(|a| a.device_index()).unwrap_or(0) == 0)
                    .flat_map(|n| n.groups()),
            )
            .filter_map(|g| g.group_id())
            .map(|g| ids.show(g))
            .collect()),
        key_name: i.key_name().map(str::to_string),
        public_ip: i.public_ip_address().is_some(),
        source_dest_check: live.source_dest_check.or(i.source_dest_check()).unwrap_or(true),
        root_volume_encrypted: volume.and_then(|v| v.encrypted()).unwrap_or(false),
        root_volume_kms_key: if nat { None } else { kms },
        root_volume_size: volume.and_then(|v| v.size()).unwrap_or(0),
        user_data_sha256: sha256(live.user_data),
        artifacts: tagged_artifacts(i),
        // The profile's ARN ends in its name.
        instance_profile: i.iam_instance_profile().and_then(|p| p.arn()).and_then(|a| a.rsplit('/').next()).map(str::to_string),
    }
}

/// The artifacts an instance was launched with, from its `ctl-artifacts` tag.
fn tagged_artifacts(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(ARTIFACTS_TAG))
        .and_then(|t| t.value())
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

const ARTIFACTS_TAG: &str = "ctl-artifacts";

// ---------------------------------------------------------------------------------------------
// Apply.

/// The running (or pending/stopped) instance tagged with `address`.
pub async fn find(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    address: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, AwsError> {
    let mut filters = live_filters(aws);
    filters.push(
        Filter::builder()
            .name(format!("tag:{}", common::ADDRESS))
            .values(address)
            .build(),
    );
    let out = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "DescribeInstances", e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// The primary network interface of the instance at `address` (a route target).
pub async fn primary_eni(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    address: &str,
) -> Result<Option<String>, AwsError> {
    Ok(find(aws, ec2, address).await?.and_then(|i| {
        i.network_interfaces()
            .iter()
            .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
            .or(i.network_interfaces().first())
            .and_then(|n| n.network_interface_id())
            .map(str::to_string)
    }))
}

async fn create(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: InstanceAttrs = from_attrs(&r.address, &r.attrs)?;
    let addr = r.address.as_str();
    let id = match find(aws, ec2, addr).await? {
        Some(i) => i.instance_id().unwrap_or_default().to_string(), // a retried create
        None => launch(aws, ec2, r, &a).await?,
    };
    if !a.source_dest_check {
        set_source_dest_check(aws, ec2, &id, false).await?;
    }
    Ok(())
}

async fn launch(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    r: &Resource,
    a: &InstanceAttrs,
) -> Result<String, AwsError> {
    let addr = r.address.as_str();
    let user_data = r
        .attrs
        .get("user_data")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if sha256(user_data) != a.user_data_sha256 {
        return Err(AwsError::Other(format!(
            "{addr}: the plan's user data does not match its digest; run `ctl plan` again"
        )));
    }
    let subnet = network::find_subnet(aws, ec2, &a.subnet).await?;
    let subnet = subnet
        .ok_or_else(|| AwsError::Other(format!("{addr}: subnet {} does not exist", a.subnet)))?;
    let mut groups = Vec::new();
    for g in &a.security_groups {
        let id = network::find_group(aws, ec2, g).await?;
        groups.push(id.ok_or_else(|| {
            AwsError::Other(format!("{addr}: security group {g} does not exist"))
        })?);
    }
    let nic = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(subnet)
        .set_groups(Some(groups))
        .associate_public_ip_address(a.public_ip)
        .delete_on_termination(true)
        .build();
    let ebs = EbsBlockDevice::builder()
        .encrypted(a.root_volume_encrypted)
        .set_kms_key_id(match &a.root_volume_kms_key {
            Some(k) => Some(super::kms::resolve(aws, k).await?),
            None => None,
        })
        .volume_size(a.root_volume_size)
        .volume_type(aws_sdk_ec2::types::VolumeType::Gp3)
        .delete_on_termination(true)
        .build();
    let mut instance_tags = network::tag_spec(aws, ResourceType::Instance, &r.address);
    if !a.artifacts.is_empty() {
        let mut tags = instance_tags.tags().to_vec();
        tags.push(
            aws_sdk_ec2::types::Tag::builder()
                .key(ARTIFACTS_TAG)
                .value(a.artifacts.join(","))
                .build(),
        );
        instance_tags = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(tags))
            .build();
    }
    let out = ec2
        .run_instances()
        .image_id(&a.ami)
        .instance_type(InstanceType::from(a.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .network_interfaces(nic)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(ROOT_DEVICE)
                .ebs(ebs)
                .build(),
        )
        .user_data(base64::engine::general_purpose::STANDARD.encode(user_data))
        .set_iam_instance_profile(
            a.instance_profile
                .as_ref()
                .map(|name| aws_sdk_ec2::types::IamInstanceProfileSpecification::builder().name(name).build()),
        )
        .tag_specifications(instance_tags)
        .tag_specifications(network::tag_spec(aws, ResourceType::Volume, &r.address))
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "RunInstances", e))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .ok_or_else(|| AwsError::Other(format!("{addr}: RunInstances returned no instance")))
}

async fn set_source_dest_check(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    value: bool,
) -> Result<(), AwsError> {
    ec2.modify_instance_attribute()
        .instance_id(id)
        .source_dest_check(AttributeBooleanValue::builder().value(value).build())
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyInstanceAttribute", e))?;
    Ok(())
}

/// In-place changes: source/destination check and security groups (everything else replaces).
async fn update(aws: &Aws, ec2: &aws_sdk_ec2::Client, change: Update<'_>) -> Result<(), AwsError> {
    let r = change.after;
    let a: InstanceAttrs = from_attrs(&r.address, &r.attrs)?;
    let addr = r.address.as_str();
    let i = find(aws, ec2, addr)
        .await?
        .ok_or_else(|| AwsError::Other(format!("instance {addr} does not exist")))?;
    let id = i.instance_id().unwrap_or_default().to_string();
    let changed = |f: &str| change.changed(f);
    if changed("source_dest_check") {
        set_source_dest_check(aws, ec2, &id, a.source_dest_check).await?;
    }
    if changed("security_groups") {
        let mut groups = Vec::new();
        for g in &a.security_groups {
            let gid = network::find_group(aws, ec2, g).await?;
            groups.push(gid.ok_or_else(|| {
                AwsError::Other(format!("{addr}: security group {g} does not exist"))
            })?);
        }
        ec2.modify_instance_attribute()
            .instance_id(&id)
            .set_groups(Some(groups))
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "ModifyInstanceAttribute", e))?;
    }
    if changed("artifacts") {
        let value = a.artifacts.join(",");
        ec2.create_tags()
            .resources(&id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(ARTIFACTS_TAG)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "CreateTags", e))?;
    }
    Ok(())
}

/// Terminate and wait until terminated; "already gone" is success.
async fn delete(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let Some(i) = find(aws, ec2, r.address.as_str()).await? else {
        return Ok(());
    };
    let id = i.instance_id().unwrap_or_default().to_string();
    match ec2.terminate_instances().instance_ids(&id).send().await {
        Err(e) if common::code(&e).is_some_and(|c| c.contains("NotFound")) => return Ok(()),
        Err(e) => return Err(api(aws, "ec2", "TerminateInstances", e)),
        Ok(_) => {}
    }
    let deadline = tokio::time::Instant::now() + TERMINATE_WAIT;
    loop {
        let out = ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeInstances", e))?;
        let state = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .and_then(|i| i.state())
            .and_then(|s| s.name().cloned());
        if matches!(state, None | Some(InstanceState::Terminated)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(AwsError::Other(format!(
                "{}: instance {id} did not terminate within {}s",
                r.address,
                TERMINATE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

use InstanceStateName as InstanceState;

/// EC2 instances, the NAT instance included (one handler for both kinds).
pub struct Instance;

#[async_trait::async_trait]
impl KindHandler<Aws> for Instance {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        create(aws, &common::ec2(aws), r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        update(aws, &common::ec2(aws), u).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        delete(aws, &common::ec2(aws), r).await
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{GroupIdentifier, IamInstanceProfile, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment, Volume};

    #[test]
    fn normalizes_references_groups_key_and_profile() {
        let mut ids = Ids::default();
        ids.0.insert("subnet-1".into(), subnet_address("public-a"));
        ids.0.insert("sg-api".into(), group_address("api"));
        let key = "0a1b2c3d-0000-1111-2222-333344445555";
        let primary = InstanceNetworkInterface::builder()
            .attachment(InstanceNetworkInterfaceAttachment::builder().device_index(0).build())
            .groups(GroupIdentifier::builder().group_id("sg-api").build())
            .build();
        let secondary = InstanceNetworkInterface::builder()
            .attachment(InstanceNetworkInterfaceAttachment::builder().device_index(1).build())
            .groups(GroupIdentifier::builder().group_id("sg-other").build())
            .build();
        let i = Instance::builder()
            .image_id("ami-1")
            .subnet_id("subnet-1")
            .network_interfaces(primary)
            .network_interfaces(secondary)
            .iam_instance_profile(IamInstanceProfile::builder().arn("arn:aws:iam::123456789012:instance-profile/ctl-prod-api").build())
            .build();
        let volume = Volume::builder().encrypted(true).size(16).kms_key_id(format!("arn:aws:kms:us-east-1:123456789012:key/{key}")).build();
        let live = Live { source_dest_check: None, root_volume: Some(&volume), user_data: "#!/bin/sh\n" };
        let a = normalize(&i, &ids, false, &live);
        assert_eq!(a.subnet, "network.subnet.public-a");
        assert_eq!(a.security_groups, ["network.security_group.api"], "only the primary interface's groups");
        assert_eq!(a.root_volume_kms_key.as_deref(), Some(key));
        assert_eq!((a.root_volume_encrypted, a.root_volume_size, a.source_dest_check), (true, 16, true));
        assert_eq!(a.instance_profile.as_deref(), Some("ctl-prod-api"));
        assert_eq!(a.user_data_sha256, sha256("#!/bin/sh\n"));
        let nat = normalize(&i, &ids, true, &Live { source_dest_check: Some(false), ..live });
        assert_eq!((nat.root_volume_kms_key, nat.source_dest_check), (None, false), "the NAT's volume uses the default key");
    }
}
