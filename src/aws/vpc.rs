//! The VPC (`network.vpc`): its CIDR block and DNS attributes.

use super::network::{self as net, described, find_vpc, need, tag_spec, unless_gone};
use super::network_common::{api, from_attrs};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpcAttrs {
    pub cidr: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

/// What `DescribeVpcs` and the two `DescribeVpcAttribute` calls return, as attributes.
pub fn normalize(v: &aws_sdk_ec2::types::Vpc, dns_support: Option<bool>, dns_hostnames: Option<bool>) -> VpcAttrs {
    VpcAttrs {
        cidr: v.cidr_block().unwrap_or_default().to_string(),
        enable_dns_support: dns_support.unwrap_or(false),
        enable_dns_hostnames: dns_hostnames.unwrap_or(false),
    }
}

/// Read one VPC's DNS attributes (one attribute per call, an EC2 rule) and normalise it.
pub async fn observe(aws: &Aws, ec2: &aws_sdk_ec2::Client, v: &aws_sdk_ec2::types::Vpc) -> Result<VpcAttrs, AwsError> {
    use aws_sdk_ec2::types::VpcAttributeName;
    let id = v.vpc_id().unwrap_or_default();
    let read = |name: VpcAttributeName| ec2.describe_vpc_attribute().vpc_id(id).attribute(name).send();
    let support = read(VpcAttributeName::EnableDnsSupport).await.map_err(|e| api(aws, "ec2", "DescribeVpcAttribute", e))?;
    let hostnames = read(VpcAttributeName::EnableDnsHostnames).await.map_err(|e| api(aws, "ec2", "DescribeVpcAttribute", e))?;
    Ok(normalize(
        v,
        support.enable_dns_support().and_then(|a| a.value()),
        hostnames.enable_dns_hostnames().and_then(|a| a.value()),
    ))
}

pub struct Vpc;

#[async_trait::async_trait]
impl KindHandler<Aws> for Vpc {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let a: VpcAttrs = from_attrs(&r.address, &r.attrs)?;
        let id = match find_vpc(aws, &ec2, r.address.as_str()).await? {
            Some(id) => id,
            None => ec2
                .create_vpc()
                .cidr_block(&a.cidr)
                .tag_specifications(tag_spec(aws, ResourceType::Vpc, &r.address))
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "CreateVpc", e))?
                .vpc()
                .and_then(|v| v.vpc_id())
                .map(str::to_string)
                .ok_or_else(|| AwsError::Other(format!("{}: CreateVpc returned no id", r.address)))?,
        };
        set_dns(aws, &ec2, &id, &a).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let r = u.after;
        let a: VpcAttrs = from_attrs(&r.address, &r.attrs)?;
        let id = need(find_vpc(aws, &ec2, r.address.as_str()).await?, "VPC", r.address.as_str())?;
        set_dns(aws, &ec2, &id, &a).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        if let Some(id) = find_vpc(aws, &ec2, r.address.as_str()).await? {
            unless_gone(aws, "DeleteVpc", ec2.delete_vpc().vpc_id(id).send().await, &[])?;
        }
        Ok(())
    }
}

async fn set_dns(aws: &Aws, ec2: &aws_sdk_ec2::Client, id: &str, a: &VpcAttrs) -> Result<(), AwsError> {
    // One attribute per call (an EC2 rule).
    let value = |v: bool| AttributeBooleanValue::builder().value(v).build();
    ec2.modify_vpc_attribute()
        .vpc_id(id)
        .enable_dns_support(value(a.enable_dns_support))
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyVpcAttribute", e))?;
    ec2.modify_vpc_attribute()
        .vpc_id(id)
        .enable_dns_hostnames(value(a.enable_dns_hostnames))
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyVpcAttribute", e))?;
    Ok(())
}

/// The VPCs tagged for this environment.
pub async fn list(aws: &Aws, ec2: &aws_sdk_ec2::Client) -> Result<Vec<aws_sdk_ec2::types::Vpc>, AwsError> {
    Ok(described!(aws, ec2, net::tag_filters(aws), describe_vpcs, "DescribeVpcs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_cidr_and_dns_flags() {
        let v = aws_sdk_ec2::types::Vpc::builder().vpc_id("vpc-1").cidr_block("10.0.0.0/16").build();
        let a = normalize(&v, Some(true), None);
        assert_eq!(a, VpcAttrs { cidr: "10.0.0.0/16".into(), enable_dns_support: true, enable_dns_hostnames: false });
    }
}
