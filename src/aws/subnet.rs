//! Subnets (`network.subnet.<name>`): VPC, CIDR, availability zone, and whether instances
//! launched there get a public address.

use super::network::{find_subnet, find_vpc, need, tag_spec, unless_gone, Ids};
use super::network_common::{api, from_attrs};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetAttrs {
    pub vpc: String,
    pub cidr: String,
    pub az: String,
    /// `MapPublicIpOnLaunch`: public subnets give instances a public address.
    pub public: bool,
}

/// A described subnet as attributes (its VPC by address when it is ctl's).
pub fn normalize(s: &aws_sdk_ec2::types::Subnet, ids: &Ids) -> SubnetAttrs {
    SubnetAttrs {
        vpc: ids.show(s.vpc_id().unwrap_or_default()),
        cidr: s.cidr_block().unwrap_or_default().to_string(),
        az: s.availability_zone().unwrap_or_default().to_string(),
        public: s.map_public_ip_on_launch().unwrap_or(false),
    }
}

pub struct Subnet;

#[async_trait::async_trait]
impl KindHandler<Aws> for Subnet {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let addr = r.address.as_str();
        let a: SubnetAttrs = from_attrs(&r.address, &r.attrs)?;
        let id = match find_subnet(aws, &ec2, addr).await? {
            Some(id) => id,
            None => {
                let vpc = need(find_vpc(aws, &ec2, &a.vpc).await?, "VPC", &a.vpc)?;
                ec2.create_subnet()
                    .vpc_id(vpc)
                    .cidr_block(&a.cidr)
                    .availability_zone(&a.az)
                    .tag_specifications(tag_spec(aws, ResourceType::Subnet, &r.address))
                    .send()
                    .await
                    .map_err(|e| api(aws, "ec2", "CreateSubnet", e))?
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .map(str::to_string)
                    .ok_or_else(|| AwsError::Other(format!("{addr}: CreateSubnet returned no id")))?
            }
        };
        set_public(aws, &ec2, &id, a.public).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let r = u.after;
        let a: SubnetAttrs = from_attrs(&r.address, &r.attrs)?;
        let id = need(find_subnet(aws, &ec2, r.address.as_str()).await?, "subnet", r.address.as_str())?;
        set_public(aws, &ec2, &id, a.public).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        if let Some(id) = find_subnet(aws, &ec2, r.address.as_str()).await? {
            unless_gone(aws, "DeleteSubnet", ec2.delete_subnet().subnet_id(id).send().await, &[])?;
        }
        Ok(())
    }
}

async fn set_public(aws: &Aws, ec2: &aws_sdk_ec2::Client, id: &str, public: bool) -> Result<(), AwsError> {
    ec2.modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(public).build())
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifySubnetAttribute", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    #[test]
    fn shows_its_vpc_by_address_and_defaults_to_private() {
        let mut ids = Ids::default();
        ids.0.insert("vpc-1".into(), Address::new("network.vpc"));
        let s = aws_sdk_ec2::types::Subnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .cidr_block("10.0.1.0/24")
            .availability_zone("us-east-1a")
            .build();
        let a = normalize(&s, &ids);
        assert_eq!(a, SubnetAttrs { vpc: "network.vpc".into(), cidr: "10.0.1.0/24".into(), az: "us-east-1a".into(), public: false });
        let foreign = aws_sdk_ec2::types::Subnet::builder().vpc_id("vpc-9").map_public_ip_on_launch(true).build();
        let a = normalize(&foreign, &ids);
        assert_eq!((a.vpc.as_str(), a.public), ("vpc-9", true), "a VPC that is not ctl's shows its raw id: drift");
    }
}
