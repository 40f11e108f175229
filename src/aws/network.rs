//! The network as a whole: the declared network expanded into its resources, the one
//! observation of every network object (ids first, so references show as addresses), and
//! the look-ups by address the kinds' handlers share. Each kind's attributes, normalisation
//! and create/update/delete live in its own module: [`super::vpc`], [`super::subnet`],
//! [`super::internet_gateway`], [`super::route_table`], [`super::vpc_endpoint`],
//! [`super::security_group`] (the NAT instance is an EC2 instance: [`super::ec2`]).
//!
//! Every object carries the ownership tags (`managed-by`, `ctl-environment`, `ctl-address`);
//! observation lists only objects tagged for this environment, and references between objects
//! (a subnet's VPC, a route's target, a rule's source group) are shown as ctl addresses, so a
//! plan reads `network.vpc`, not `vpc-0abc…`. An object whose reference points outside ctl's
//! objects shows the raw AWS id, which never equals a desired address: that is drift.

use super::internet_gateway::IgwAttrs;
use super::network_common::{self as common, api, set, to_attrs};
use super::route_table::{route, RouteTableAttrs};
use super::security_group::{rule, GroupAttrs};
use super::subnet::SubnetAttrs;
use super::vpc::VpcAttrs;
use super::vpc_endpoint::EndpointAttrs;
use super::{Aws, AwsError};
use super::elastic_ip::ElasticIpAttrs;
use crate::config::{EipTarget, Environment, IngressSource, Network, NAT_GROUP};
use crate::model::{Address, Kind, Resource, Scope};
use aws_sdk_ec2::types::{Filter, InternetGateway, ResourceType, RouteTable, Tag, TagSpecification, VpcEndpoint};
use std::collections::BTreeMap;

pub const VPC: &str = "network.vpc";
pub const IGW: &str = "network.internet_gateway";
pub const NAT: &str = "network.nat_instance";
pub const S3_ENDPOINT: &str = "network.s3_endpoint";
pub const RT_PUBLIC: &str = "network.route_table.public";
pub const RT_PRIVATE: &str = "network.route_table.private";

/// The default route every route table may carry.
const DEFAULT_ROUTE: &str = "0.0.0.0/0";

pub fn subnet_address(name: &str) -> Address {
    Address::new(format!("network.subnet.{name}"))
}

pub fn group_address(name: &str) -> Address {
    Address::new(format!("network.security_group.{name}"))
}

fn resource(
    address: Address,
    kind: Kind,
    name: &str,
    attrs: crate::model::Attrs,
    deps: Vec<Address>,
) -> Resource {
    Resource {
        address,
        kind,
        scope: Scope::Root,
        name: name.to_string(),
        attrs,
        depends_on: deps,
        container: None,
    }
}

/// The region the environment's AWS lives in (for service names).
pub fn region(env: &Environment) -> String {
    match &env.aws {
        Some(crate::config::AwsConnection::Account { region, .. }) => region.clone(),
        _ => "us-east-1".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Desired.

/// Every network, instance and RDS resource the environment declares. Template problems
/// (user data) are added to `errors`, located at the instance group.
pub fn desired_infra(
    env: &Environment,
    templates_dir: &std::path::Path,
    errors: &mut Vec<crate::config::ConfigError>,
) -> Vec<Resource> {
    let Some(net) = &env.infra.network else {
        return Vec::new();
    };
    let mut out = desired(env, net);
    out.extend(super::ec2::desired(env, templates_dir, errors));
    if let Some(rds) = &env.infra.rds {
        out.extend(super::rds::desired(env, rds));
    }
    out
}

pub fn desired(env: &Environment, net: &Network) -> Vec<Resource> {
    let vpc = Address::new(VPC);
    let mut out = vec![resource(
        vpc.clone(),
        Kind::Vpc,
        "vpc",
        to_attrs(&VpcAttrs {
            cidr: net.vpc_cidr.to_string(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
        }),
        vec![],
    )];
    for s in &net.subnets {
        out.push(resource(
            subnet_address(&s.name),
            Kind::Subnet,
            &s.name,
            to_attrs(&SubnetAttrs {
                vpc: VPC.into(),
                cidr: s.cidr.to_string(),
                az: s.az.clone(),
                public: s.public,
            }),
            vec![vpc.clone()],
        ));
    }
    let public: Vec<Address> = net
        .subnets
        .iter()
        .filter(|s| s.public)
        .map(|s| subnet_address(&s.name))
        .collect();
    let private: Vec<Address> = net
        .subnets
        .iter()
        .filter(|s| !s.public)
        .map(|s| subnet_address(&s.name))
        .collect();
    if !public.is_empty() {
        out.push(resource(
            Address::new(IGW),
            Kind::InternetGateway,
            "internet_gateway",
            to_attrs(&IgwAttrs {
                attached_to: vec![VPC.into()],
            }),
            vec![vpc.clone()],
        ));
        let mut deps = vec![vpc.clone(), Address::new(IGW)];
        deps.extend(public.iter().cloned());
        out.push(resource(
            Address::new(RT_PUBLIC),
            Kind::RouteTable,
            "public",
            to_attrs(&RouteTableAttrs {
                vpc: VPC.into(),
                routes: vec![route(DEFAULT_ROUTE, IGW)],
                subnets: set(public.iter().map(ToString::to_string).collect()),
            }),
            deps,
        ));
    }
    if !private.is_empty() {
        let mut deps = vec![vpc.clone()];
        deps.extend(private.iter().cloned());
        let mut routes = Vec::new();
        if net.nat.is_some() {
            routes.push(route(DEFAULT_ROUTE, NAT));
            deps.push(Address::new(NAT));
        }
        out.push(resource(
            Address::new(RT_PRIVATE),
            Kind::RouteTable,
            "private",
            to_attrs(&RouteTableAttrs {
                vpc: VPC.into(),
                routes,
                subnets: set(private.iter().map(ToString::to_string).collect()),
            }),
            deps,
        ));
        if net.s3_endpoint {
            out.push(resource(
                Address::new(S3_ENDPOINT),
                Kind::VpcEndpoint,
                "s3",
                to_attrs(&EndpointAttrs {
                    vpc: VPC.into(),
                    service_name: format!("com.amazonaws.{}.s3", region(env)),
                    endpoint_type: "Gateway".into(),
                    route_tables: vec![RT_PRIVATE.into()],
                }),
                vec![vpc.clone(), Address::new(RT_PRIVATE)],
            ));
        }
    }
    for g in &net.security_groups {
        let mut deps = vec![vpc.clone()];
        let ingress = g
            .ingress
            .iter()
            .map(|r| {
                let source = match &r.source {
                    IngressSource::Cidr(c) => c.to_string(),
                    IngressSource::Group(name) => {
                        let a = group_address(name);
                        if name != &g.name && !deps.contains(&a) {
                            deps.push(a.clone());
                        }
                        a.to_string()
                    }
                };
                rule(
                    &r.protocol,
                    i32::from(r.from_port),
                    i32::from(r.to_port),
                    &source,
                )
            })
            .collect();
        out.push(resource(
            group_address(&g.name),
            Kind::SecurityGroup,
            &g.name,
            to_attrs(&GroupAttrs {
                vpc: VPC.into(),
                group_name: format!("{}-{}", env.name, g.name),
                description: g.description.clone(),
                ingress: set(ingress),
            }),
            deps,
        ));
    }
    if let Some(nat) = &net.nat {
        // The NAT instance's own group: all traffic from the private subnets.
        let ingress = net
            .subnets
            .iter()
            .filter(|s| !s.public)
            .map(|s| rule("-1", -1, -1, &s.cidr.to_string()))
            .collect();
        out.push(resource(
            group_address(NAT_GROUP),
            Kind::SecurityGroup,
            NAT_GROUP,
            to_attrs(&GroupAttrs {
                vpc: VPC.into(),
                group_name: format!("{}-{NAT_GROUP}", env.name),
                description: "ctl: NAT instance (traffic from the private subnets)".into(),
                ingress: set(ingress),
            }),
            vec![vpc.clone()],
        ));
        out.push(super::ec2::nat_desired(nat));
    }
    for eip in &net.elastic_ips {
        let instance = eip.instance.as_ref().map(|target| match target {
            EipTarget::Nat => Address::new(NAT),
            EipTarget::Instance { group, index } => super::ec2::instance_address(group, *index),
        });
        let attrs = ElasticIpAttrs { domain: "vpc".into(), instance: instance.as_ref().map(ToString::to_string) };
        out.push(resource(super::elastic_ip::address(&eip.name), Kind::ElasticIp, &eip.name, to_attrs(&attrs), instance.into_iter().collect()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Observe.

pub(super) fn tag_filters(aws: &Aws) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{}", common::MANAGED_BY))
            .values(common::MANAGED_BY_VALUE)
            .build(),
        Filter::builder()
            .name(format!("tag:{}", common::ENVIRONMENT))
            .values(aws.environment.clone())
            .build(),
    ]
}

pub(super) fn address_filters(aws: &Aws, address: &str) -> Vec<Filter> {
    let mut f = tag_filters(aws);
    f.push(
        Filter::builder()
            .name(format!("tag:{}", common::ADDRESS))
            .values(address)
            .build(),
    );
    f
}

pub(super) fn owned(aws: &Aws, tags: &[Tag]) -> Option<Address> {
    common::owned_address(
        aws,
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
    )
}

/// Every object a `Describe*` call returns for `filters`, through the SDK's paginator.
macro_rules! described {
    ($aws:expr, $ec2:expr, $filters:expr, $describe:ident, $op:literal) => {
        $ec2.$describe()
            .set_filters(Some($filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| $crate::aws::network_common::api($aws, "ec2", $op, e))?
    };
}
pub(super) use described;

/// The objects carrying this environment's ownership tags, with their addresses; their ids are
/// recorded in `ids`, so references between objects show as addresses.
fn owned_with_ids<T>(
    aws: &Aws,
    ids: &mut Ids,
    items: Vec<T>,
    tags: fn(&T) -> &[Tag],
    id: fn(&T) -> Option<&str>,
) -> Vec<(Address, T)> {
    let mut out = Vec::new();
    for item in items {
        let (Some(addr), Some(id)) = (owned(aws, tags(&item)), id(&item)) else { continue };
        ids.0.insert(id.to_string(), addr.clone());
        out.push((addr, item));
    }
    out
}

/// AWS ids of ctl's objects → their addresses, for showing references.
#[derive(Default)]
pub struct Ids(pub BTreeMap<String, Address>);

impl Ids {
    pub fn show(&self, id: &str) -> String {
        self.0
            .get(id)
            .map_or_else(|| id.to_string(), ToString::to_string)
    }
}

/// Read every network object of this environment (and its instances, via [`super::ec2`]).
/// Returns the id → address map (for references from other services).
pub async fn observe(aws: &Aws, out: &mut Vec<Resource>) -> Result<Ids, AwsError> {
    let ec2 = common::ec2(aws);
    let mut ids = Ids::default();
    let mut found: Vec<Resource> = Vec::new();

    for v in super::vpc::list(aws, &ec2).await? {
        let (Some(addr), Some(id)) = (owned(aws, v.tags()), v.vpc_id()) else { continue };
        ids.0.insert(id.to_string(), addr.clone());
        let attrs = super::vpc::observe(aws, &ec2, &v).await?;
        found.push(resource(addr, Kind::Vpc, "vpc", to_attrs(&attrs), vec![]));
    }

    let subnets = described!(aws, ec2, tag_filters(aws), describe_subnets, "DescribeSubnets");
    let pending_subnets = owned_with_ids(aws, &mut ids, subnets, |x| x.tags(), |x| x.subnet_id());

    let igws = described!(aws, ec2, tag_filters(aws), describe_internet_gateways, "DescribeInternetGateways");
    let pending_igws = owned_with_ids(aws, &mut ids, igws, |x| x.tags(), |x| x.internet_gateway_id());

    let groups = described!(aws, ec2, tag_filters(aws), describe_security_groups, "DescribeSecurityGroups");
    let pending_groups = owned_with_ids(aws, &mut ids, groups, |x| x.tags(), |x| x.group_id());

    // Instances (NAT and workload): their ids and primary network interfaces are route targets.
    let instances = super::ec2::observe(aws, &ec2, &mut ids).await?;

    let tables = described!(aws, ec2, tag_filters(aws), describe_route_tables, "DescribeRouteTables");
    let pending_tables = owned_with_ids(aws, &mut ids, tables, |x| x.tags(), |x| x.route_table_id());

    let endpoints = described!(aws, ec2, tag_filters(aws), describe_vpc_endpoints, "DescribeVpcEndpoints");
    for e in endpoints.iter().filter(|e| !super::vpc_endpoint::is_deleted(e)) {
        let Some(addr) = owned(aws, e.tags()) else { continue };
        found.push(resource(addr, Kind::VpcEndpoint, "s3", to_attrs(&super::vpc_endpoint::normalize(e, &ids)), vec![]));
    }
    let last_segment = |a: &Address| a.as_str().rsplit('.').next().unwrap_or_default().to_string();
    for (addr, s) in pending_subnets {
        let name = last_segment(&addr);
        found.push(resource(addr, Kind::Subnet, &name, to_attrs(&super::subnet::normalize(&s, &ids)), vec![]));
    }
    for (addr, g) in pending_igws {
        let attrs = super::internet_gateway::normalize(&g, &ids);
        found.push(resource(addr, Kind::InternetGateway, "internet_gateway", to_attrs(&attrs), vec![]));
    }
    for (addr, g) in pending_groups {
        let name = last_segment(&addr);
        found.push(resource(addr, Kind::SecurityGroup, &name, to_attrs(&super::security_group::normalize(&g, &ids)), vec![]));
    }
    for (addr, t) in pending_tables {
        let name = last_segment(&addr);
        found.push(resource(addr, Kind::RouteTable, &name, to_attrs(&super::route_table::normalize(&t, &ids)), vec![]));
    }
    for (addr, attrs) in super::elastic_ip::observe(aws, &ec2, &ids).await? {
        let name = last_segment(&addr);
        found.push(resource(addr, Kind::ElasticIp, &name, to_attrs(&attrs), vec![]));
    }
    found.extend(instances);
    out.extend(found);
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Look-ups by address (apply).

pub async fn find_vpc(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let vpcs = described!(aws, ec2, address_filters(aws, address), describe_vpcs, "DescribeVpcs");
    Ok(vpcs.iter().find_map(|v| v.vpc_id()).map(str::to_string))
}

pub async fn find_subnet(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let subnets = described!(aws, ec2, address_filters(aws, address), describe_subnets, "DescribeSubnets");
    Ok(subnets.iter().find_map(|s| s.subnet_id()).map(str::to_string))
}

pub async fn find_group(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let groups = described!(aws, ec2, address_filters(aws, address), describe_security_groups, "DescribeSecurityGroups");
    Ok(groups.iter().find_map(|g| g.group_id()).map(str::to_string))
}

pub(super) async fn find_igw(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<InternetGateway>, AwsError> {
    Ok(described!(aws, ec2, address_filters(aws, address), describe_internet_gateways, "DescribeInternetGateways")
        .into_iter()
        .next())
}

pub(super) async fn find_table(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<RouteTable>, AwsError> {
    Ok(described!(aws, ec2, address_filters(aws, address), describe_route_tables, "DescribeRouteTables").into_iter().next())
}

pub(super) async fn find_endpoint(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<VpcEndpoint>, AwsError> {
    let endpoints = described!(aws, ec2, address_filters(aws, address), describe_vpc_endpoints, "DescribeVpcEndpoints");
    Ok(endpoints.into_iter().find(|e| !super::vpc_endpoint::is_deleted(e)))
}

/// The id an address refers to, or an error saying it does not exist (yet).
pub(super) fn need(found: Option<String>, what: &str, address: &str) -> Result<String, AwsError> {
    found.ok_or_else(|| {
        AwsError::Other(format!(
            "{what} {address} does not exist (was its creation skipped or did it fail?)"
        ))
    })
}

pub fn tag_spec(aws: &Aws, kind: ResourceType, address: &Address) -> TagSpecification {
    let tags = common::tag_pairs(aws, address)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

pub(super) fn is_gone(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.ends_with("NotFound"))
}

/// The result of a call that removes something: "already gone" (and the codes in `also`,
/// such as `Gateway.NotAttached`) is success.
pub(super) fn unless_gone<T, E>(aws: &Aws, operation: &'static str, result: Result<T, E>, also: &[&str]) -> Result<(), AwsError>
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_gone(common::code(&e)) || common::code(&e).is_some_and(|c| also.contains(&c)) => Ok(()),
        Err(e) => Err(api(aws, "ec2", operation, e)),
    }
}

