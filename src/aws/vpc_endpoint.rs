//! The S3 gateway endpoint (`network.s3_endpoint`) and the route tables it serves.

use super::network::{find_endpoint, find_table, find_vpc, need, tag_spec, unless_gone, Ids};
use super::network_common::{api, from_attrs, set};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointAttrs {
    pub vpc: String,
    pub service_name: String,
    #[serde(rename = "type")]
    pub endpoint_type: String,
    pub route_tables: Vec<String>,
}

pub fn normalize(e: &aws_sdk_ec2::types::VpcEndpoint, ids: &Ids) -> EndpointAttrs {
    EndpointAttrs {
        vpc: ids.show(e.vpc_id().unwrap_or_default()),
        service_name: e.service_name().unwrap_or_default().to_string(),
        endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        route_tables: set(e.route_table_ids().iter().map(|id| ids.show(id)).collect()),
    }
}

/// A deleted endpoint stays listed for a while; it is gone.
pub fn is_deleted(e: &aws_sdk_ec2::types::VpcEndpoint) -> bool {
    matches!(e.state(), Some(s) if s.as_str().eq_ignore_ascii_case("deleted"))
}

pub struct VpcEndpoint;

#[async_trait::async_trait]
impl KindHandler<Aws> for VpcEndpoint {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let a: EndpointAttrs = from_attrs(&r.address, &r.attrs)?;
        if find_endpoint(aws, &ec2, r.address.as_str()).await?.is_some() {
            return sync(aws, &ec2, r).await;
        }
        let vpc = need(find_vpc(aws, &ec2, &a.vpc).await?, "VPC", &a.vpc)?;
        let tables = table_ids(aws, &ec2, &a).await?;
        ec2.create_vpc_endpoint()
            .vpc_id(vpc)
            .service_name(&a.service_name)
            .vpc_endpoint_type(VpcEndpointType::from(a.endpoint_type.as_str()))
            .set_route_table_ids(Some(tables))
            .tag_specifications(tag_spec(aws, ResourceType::VpcEndpoint, &r.address))
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "CreateVpcEndpoint", e))?;
        Ok(())
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        sync(aws, &super::client::ec2(aws), u.after).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let Some(e) = find_endpoint(aws, &ec2, r.address.as_str()).await? else { return Ok(()) };
        let id = e.vpc_endpoint_id().unwrap_or_default();
        unless_gone(aws, "DeleteVpcEndpoints", ec2.delete_vpc_endpoints().vpc_endpoint_ids(id).send().await, &[])
    }
}

async fn table_ids(aws: &Aws, ec2: &aws_sdk_ec2::Client, a: &EndpointAttrs) -> Result<Vec<String>, AwsError> {
    let mut ids = Vec::new();
    for t in &a.route_tables {
        let table = find_table(aws, ec2, t).await?.and_then(|t| t.route_table_id().map(str::to_string));
        ids.push(need(table, "route table", t)?);
    }
    Ok(ids)
}

async fn sync(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: EndpointAttrs = from_attrs(&r.address, &r.attrs)?;
    let e = find_endpoint(aws, ec2, r.address.as_str()).await?;
    let e = e.ok_or_else(|| AwsError::Other(format!("VPC endpoint {} does not exist", r.address)))?;
    let want = table_ids(aws, ec2, &a).await?;
    let have = e.route_table_ids();
    let add: Vec<String> = want.iter().filter(|w| !have.contains(w)).cloned().collect();
    let remove: Vec<String> = have.iter().filter(|h| !want.contains(h)).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    ec2.modify_vpc_endpoint()
        .vpc_endpoint_id(e.vpc_endpoint_id().unwrap_or_default())
        .set_add_route_table_ids((!add.is_empty()).then_some(add))
        .set_remove_route_table_ids((!remove.is_empty()).then_some(remove))
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyVpcEndpoint", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    #[test]
    fn route_tables_by_address() {
        let mut ids = Ids::default();
        ids.0.insert("rtb-1".into(), Address::new("network.route_table.private"));
        let e = aws_sdk_ec2::types::VpcEndpoint::builder()
            .vpc_id("vpc-1")
            .service_name("com.amazonaws.us-east-1.s3")
            .vpc_endpoint_type(VpcEndpointType::Gateway)
            .route_table_ids("rtb-2")
            .route_table_ids("rtb-1")
            .build();
        let a = normalize(&e, &ids);
        assert_eq!(a.endpoint_type, "Gateway");
        assert_eq!(a.route_tables, ["network.route_table.private", "rtb-2"]);
        assert!(!is_deleted(&e));
    }
}
