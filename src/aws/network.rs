//! Network kinds: VPC, subnets, internet gateway, route tables, S3 gateway endpoint and
//! security groups (the NAT instance is an EC2 instance: [`super::ec2`]).
//!
//! Every object carries the ownership tags (`managed-by`, `ctl-environment`, `ctl-address`);
//! observation lists only objects tagged for this environment, and references between objects
//! (a subnet's VPC, a route's target, a rule's source group) are shown as ctl addresses, so a
//! plan reads `network.vpc`, not `vpc-0abc…`. An object whose reference points outside ctl's
//! objects shows the raw AWS id, which never equals a desired address: that is drift.

use super::network_common::{self as common, api, from_attrs, set, to_attrs};
use super::{Aws, AwsError};
use crate::config::{Environment, IngressSource, Network, NAT_GROUP};
use crate::diff::{Action, Change};
use crate::model::{Address, Kind, Resource, Scope};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InternetGateway, IpPermission, IpRange, ResourceType, RouteTable, Tag,
    TagSpecification, UserIdGroupPair, VpcEndpoint, VpcEndpointType,
};
use serde::{Deserialize, Serialize};
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

// ---------------------------------------------------------------------------------------------
// Attributes, shared by desired and observe.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpcAttrs {
    pub cidr: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetAttrs {
    pub vpc: String,
    pub cidr: String,
    pub az: String,
    /// `MapPublicIpOnLaunch`: public subnets give instances a public address.
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgwAttrs {
    /// The attached VPCs (one).
    pub attached_to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTableAttrs {
    pub vpc: String,
    /// `"<destination> via <target>"`, sorted; the VPC-local route and gateway-endpoint routes
    /// (managed by AWS) are left out.
    pub routes: Vec<String>,
    /// Associated subnets, sorted.
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointAttrs {
    pub vpc: String,
    pub service_name: String,
    #[serde(rename = "type")]
    pub endpoint_type: String,
    pub route_tables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAttrs {
    pub vpc: String,
    pub group_name: String,
    pub description: String,
    /// `"<protocol> <from>-<to> from <cidr | group address>"`, sorted.
    pub ingress: Vec<String>,
}

fn route(dest: &str, target: &str) -> String {
    format!("{dest} via {target}")
}

fn rule(protocol: &str, from: i32, to: i32, source: &str) -> String {
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
    Some((
        proto.to_string(),
        from.parse().ok()?,
        to.parse().ok()?,
        source.to_string(),
    ))
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
    out
}

// ---------------------------------------------------------------------------------------------
// Observe.

fn tag_filters(aws: &Aws) -> Vec<Filter> {
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

fn address_filters(aws: &Aws, address: &str) -> Vec<Filter> {
    let mut f = tag_filters(aws);
    f.push(
        Filter::builder()
            .name(format!("tag:{}", common::ADDRESS))
            .values(address)
            .build(),
    );
    f
}

fn owned(aws: &Aws, tags: &[Tag]) -> Option<Address> {
    common::owned_address(
        aws,
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
    )
}

/// The objects one `Describe*` call returns for `filters` (all pages are one here: ctl's own
/// objects are few).
macro_rules! described {
    ($aws:expr, $ec2:expr, $filters:expr, $describe:ident, $op:literal, $list:ident) => {
        $ec2.$describe()
            .set_filters(Some($filters))
            .send()
            .await
            .map_err(|e| api($aws, "ec2", $op, e))?
            .$list()
            .to_vec()
    };
}

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

    let vpcs = described!(aws, ec2, tag_filters(aws), describe_vpcs, "DescribeVpcs", vpcs);
    for (addr, v) in owned_with_ids(aws, &mut ids, vpcs, |x| x.tags(), |x| x.vpc_id()) {
        let (id, cidr) = (v.vpc_id().unwrap_or_default(), v.cidr_block().unwrap_or_default().to_string());
        let support = ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport)
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeVpcAttribute", e))?;
        let hostnames = ec2
            .describe_vpc_attribute()
            .vpc_id(id)
            .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
            .send()
            .await
            .map_err(|e| api(aws, "ec2", "DescribeVpcAttribute", e))?;
        let attrs = VpcAttrs {
            cidr,
            enable_dns_support: support
                .enable_dns_support()
                .and_then(|a| a.value())
                .unwrap_or(false),
            enable_dns_hostnames: hostnames
                .enable_dns_hostnames()
                .and_then(|a| a.value())
                .unwrap_or(false),
        };
        found.push(resource(addr, Kind::Vpc, "vpc", to_attrs(&attrs), vec![]));
    }

    let subnets = described!(aws, ec2, tag_filters(aws), describe_subnets, "DescribeSubnets", subnets);
    let pending_subnets = owned_with_ids(aws, &mut ids, subnets, |x| x.tags(), |x| x.subnet_id());

    let igws = described!(aws, ec2, tag_filters(aws), describe_internet_gateways, "DescribeInternetGateways", internet_gateways);
    let pending_igws = owned_with_ids(aws, &mut ids, igws, |x| x.tags(), |x| x.internet_gateway_id());

    let groups = described!(aws, ec2, tag_filters(aws), describe_security_groups, "DescribeSecurityGroups", security_groups);
    let pending_groups = owned_with_ids(aws, &mut ids, groups, |x| x.tags(), |x| x.group_id());

    // Instances (NAT and workload): their ids and primary network interfaces are route targets.
    let instances = super::ec2::observe(aws, &ec2, &mut ids).await?;

    let tables = described!(aws, ec2, tag_filters(aws), describe_route_tables, "DescribeRouteTables", route_tables);
    let pending_tables = owned_with_ids(aws, &mut ids, tables, |x| x.tags(), |x| x.route_table_id());

    for e in described!(aws, ec2, tag_filters(aws), describe_vpc_endpoints, "DescribeVpcEndpoints", vpc_endpoints) {
        let Some(addr) = owned(aws, e.tags()) else {
            continue;
        };
        if matches!(e.state(), Some(s) if s.as_str().eq_ignore_ascii_case("deleted")) {
            continue;
        }
        let attrs = EndpointAttrs {
            vpc: ids.show(e.vpc_id().unwrap_or_default()),
            service_name: e.service_name().unwrap_or_default().to_string(),
            endpoint_type: e
                .vpc_endpoint_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            route_tables: set(e.route_table_ids().iter().map(|id| ids.show(id)).collect()),
        };
        found.push(resource(
            addr,
            Kind::VpcEndpoint,
            "s3",
            to_attrs(&attrs),
            vec![],
        ));
    }

    for (addr, s) in pending_subnets {
        let attrs = SubnetAttrs {
            vpc: ids.show(s.vpc_id().unwrap_or_default()),
            cidr: s.cidr_block().unwrap_or_default().to_string(),
            az: s.availability_zone().unwrap_or_default().to_string(),
            public: s.map_public_ip_on_launch().unwrap_or(false),
        };
        let name = addr
            .as_str()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        found.push(resource(
            addr,
            Kind::Subnet,
            &name,
            to_attrs(&attrs),
            vec![],
        ));
    }
    for (addr, g) in pending_igws {
        let attached = g
            .attachments()
            .iter()
            .filter_map(|a| a.vpc_id())
            .map(|id| ids.show(id))
            .collect();
        found.push(resource(
            addr,
            Kind::InternetGateway,
            "internet_gateway",
            to_attrs(&IgwAttrs {
                attached_to: set(attached),
            }),
            vec![],
        ));
    }
    for (addr, g) in pending_groups {
        let mut ingress = Vec::new();
        for p in g.ip_permissions() {
            let proto = p.ip_protocol().unwrap_or("-1");
            let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
            for r in p.ip_ranges() {
                ingress.push(rule(proto, from, to, r.cidr_ip().unwrap_or_default()));
            }
            for pair in p.user_id_group_pairs() {
                ingress.push(rule(
                    proto,
                    from,
                    to,
                    &ids.show(pair.group_id().unwrap_or_default()),
                ));
            }
        }
        let attrs = GroupAttrs {
            vpc: ids.show(g.vpc_id().unwrap_or_default()),
            group_name: g.group_name().unwrap_or_default().to_string(),
            description: g.description().unwrap_or_default().to_string(),
            ingress: set(ingress),
        };
        let name = addr
            .as_str()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        found.push(resource(
            addr,
            Kind::SecurityGroup,
            &name,
            to_attrs(&attrs),
            vec![],
        ));
    }
    for (addr, t) in pending_tables {
        let mut routes = Vec::new();
        for r in t.routes() {
            let Some(dest) = r.destination_cidr_block() else {
                continue;
            }; // prefix-list routes: endpoints
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
        let subnets = t
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id())
            .map(|id| ids.show(id))
            .collect();
        let attrs = RouteTableAttrs {
            vpc: ids.show(t.vpc_id().unwrap_or_default()),
            routes: set(routes),
            subnets: set(subnets),
        };
        let name = addr
            .as_str()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        found.push(resource(
            addr,
            Kind::RouteTable,
            &name,
            to_attrs(&attrs),
            vec![],
        ));
    }
    found.extend(instances);
    out.extend(found);
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Look-ups by address (apply).

pub async fn find_vpc(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let vpcs = described!(aws, ec2, address_filters(aws, address), describe_vpcs, "DescribeVpcs", vpcs);
    Ok(vpcs.iter().find_map(|v| v.vpc_id()).map(str::to_string))
}

pub async fn find_subnet(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let subnets = described!(aws, ec2, address_filters(aws, address), describe_subnets, "DescribeSubnets", subnets);
    Ok(subnets.iter().find_map(|s| s.subnet_id()).map(str::to_string))
}

pub async fn find_group(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<String>, AwsError> {
    let groups = described!(aws, ec2, address_filters(aws, address), describe_security_groups, "DescribeSecurityGroups", security_groups);
    Ok(groups.iter().find_map(|g| g.group_id()).map(str::to_string))
}

async fn find_igw(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<InternetGateway>, AwsError> {
    Ok(described!(aws, ec2, address_filters(aws, address), describe_internet_gateways, "DescribeInternetGateways", internet_gateways)
        .into_iter()
        .next())
}

async fn find_table(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<RouteTable>, AwsError> {
    Ok(described!(aws, ec2, address_filters(aws, address), describe_route_tables, "DescribeRouteTables", route_tables).into_iter().next())
}

async fn find_endpoint(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &str) -> Result<Option<VpcEndpoint>, AwsError> {
    let endpoints = described!(aws, ec2, address_filters(aws, address), describe_vpc_endpoints, "DescribeVpcEndpoints", vpc_endpoints);
    Ok(endpoints.into_iter().find(|e| !matches!(e.state(), Some(s) if s.as_str().eq_ignore_ascii_case("deleted"))))
}

/// The id an address refers to, or an error saying it does not exist (yet).
async fn need(found: Option<String>, what: &str, address: &str) -> Result<String, AwsError> {
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

fn is_gone(code: Option<&str>) -> bool {
    code.is_some_and(|c| {
        c.ends_with(".NotFound") || c.ends_with("NotFound") || c == "InvalidAssociationID.NotFound"
    })
}

// ---------------------------------------------------------------------------------------------
// Apply.

pub async fn apply_change(aws: &Aws, change: &Change) -> Result<(), AwsError> {
    let ec2 = common::ec2(aws);
    match change.action {
        Action::Create if change.before.is_none() => create(aws, &ec2, change.resource()).await,
        Action::Update => update(aws, &ec2, change).await,
        Action::Delete => delete(aws, &ec2, change.resource()).await,
        // Replace, or re-create because a dependency is replaced: the old object goes first.
        // (The executor runs these as two steps, ordered around dependents; see `execute`.)
        Action::Create | Action::Replace => {
            if let Some(old) = &change.before {
                delete(aws, &ec2, old).await?;
            }
            create(aws, &ec2, change.resource()).await
        }
    }
}

async fn create(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let addr = r.address.as_str();
    match r.kind {
        Kind::Vpc => {
            let a: VpcAttrs = from_attrs(&r.address, &r.attrs)?;
            let id = match find_vpc(aws, ec2, addr).await? {
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
                    .ok_or_else(|| AwsError::Other(format!("{addr}: CreateVpc returned no id")))?,
            };
            set_vpc_dns(aws, ec2, &id, &a).await
        }
        Kind::Subnet => {
            let a: SubnetAttrs = from_attrs(&r.address, &r.attrs)?;
            let id = match find_subnet(aws, ec2, addr).await? {
                Some(id) => id,
                None => {
                    let vpc = need(find_vpc(aws, ec2, &a.vpc).await?, "VPC", &a.vpc).await?;
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
                        .ok_or_else(|| {
                            AwsError::Other(format!("{addr}: CreateSubnet returned no id"))
                        })?
                }
            };
            set_subnet_public(aws, ec2, &id, a.public).await
        }
        Kind::InternetGateway => {
            if find_igw(aws, ec2, addr).await?.is_none() {
                ec2.create_internet_gateway()
                    .tag_specifications(tag_spec(aws, ResourceType::InternetGateway, &r.address))
                    .send()
                    .await
                    .map_err(|e| api(aws, "ec2", "CreateInternetGateway", e))?;
            }
            sync_igw(aws, ec2, r).await
        }
        Kind::RouteTable => {
            let a: RouteTableAttrs = from_attrs(&r.address, &r.attrs)?;
            if find_table(aws, ec2, addr).await?.is_none() {
                let vpc = need(find_vpc(aws, ec2, &a.vpc).await?, "VPC", &a.vpc).await?;
                ec2.create_route_table()
                    .vpc_id(vpc)
                    .tag_specifications(tag_spec(aws, ResourceType::RouteTable, &r.address))
                    .send()
                    .await
                    .map_err(|e| api(aws, "ec2", "CreateRouteTable", e))?;
            }
            sync_table(aws, ec2, r).await
        }
        Kind::VpcEndpoint => {
            let a: EndpointAttrs = from_attrs(&r.address, &r.attrs)?;
            if find_endpoint(aws, ec2, addr).await?.is_some() {
                return sync_endpoint(aws, ec2, r).await;
            }
            let vpc = need(find_vpc(aws, ec2, &a.vpc).await?, "VPC", &a.vpc).await?;
            let mut tables = Vec::new();
            for t in &a.route_tables {
                let table = find_table(aws, ec2, t)
                    .await?
                    .and_then(|t| t.route_table_id().map(str::to_string));
                tables.push(need(table, "route table", t).await?);
            }
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
        Kind::SecurityGroup => {
            let a: GroupAttrs = from_attrs(&r.address, &r.attrs)?;
            if find_group(aws, ec2, addr).await?.is_none() {
                let vpc = need(find_vpc(aws, ec2, &a.vpc).await?, "VPC", &a.vpc).await?;
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
                    Err(e) if common::code(&e) == Some("InvalidGroup.Duplicate") => {
                        return Err(AwsError::Other(format!(
                            "{addr}: a security group named {:?} already exists in the VPC and is not tagged for ctl; \
                             refusing to adopt it",
                            a.group_name
                        )))
                    }
                    Err(e) => return Err(api(aws, "ec2", "CreateSecurityGroup", e)),
                }
            }
            sync_group(aws, ec2, r).await
        }
        Kind::NatInstance | Kind::Instance => super::ec2::create(aws, ec2, r).await,
        other => Err(AwsError::Other(format!(
            "{addr}: {other:?} is not a network kind"
        ))),
    }
}

async fn update(aws: &Aws, ec2: &aws_sdk_ec2::Client, change: &Change) -> Result<(), AwsError> {
    let r = change.after.as_ref().ok_or_else(|| {
        AwsError::Other(format!(
            "{}: update without a desired state",
            change.address
        ))
    })?;
    let addr = r.address.as_str();
    match r.kind {
        Kind::Vpc => {
            let a: VpcAttrs = from_attrs(&r.address, &r.attrs)?;
            let id = need(find_vpc(aws, ec2, addr).await?, "VPC", addr).await?;
            set_vpc_dns(aws, ec2, &id, &a).await
        }
        Kind::Subnet => {
            let a: SubnetAttrs = from_attrs(&r.address, &r.attrs)?;
            let id = need(find_subnet(aws, ec2, addr).await?, "subnet", addr).await?;
            set_subnet_public(aws, ec2, &id, a.public).await
        }
        Kind::InternetGateway => sync_igw(aws, ec2, r).await,
        Kind::RouteTable => sync_table(aws, ec2, r).await,
        Kind::VpcEndpoint => sync_endpoint(aws, ec2, r).await,
        Kind::SecurityGroup => sync_group(aws, ec2, r).await,
        Kind::NatInstance | Kind::Instance => super::ec2::update(aws, ec2, change).await,
        other => Err(AwsError::Other(format!(
            "{addr}: {other:?} is not a network kind"
        ))),
    }
}

/// Delete by address; "already gone" is success.
async fn delete(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let addr = r.address.as_str();
    let gone = |code: Option<&str>| is_gone(code);
    match r.kind {
        Kind::Vpc => {
            if let Some(id) = find_vpc(aws, ec2, addr).await? {
                match ec2.delete_vpc().vpc_id(id).send().await {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteVpc", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::Subnet => {
            if let Some(id) = find_subnet(aws, ec2, addr).await? {
                match ec2.delete_subnet().subnet_id(id).send().await {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteSubnet", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::InternetGateway => {
            if let Some(g) = find_igw(aws, ec2, addr).await? {
                let id = g.internet_gateway_id().unwrap_or_default().to_string();
                for a in g.attachments() {
                    if let Some(vpc) = a.vpc_id() {
                        match ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(&id)
                            .vpc_id(vpc)
                            .send()
                            .await
                        {
                            Err(e)
                                if !gone(common::code(&e))
                                    && common::code(&e) != Some("Gateway.NotAttached") =>
                            {
                                return Err(api(aws, "ec2", "DetachInternetGateway", e))
                            }
                            _ => {}
                        }
                    }
                }
                match ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(&id)
                    .send()
                    .await
                {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteInternetGateway", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::RouteTable => {
            if let Some(t) = find_table(aws, ec2, addr).await? {
                for a in t.associations() {
                    if a.main() == Some(true) {
                        continue;
                    }
                    if let Some(assoc) = a.route_table_association_id() {
                        match ec2
                            .disassociate_route_table()
                            .association_id(assoc)
                            .send()
                            .await
                        {
                            Err(e) if !gone(common::code(&e)) => {
                                return Err(api(aws, "ec2", "DisassociateRouteTable", e))
                            }
                            _ => {}
                        }
                    }
                }
                let id = t.route_table_id().unwrap_or_default();
                match ec2.delete_route_table().route_table_id(id).send().await {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteRouteTable", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::VpcEndpoint => {
            if let Some(e) = find_endpoint(aws, ec2, addr).await? {
                let id = e.vpc_endpoint_id().unwrap_or_default();
                match ec2.delete_vpc_endpoints().vpc_endpoint_ids(id).send().await {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteVpcEndpoints", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::SecurityGroup => {
            if let Some(id) = find_group(aws, ec2, addr).await? {
                match ec2.delete_security_group().group_id(id).send().await {
                    Err(e) if !gone(common::code(&e)) => {
                        return Err(api(aws, "ec2", "DeleteSecurityGroup", e))
                    }
                    _ => {}
                }
            }
        }
        Kind::NatInstance | Kind::Instance => super::ec2::delete(aws, ec2, r).await?,
        other => {
            return Err(AwsError::Other(format!(
                "{addr}: {other:?} is not a network kind"
            )))
        }
    }
    Ok(())
}

async fn set_vpc_dns(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    a: &VpcAttrs,
) -> Result<(), AwsError> {
    // One attribute per call (an EC2 rule).
    ec2.modify_vpc_attribute()
        .vpc_id(id)
        .enable_dns_support(
            AttributeBooleanValue::builder()
                .value(a.enable_dns_support)
                .build(),
        )
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyVpcAttribute", e))?;
    ec2.modify_vpc_attribute()
        .vpc_id(id)
        .enable_dns_hostnames(
            AttributeBooleanValue::builder()
                .value(a.enable_dns_hostnames)
                .build(),
        )
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifyVpcAttribute", e))?;
    Ok(())
}

async fn set_subnet_public(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    public: bool,
) -> Result<(), AwsError> {
    ec2.modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(public).build())
        .send()
        .await
        .map_err(|e| api(aws, "ec2", "ModifySubnetAttribute", e))?;
    Ok(())
}

/// Attach the gateway to exactly the desired VPC.
async fn sync_igw(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: IgwAttrs = from_attrs(&r.address, &r.attrs)?;
    let g = find_igw(aws, ec2, r.address.as_str()).await?;
    let g =
        g.ok_or_else(|| AwsError::Other(format!("internet gateway {} does not exist", r.address)))?;
    let id = g.internet_gateway_id().unwrap_or_default().to_string();
    let mut want = Vec::new();
    for v in &a.attached_to {
        want.push(need(find_vpc(aws, ec2, v).await?, "VPC", v).await?);
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
        if g.attachments()
            .iter()
            .any(|att| att.vpc_id() == Some(vpc.as_str()))
        {
            continue;
        }
        match ec2
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(&vpc)
            .send()
            .await
        {
            Err(e) if common::code(&e) == Some("Resource.AlreadyAssociated") => {}
            Err(e) => return Err(api(aws, "ec2", "AttachInternetGateway", e)),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Make the routes and subnet associations exactly the desired ones.
async fn sync_table(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: RouteTableAttrs = from_attrs(&r.address, &r.attrs)?;
    let t = find_table(aws, ec2, r.address.as_str()).await?;
    let t =
        t.ok_or_else(|| AwsError::Other(format!("route table {} does not exist", r.address)))?;
    let id = t.route_table_id().unwrap_or_default().to_string();

    // Desired routes: destination → target address.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for s in &a.routes {
        if let Some((dest, target)) = s.split_once(" via ") {
            want.insert(dest.to_string(), target.to_string());
        }
    }
    for rt in t.routes() {
        let Some(dest) = rt.destination_cidr_block() else {
            continue;
        };
        if rt.gateway_id() == Some("local") || want.contains_key(dest) {
            continue;
        }
        match ec2
            .delete_route()
            .route_table_id(&id)
            .destination_cidr_block(dest)
            .send()
            .await
        {
            Err(e) if !is_gone(common::code(&e)) => return Err(api(aws, "ec2", "DeleteRoute", e)),
            _ => {}
        }
    }
    for (dest, target) in &want {
        let existing = t
            .routes()
            .iter()
            .find(|rt| rt.destination_cidr_block() == Some(dest.as_str()));
        let (gateway, eni) = if target == IGW {
            let g = find_igw(aws, ec2, target)
                .await?
                .and_then(|g| g.internet_gateway_id().map(str::to_string));
            (Some(need(g, "internet gateway", target).await?), None)
        } else {
            let eni = super::ec2::primary_eni(aws, ec2, target).await?;
            (None, Some(need(eni, "instance", target).await?))
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
        want_subnets.push(need(find_subnet(aws, ec2, s).await?, "subnet", s).await?);
    }
    for assoc in t.associations() {
        let (Some(subnet), Some(assoc_id)) =
            (assoc.subnet_id(), assoc.route_table_association_id())
        else {
            continue;
        };
        if !want_subnets.iter().any(|w| w == subnet) {
            match ec2
                .disassociate_route_table()
                .association_id(assoc_id)
                .send()
                .await
            {
                Err(e) if !is_gone(common::code(&e)) => {
                    return Err(api(aws, "ec2", "DisassociateRouteTable", e))
                }
                _ => {}
            }
        }
    }
    for subnet in want_subnets {
        if t.associations()
            .iter()
            .any(|assoc| assoc.subnet_id() == Some(subnet.as_str()))
        {
            continue;
        }
        // A subnet associated with another table is moved with ReplaceRouteTableAssociation.
        let other = ec2
            .describe_route_tables()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(&subnet)
                    .build(),
            )
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

async fn sync_endpoint(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: EndpointAttrs = from_attrs(&r.address, &r.attrs)?;
    let e = find_endpoint(aws, ec2, r.address.as_str()).await?;
    let e =
        e.ok_or_else(|| AwsError::Other(format!("VPC endpoint {} does not exist", r.address)))?;
    let mut want = Vec::new();
    for t in &a.route_tables {
        let table = find_table(aws, ec2, t)
            .await?
            .and_then(|t| t.route_table_id().map(str::to_string));
        want.push(need(table, "route table", t).await?);
    }
    let have: Vec<String> = e.route_table_ids().to_vec();
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

/// Make the group's ingress rules exactly the desired ones.
async fn sync_group(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: GroupAttrs = from_attrs(&r.address, &r.attrs)?;
    let addr = r.address.as_str();
    let id = need(find_group(aws, ec2, addr).await?, "security group", addr).await?;
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
        let base = || {
            IpPermission::builder()
                .ip_protocol(proto)
                .from_port(from)
                .to_port(to)
        };
        for range in p.ip_ranges() {
            let cidr = range.cidr_ip().unwrap_or_default();
            have.insert(
                rule(proto, from, to, cidr),
                base()
                    .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
                    .build(),
            );
        }
        for pair in p.user_id_group_pairs() {
            let gid = pair.group_id().unwrap_or_default();
            // The source is shown by address when it is one of ctl's groups.
            let shown = match find_address_of_group(aws, ec2, gid).await? {
                Some(a) => a,
                None => gid.to_string(),
            };
            have.insert(
                rule(proto, from, to, &shown),
                base()
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id(gid).build())
                    .build(),
            );
        }
    }
    let revoke: Vec<IpPermission> = have
        .iter()
        .filter(|(k, _)| !a.ingress.contains(k))
        .map(|(_, p)| p.clone())
        .collect();
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
        let (proto, from, to, source) = parse_rule(s)
            .ok_or_else(|| AwsError::Other(format!("{addr}: malformed rule {s:?}")))?;
        let mut p = IpPermission::builder().ip_protocol(&proto);
        if proto != "-1" {
            p = p.from_port(from).to_port(to);
        }
        if source.starts_with("network.security_group.") {
            let gid = need(
                find_group(aws, ec2, &source).await?,
                "security group",
                &source,
            )
            .await?;
            p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(gid).build());
        } else {
            p = p.ip_ranges(IpRange::builder().cidr_ip(&source).build());
        }
        add.push(p.build());
    }
    if !add.is_empty() {
        match ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(add))
            .send()
            .await
        {
            Err(e) if common::code(&e) == Some("InvalidPermission.Duplicate") => {}
            Err(e) => return Err(api(aws, "ec2", "AuthorizeSecurityGroupIngress", e)),
            Ok(_) => {}
        }
    }
    Ok(())
}

async fn find_address_of_group(
    aws: &Aws,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<String>, AwsError> {
    let out = ec2.describe_security_groups().group_ids(id).send().await;
    match out {
        Ok(out) => Ok(out
            .security_groups()
            .first()
            .and_then(|g| owned(aws, g.tags()))
            .map(|a| a.to_string())),
        Err(e) if is_gone(common::code(&e)) => Ok(None),
        Err(e) => Err(api(aws, "ec2", "DescribeSecurityGroups", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip() {
        for s in [
            "tcp 443-443 from 0.0.0.0/0",
            "udp 53-54 from network.security_group.api",
            "all from 10.0.1.0/24",
        ] {
            let (p, f, t, src) = parse_rule(s).unwrap();
            assert_eq!(rule(&p, f, t, &src), s);
        }
        assert_eq!(parse_rule("nonsense"), None);
    }
}
