//! The internet gateway (`network.internet_gateway`), attached to exactly the declared VPC.

use super::network::{find_igw, find_vpc, need, tag_spec, unless_gone, Ids};
use super::network_common::{api, code, from_attrs, set};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgwAttrs {
    /// The attached VPCs (one).
    pub attached_to: Vec<String>,
}

pub fn normalize(g: &aws_sdk_ec2::types::InternetGateway, ids: &Ids) -> IgwAttrs {
    IgwAttrs { attached_to: set(g.attachments().iter().filter_map(|a| a.vpc_id()).map(|id| ids.show(id)).collect()) }
}

pub struct InternetGateway;

#[async_trait::async_trait]
impl KindHandler<Aws> for InternetGateway {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        if find_igw(aws, &ec2, r.address.as_str()).await?.is_none() {
            ec2.create_internet_gateway()
                .tag_specifications(tag_spec(aws, ResourceType::InternetGateway, &r.address))
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "CreateInternetGateway", e))?;
        }
        sync(aws, &ec2, r).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        sync(aws, &super::client::ec2(aws), u.after).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let Some(g) = find_igw(aws, &ec2, r.address.as_str()).await? else { return Ok(()) };
        let id = g.internet_gateway_id().unwrap_or_default();
        for vpc in g.attachments().iter().filter_map(|a| a.vpc_id()) {
            let detached = ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await;
            unless_gone(aws, "DetachInternetGateway", detached, &["Gateway.NotAttached"])?;
        }
        unless_gone(aws, "DeleteInternetGateway", ec2.delete_internet_gateway().internet_gateway_id(id).send().await, &[])
    }
}

/// Attach the gateway to exactly the desired VPC.
async fn sync(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: IgwAttrs = from_attrs(&r.address, &r.attrs)?;
    let g = find_igw(aws, ec2, r.address.as_str()).await?;
    let g = g.ok_or_else(|| AwsError::Other(format!("internet gateway {} does not exist", r.address)))?;
    let id = g.internet_gateway_id().unwrap_or_default().to_string();
    let mut want = Vec::new();
    for v in &a.attached_to {
        want.push(need(find_vpc(aws, ec2, v).await?, "VPC", v)?);
    }
    for att in g.attachments() {
        let Some(vpc) = att.vpc_id() else { continue };
        if !want.iter().any(|w| w == vpc) {
            ec2.detach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(vpc)
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "DetachInternetGateway", e))?;
        }
    }
    for vpc in want {
        if g.attachments().iter().any(|att| att.vpc_id() == Some(vpc.as_str())) {
            continue;
        }
        match ec2.attach_internet_gateway().internet_gateway_id(&id).vpc_id(&vpc).send().await {
            Err(e) if code(&e) == Some("Resource.AlreadyAssociated") => {}
            Err(e) => return Err(api(aws, "ec2", "AttachInternetGateway", e)),
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use aws_sdk_ec2::types::InternetGatewayAttachment;

    #[test]
    fn attachments_are_a_sorted_set_of_addresses() {
        let mut ids = Ids::default();
        ids.0.insert("vpc-1".into(), Address::new("network.vpc"));
        let g = aws_sdk_ec2::types::InternetGateway::builder()
            .attachments(InternetGatewayAttachment::builder().vpc_id("vpc-2").build())
            .attachments(InternetGatewayAttachment::builder().vpc_id("vpc-1").build())
            .attachments(InternetGatewayAttachment::builder().build())
            .build();
        assert_eq!(normalize(&g, &ids).attached_to, ["network.vpc", "vpc-2"]);
    }
}
