//! Route tables (`network.route_table.public` / `.private`): their routes (by target address)
//! and subnet associations.

use super::network::{find_igw, find_subnet, find_table, find_vpc, need, tag_spec, unless_gone, Ids, IGW};
use super::network_common::{api, from_attrs, set};
use super::{Aws, AwsError};
use crate::model::Resource;
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{Filter, ResourceType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTableAttrs {
    pub vpc: String,
    /// `"<destination> via <target>"`, sorted; the VPC-local route and gateway-endpoint routes
    /// (managed by AWS) are left out.
    pub routes: Vec<String>,
    /// Associated subnets, sorted.
    pub subnets: Vec<String>,
}

pub fn route(dest: &str, target: &str) -> String {
    format!("{dest} via {target}")
}

pub fn normalize(t: &aws_sdk_ec2::types::RouteTable, ids: &Ids) -> RouteTableAttrs {
    let mut routes = Vec::new();
    for r in t.routes() {
        // Prefix-list routes belong to gateway endpoints; the local route to AWS.
        let Some(dest) = r.destination_cidr_block() else { continue };
        if r.gateway_id() == Some("local") {
            continue;
        }
        let target = r
            .gateway_id()
            .or(r.network_interface_id())
            .or(r.instance_id())
            .or(r.nat_gateway_id())
            .or(r.vpc_peering_connection_id())
            .or(r.transit_gateway_id())
            .unwrap_or("unknown");
        routes.push(route(dest, &ids.show(target)));
    }
    RouteTableAttrs {
        vpc: ids.show(t.vpc_id().unwrap_or_default()),
        routes: set(routes),
        subnets: set(t.associations().iter().filter_map(|a| a.subnet_id()).map(|id| ids.show(id)).collect()),
    }
}

pub struct RouteTable;

#[async_trait::async_trait]
impl KindHandler<Aws> for RouteTable {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let a: RouteTableAttrs = from_attrs(&r.address, &r.attrs)?;
        if find_table(aws, &ec2, r.address.as_str()).await?.is_none() {
            let vpc = need(find_vpc(aws, &ec2, &a.vpc).await?, "VPC", &a.vpc)?;
            ec2.create_route_table()
                .vpc_id(vpc)
                .tag_specifications(tag_spec(aws, ResourceType::RouteTable, &r.address))
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "CreateRouteTable", e))?;
        }
        sync(aws, &ec2, r).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        sync(aws, &super::client::ec2(aws), u.after).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let Some(t) = find_table(aws, &ec2, r.address.as_str()).await? else { return Ok(()) };
        for a in t.associations().iter().filter(|a| a.main() != Some(true)) {
            if let Some(assoc) = a.route_table_association_id() {
                unless_gone(aws, "DisassociateRouteTable", ec2.disassociate_route_table().association_id(assoc).send().await, &[])?;
            }
        }
        let id = t.route_table_id().unwrap_or_default();
        unless_gone(aws, "DeleteRouteTable", ec2.delete_route_table().route_table_id(id).send().await, &[])
    }
}

/// Make the routes and subnet associations exactly the desired ones.
async fn sync(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: RouteTableAttrs = from_attrs(&r.address, &r.attrs)?;
    let t = find_table(aws, ec2, r.address.as_str()).await?;
    let t = t.ok_or_else(|| AwsError::Other(format!("route table {} does not exist", r.address)))?;
    let id = t.route_table_id().unwrap_or_default().to_string();

    // Desired routes: destination → target address.
    let want: BTreeMap<&str, &str> = a.routes.iter().filter_map(|s| s.split_once(" via ")).collect();
    for rt in t.routes() {
        let Some(dest) = rt.destination_cidr_block() else { continue };
        if rt.gateway_id() == Some("local") || want.contains_key(dest) {
            continue;
        }
        let deleted = ec2.delete_route().route_table_id(&id).destination_cidr_block(dest).send().await;
        unless_gone(aws, "DeleteRoute", deleted, &[])?;
    }
    for (&dest, &target) in &want {
        let existing = t.routes().iter().find(|rt| rt.destination_cidr_block() == Some(dest));
        let (gateway, eni) = if target == IGW {
            let g = find_igw(aws, ec2, target).await?.and_then(|g| g.internet_gateway_id().map(str::to_string));
            (Some(need(g, "internet gateway", target)?), None)
        } else {
            let eni = super::ec2::primary_eni(aws, ec2, target).await?;
            (None, Some(need(eni, "instance", target)?))
        };
        let current = existing.and_then(|rt| rt.gateway_id().or(rt.network_interface_id()));
        if current.is_some() && current == gateway.as_deref().or(eni.as_deref()) {
            continue;
        }
        if existing.is_some() {
            ec2.replace_route()
                .route_table_id(&id)
                .destination_cidr_block(dest)
                .set_gateway_id(gateway)
                .set_network_interface_id(eni)
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "ReplaceRoute", e))?;
        } else {
            ec2.create_route()
                .route_table_id(&id)
                .destination_cidr_block(dest)
                .set_gateway_id(gateway)
                .set_network_interface_id(eni)
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "CreateRoute", e))?;
        }
    }

    // Associations.
    let mut want_subnets = Vec::new();
    for s in &a.subnets {
        want_subnets.push(need(find_subnet(aws, ec2, s).await?, "subnet", s)?);
    }
    for assoc in t.associations() {
        let (Some(subnet), Some(assoc_id)) = (assoc.subnet_id(), assoc.route_table_association_id()) else { continue };
        if !want_subnets.iter().any(|w| w == subnet) {
            let gone = ec2.disassociate_route_table().association_id(assoc_id).send().await;
            unless_gone(aws, "DisassociateRouteTable", gone, &[])?;
        }
    }
    for subnet in want_subnets {
        if t.associations().iter().any(|assoc| assoc.subnet_id() == Some(subnet.as_str())) {
            continue;
        }
        // A subnet associated with another table is moved with ReplaceRouteTableAssociation.
        let other = ec2
            .describe_route_tables()
            .filters(Filter::builder().name("association.subnet-id").values(&subnet).build())
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeRouteTables", e))?;
        let existing = other
            .route_tables()
            .iter()
            .flat_map(|t| t.associations())
            .find(|assoc| assoc.subnet_id() == Some(subnet.as_str()))
            .and_then(|assoc| assoc.route_table_association_id().map(str::to_string));
        match existing {
            Some(assoc_id) => {
                ec2.replace_route_table_association()
                    .association_id(assoc_id)
                    .route_table_id(&id)
                    .send()
                    .await
                    .map_err(|e| api(aws, "ec2", "ReplaceRouteTableAssociation", e))?;
            }
            None => {
                ec2.associate_route_table()
                    .route_table_id(&id)
                    .subnet_id(&subnet)
                    .send()
                    .await
                    .map_err(|e| api(aws, "ec2", "AssociateRouteTable", e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use aws_sdk_ec2::types::{Route, RouteTableAssociation};

    #[test]
    fn routes_by_target_address_without_the_local_and_prefix_list_routes() {
        let mut ids = Ids::default();
        ids.0.insert("igw-1".into(), Address::new("network.internet_gateway"));
        ids.0.insert("subnet-1".into(), Address::new("network.subnet.a"));
        let t = aws_sdk_ec2::types::RouteTable::builder()
            .vpc_id("vpc-1")
            .routes(Route::builder().destination_cidr_block("10.0.0.0/16").gateway_id("local").build())
            .routes(Route::builder().destination_prefix_list_id("pl-1").gateway_id("vpce-1").build())
            .routes(Route::builder().destination_cidr_block("0.0.0.0/0").gateway_id("igw-1").build())
            .routes(Route::builder().destination_cidr_block("192.168.0.0/16").vpc_peering_connection_id("pcx-1").build())
            .associations(RouteTableAssociation::builder().subnet_id("subnet-1").build())
            .associations(RouteTableAssociation::builder().main(true).build())
            .build();
        let a = normalize(&t, &ids);
        assert_eq!(a.vpc, "vpc-1");
        assert_eq!(a.routes, ["0.0.0.0/0 via network.internet_gateway", "192.168.0.0/16 via pcx-1"]);
        assert_eq!(a.subnets, ["network.subnet.a"]);
    }
}
