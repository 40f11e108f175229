//! Security groups (`network.security_group.<name>`) and their ingress rules, with sources
//! shown as CIDRs or ctl group addresses.

use super::network::{find_group, find_vpc, need, owned, tag_spec, unless_gone, Ids};
use super::network_common::{api, code, from_attrs, set};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAttrs {
    pub vpc: String,
    pub group_name: String,
    pub description: String,
    /// `"<protocol> <from>-<to> from <cidr | group address>"`, sorted.
    pub ingress: Vec<String>,
}

pub fn rule(protocol: &str, from: i32, to: i32, source: &str) -> String {
    if protocol == "-1" || protocol == "all" {
        format!("all from {source}")
    } else {
        format!("{protocol} {from}-{to} from {source}")
    }
}

/// `(protocol, from, to, source)` of a rule string.
fn parse_rule(s: &str) -> Option<(String, i32, i32, String)> {
    if let Some(source) = s.strip_prefix("all from ") {
        return Some(("-1".into(), -1, -1, source.to_string()));
    }
    let (proto, rest) = s.split_once(' ')?;
    let (ports, source) = rest.split_once(" from ")?;
    let (from, to) = ports.split_once('-')?;
    Some((proto.to_string(), from.parse().ok()?, to.parse().ok()?, source.to_string()))
}

pub fn normalize(g: &aws_sdk_ec2::types::SecurityGroup, ids: &Ids) -> GroupAttrs {
    let mut ingress = Vec::new();
    for p in g.ip_permissions() {
        let proto = p.ip_protocol().unwrap_or("-1");
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        for r in p.ip_ranges() {
            ingress.push(rule(proto, from, to, r.cidr_ip().unwrap_or_default()));
        }
        for pair in p.user_id_group_pairs() {
            ingress.push(rule(proto, from, to, &ids.show(pair.group_id().unwrap_or_default())));
        }
    }
    GroupAttrs {
        vpc: ids.show(g.vpc_id().unwrap_or_default()),
        group_name: g.group_name().unwrap_or_default().to_string(),
        description: g.description().unwrap_or_default().to_string(),
        ingress: set(ingress),
    }
}

pub struct SecurityGroup;

#[async_trait::async_trait]
impl KindHandler<Aws> for SecurityGroup {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let a: GroupAttrs = from_attrs(&r.address, &r.attrs)?;
        if find_group(aws, &ec2, r.address.as_str()).await?.is_none() {
            let vpc = need(find_vpc(aws, &ec2, &a.vpc).await?, "VPC", &a.vpc)?;
            let created = ec2
                .create_security_group()
                .vpc_id(vpc)
                .group_name(&a.group_name)
                .description(&a.description)
                .tag_specifications(tag_spec(aws, ResourceType::SecurityGroup, &r.address))
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(e) if code(&e) == Some("InvalidGroup.Duplicate") => {
                    return Err(AwsError::Other(format!(
                        "{}: a security group named {:?} already exists in the VPC and is not tagged for ctl; refusing to adopt it",
                        r.address, a.group_name
                    )))
                }
                Err(e) => return Err(api(aws, "ec2", "CreateSecurityGroup", e)),
            }
        }
        sync(aws, &ec2, r).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        sync(aws, &super::client::ec2(aws), u.after).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let Some(id) = find_group(aws, &ec2, r.address.as_str()).await? else { return Ok(()) };
        unless_gone(aws, "DeleteSecurityGroup", ec2.delete_security_group().group_id(id).send().await, &[])
    }
}

/// Make the group's ingress rules exactly the desired ones.
async fn sync(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: GroupAttrs = from_attrs(&r.address, &r.attrs)?;
    let addr = r.address.as_str();
    let id = need(find_group(aws, ec2, addr).await?, "security group", addr)?;
    let live = ec2
        .describe_security_groups()
        .group_ids(&id)
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "DescribeSecurityGroups", e))?;
    let Some(g) = live.security_groups().first() else {
        return Err(AwsError::Other(format!("security group {addr} vanished")));
    };
    // Live rules as (rule string → permission that revokes exactly it).
    let mut have: BTreeMap<String, IpPermission> = BTreeMap::new();
    for p in g.ip_permissions() {
        let proto = p.ip_protocol().unwrap_or("-1");
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let base = || IpPermission::builder().ip_protocol(proto).from_port(from).to_port(to);
        for range in p.ip_ranges() {
            let cidr = range.cidr_ip().unwrap_or_default();
            have.insert(rule(proto, from, to, cidr), base().ip_ranges(IpRange::builder().cidr_ip(cidr).build()).build());
        }
        for pair in p.user_id_group_pairs() {
            let gid = pair.group_id().unwrap_or_default();
            // The source is shown by address when it is one of ctl's groups.
            let shown = address_of_group(aws, ec2, gid).await?.unwrap_or_else(|| gid.to_string());
            have.insert(
                rule(proto, from, to, &shown),
                base().user_id_group_pairs(UserIdGroupPair::builder().group_id(gid).build()).build(),
            );
        }
    }
    let revoke: Vec<IpPermission> = have.iter().filter(|(k, _)| !a.ingress.contains(k)).map(|(_, p)| p.clone()).collect();
    if !revoke.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(revoke))
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "RevokeSecurityGroupIngress", e))?;
    }
    let mut add = Vec::new();
    for s in a.ingress.iter().filter(|s| !have.contains_key(*s)) {
        let (proto, from, to, source) = parse_rule(s).ok_or_else(|| AwsError::Other(format!("{addr}: malformed rule {s:?}")))?;
        let mut p = IpPermission::builder().ip_protocol(&proto);
        if proto != "-1" {
            p = p.from_port(from).to_port(to);
        }
        if source.starts_with("network.security_group.") {
            let gid = need(find_group(aws, ec2, &source).await?, "security group", &source)?;
            p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(gid).build());
        } else {
            p = p.ip_ranges(IpRange::builder().cidr_ip(&source).build());
        }
        add.push(p.build());
    }
    if !add.is_empty() {
        match ec2.authorize_security_group_ingress().group_id(&id).set_ip_permissions(Some(add)).send().await {
            Err(e) if code(&e) == Some("InvalidPermission.Duplicate") => {}
            Err(e) => return Err(api(aws, "ec2", "AuthorizeSecurityGroupIngress", e)),
            Ok(_) => {}
        }
    }
    Ok(())
}

async fn address_of_group(aws: &Aws, ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<String>, AwsError> {
    match ec2.describe_security_groups().group_ids(id).send().await {
        Ok(out) => Ok(out.security_groups().first().and_then(|g| owned(aws, g.tags())).map(|a| a.to_string())),
        Err(e) if super::network::is_gone(code(&e)) => Ok(None),
        Err(e) => Err(api(aws, "ec2", "DescribeSecurityGroups", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    #[test]
    fn rules_round_trip() {
        for s in ["tcp 443-443 from 0.0.0.0/0", "udp 53-54 from network.security_group.api", "all from 10.0.1.0/24"] {
            let (p, f, t, src) = parse_rule(s).unwrap();
            assert_eq!(rule(&p, f, t, &src), s);
        }
        assert_eq!(parse_rule("nonsense"), None);
    }

    #[test]
    fn rules_by_cidr_or_group_address_sorted() {
        let mut ids = Ids::default();
        ids.0.insert("sg-lb".into(), Address::new("network.security_group.lb"));
        let p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-lb").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-other").build())
            .build();
        let all = IpPermission::builder().ip_protocol("-1").ip_ranges(IpRange::builder().cidr_ip("10.0.1.0/24").build()).build();
        let g = aws_sdk_ec2::types::SecurityGroup::builder()
            .vpc_id("vpc-1")
            .group_name("prod-api")
            .description("api")
            .ip_permissions(p)
            .ip_permissions(all)
            .build();
        assert_eq!(
            normalize(&g, &ids).ingress,
            ["all from 10.0.1.0/24", "tcp 443-443 from 10.0.0.0/8", "tcp 443-443 from network.security_group.lb", "tcp 443-443 from sg-other"]
        );
    }
}
