//! RDS kinds: the DB subnet group (private subnets) and the PostgreSQL DB instance
//! (encrypted with the declared KMS key, not publicly accessible, backups kept
//! `backup_retention_period` days). Deleting the DB instance loses data: it needs
//! `--allow-destroy=rds.instance`, and even then a final snapshot is taken.
//!
//! RDS has no tag filters on Describe*: ctl lists and keeps what its tags say is this
//! environment's. An untagged subnet group or DB instance with the name ctl wants is reported as
//! unmanaged, which makes the plan a conflict instead of a silent adoption.

use super::network::subnet_address;
use super::network_common::{self as common, api, from_attrs, set, to_attrs};
use super::{Aws, AwsError};
use crate::config::{Environment, Rds};
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Resource, Scope, Unmanaged, UnmanagedReason};
use aws_sdk_rds::types::Tag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const SUBNET_GROUP: &str = "rds.subnet_group";
pub const INSTANCE: &str = "rds.instance";
/// How long a delete waits for RDS to finish deleting the instance.
const DELETE_WAIT: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetGroupAttrs {
    pub name: String,
    pub description: String,
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbInstanceAttrs {
    pub identifier: String,
    pub engine: String,
    pub instance_class: String,
    pub allocated_storage: i32,
    pub backup_retention_period: i32,
    pub storage_encrypted: bool,
    pub kms_key_id: String,
    pub publicly_accessible: bool,
    pub subnet_group: String,
    pub master_username: String,
}

fn group_name(env: &str, rds: &Rds) -> String {
    format!("{env}-{}", rds.identifier)
}

fn resource(
    address: &str,
    kind: Kind,
    name: &str,
    attrs: crate::model::Attrs,
    deps: Vec<Address>,
) -> Resource {
    Resource {
        address: Address::new(address),
        kind,
        scope: Scope::Root,
        name: name.to_string(),
        attrs,
        depends_on: deps,
        container: None,
    }
}

pub fn desired(env: &Environment, rds: &Rds) -> Vec<Resource> {
    let subnets: Vec<Address> = rds.subnets.iter().map(|s| subnet_address(s)).collect();
    let name = group_name(&env.name, rds);
    let group = SubnetGroupAttrs {
        name: name.clone(),
        description: format!("ctl: {} database subnets", env.name),
        subnets: set(subnets.iter().map(ToString::to_string).collect()),
    };
    let db = DbInstanceAttrs {
        identifier: rds.identifier.clone(),
        engine: rds.engine.clone(),
        instance_class: rds.instance_class.clone(),
        allocated_storage: i32::try_from(rds.allocated_storage).unwrap_or(i32::MAX),
        backup_retention_period: i32::from(rds.backup_retention_period),
        storage_encrypted: true,
        kms_key_id: super::kms::reference(&rds.kms_key_id),
        publicly_accessible: false,
        subnet_group: SUBNET_GROUP.into(),
        master_username: rds.master_username.clone(),
    };
    vec![
        resource(
            SUBNET_GROUP,
            Kind::DbSubnetGroup,
            &name,
            to_attrs(&group),
            subnets,
        ),
        resource(
            INSTANCE,
            Kind::DbInstance,
            &rds.identifier,
            to_attrs(&db),
            std::iter::once(Address::new(SUBNET_GROUP)).chain(super::kms::declared_dependency(&rds.kms_key_id)).collect(),
        ),
    ]
}

fn owned(aws: &Aws, tags: &[Tag]) -> Option<Address> {
    common::owned_address(
        aws,
        tags.iter().filter_map(|t| Some((t.key()?, t.value()?))),
    )
}

/// After "already exists": fine for a retried create of ours (tagged with this address),
/// refused for anyone else's, which ctl never takes over silently.
async fn ensure_ours(aws: &Aws, rds: &aws_sdk_rds::Client, r: &Resource) -> Result<(), AwsError> {
    let tags = match r.kind {
        Kind::DbInstance => rds
            .describe_db_instances()
            .db_instance_identifier(&r.name)
            .send()
            .await
            .map_err(|e| api(aws, "rds", "DescribeDBInstances", e))?
            .db_instances()
            .first()
            .map(|db| db.tag_list().to_vec())
            .unwrap_or_default(),
        _ => {
            let groups = rds
                .describe_db_subnet_groups()
                .db_subnet_group_name(&r.name)
                .send()
                .await
                .map_err(|e| api(aws, "rds", "DescribeDBSubnetGroups", e))?;
            match groups.db_subnet_groups().first().and_then(|g| g.db_subnet_group_arn()) {
                Some(arn) => rds
                    .list_tags_for_resource()
                    .resource_name(arn)
                    .send()
                    .await
                    .map_err(|e| api(aws, "rds", "ListTagsForResource", e))?
                    .tag_list()
                    .to_vec(),
                None => Vec::new(),
            }
        }
    };
    if owned(aws, &tags).as_ref() == Some(&r.address) {
        Ok(())
    } else {
        Err(AwsError::Other(format!(
            "{}: {:?} {} already exists and is not tagged as ctl's for this address; nothing was changed",
            r.address, r.kind, r.name
        )))
    }
}

fn is_ctl(tags: &[Tag]) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(common::MANAGED_BY) && t.value() == Some(common::MANAGED_BY_VALUE))
}

fn tags(aws: &Aws, address: &str) -> Vec<Tag> {
    common::tag_pairs(aws, &Address::new(address))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Read this environment's DB subnet groups and DB instances; report untagged ones.
pub async fn observe(
    aws: &Aws,
    ec2_ids: &BTreeMap<String, Address>,
    out: &mut Vec<Resource>,
    unmanaged: &mut Vec<Unmanaged>,
) -> Result<(), AwsError> {
    let rds = common::rds(aws);
    let mut groups: BTreeMap<String, Address> = BTreeMap::new();
    let mut pages = rds.describe_db_subnet_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api(aws, "rds", "DescribeDBSubnetGroups", e))?;
        for g in page.db_subnet_groups() {
            let (Some(name), Some(arn)) = (g.db_subnet_group_name(), g.db_subnet_group_arn())
            else {
                continue;
            };
            let t = rds
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| api(aws, "rds", "ListTagsForResource", e))?;
            let Some(addr) = owned(aws, t.tag_list()) else {
                if !is_ctl(t.tag_list()) && name != "default" {
                    unmanaged.push(Unmanaged::root(Kind::DbSubnetGroup, name.to_string(), UnmanagedReason::no_marker("not tagged managed-by=ctl")));
                }
                continue;
            };
            groups.insert(name.to_string(), addr.clone());
            let attrs = normalize_group(g, ec2_ids);
            out.push(resource(
                addr.as_str(),
                Kind::DbSubnetGroup,
                name,
                to_attrs(&attrs),
                vec![],
            ));
        }
    }
    let mut pages = rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api(aws, "rds", "DescribeDBInstances", e))?;
        for db in page.db_instances() {
            let Some(id) = db.db_instance_identifier() else {
                continue;
            };
            if db.db_instance_status() == Some("deleting") {
                continue;
            }
            let Some(addr) = owned(aws, db.tag_list()) else {
                if !is_ctl(db.tag_list()) {
                    unmanaged.push(Unmanaged::root(Kind::DbInstance, id.to_string(), UnmanagedReason::no_marker("not tagged managed-by=ctl")));
                }
                continue;
            };
            let attrs = normalize_instance(db, &groups);
            out.push(resource(
                addr.as_str(),
                Kind::DbInstance,
                id,
                to_attrs(&attrs),
                vec![],
            ));
        }
    }
    Ok(())
}

/// A described DB subnet group as attributes (its subnets by address when they are ctl's).
pub fn normalize_group(g: &aws_sdk_rds::types::DbSubnetGroup, ec2_ids: &BTreeMap<String, Address>) -> SubnetGroupAttrs {
    let subnets = g
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier())
        .map(|id| ec2_ids.get(id).map_or_else(|| id.to_string(), ToString::to_string))
        .collect();
    SubnetGroupAttrs {
        name: g.db_subnet_group_name().unwrap_or_default().to_string(),
        description: g.db_subnet_group_description().unwrap_or_default().to_string(),
        subnets: set(subnets),
    }
}

/// A described DB instance as attributes: its key as the declared key id (an ARN is cut to
/// its id), its subnet group by address when it is ctl's.
pub fn normalize_instance(db: &aws_sdk_rds::types::DbInstance, groups: &BTreeMap<String, Address>) -> DbInstanceAttrs {
    let group = db.db_subnet_group().and_then(|g| g.db_subnet_group_name()).unwrap_or_default();
    let kms = db.kms_key_id().unwrap_or_default();
    DbInstanceAttrs {
        identifier: db.db_instance_identifier().unwrap_or_default().to_string(),
        engine: db.engine().unwrap_or_default().to_string(),
        instance_class: db.db_instance_class().unwrap_or_default().to_string(),
        allocated_storage: db.allocated_storage().unwrap_or(0),
        backup_retention_period: db.backup_retention_period().unwrap_or(0),
        storage_encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: crate::config::kms_key_id(kms).unwrap_or_else(|| kms.to_string()),
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        subnet_group: groups.get(group).map_or_else(|| group.to_string(), ToString::to_string),
        master_username: db.master_username().unwrap_or_default().to_string(),
    }
}

async fn subnet_ids(aws: &Aws, addresses: &[String]) -> Result<Vec<String>, AwsError> {
    let ec2 = common::ec2(aws);
    let mut ids = Vec::new();
    for s in addresses {
        let id = super::network::find_subnet(aws, &ec2, s).await?;
        ids.push(id.ok_or_else(|| AwsError::Other(format!("subnet {s} does not exist")))?);
    }
    Ok(ids)
}

/// "Already gone" answers of RDS deletes and reads.
fn gone(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.contains("NotFound"))
}

pub struct DbSubnetGroup;

#[async_trait::async_trait]
impl KindHandler<Aws> for DbSubnetGroup {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let rds = common::rds(aws);
        let a: SubnetGroupAttrs = from_attrs(&r.address, &r.attrs)?;
        let ids = subnet_ids(aws, &a.subnets).await?;
        let created = rds
            .create_db_subnet_group()
            .db_subnet_group_name(&a.name)
            .db_subnet_group_description(&a.description)
            .set_subnet_ids(Some(ids))
            .set_tags(Some(tags(aws, r.address.as_str())))
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // A retried create: ours only if tagged for this address.
            Err(e) if common::code(&e) == Some("DBSubnetGroupAlreadyExists") => ensure_ours(aws, &rds, r).await,
            Err(e) => Err(api(aws, "rds", "CreateDBSubnetGroup", e)),
        }
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        let r = u.after;
        let a: SubnetGroupAttrs = from_attrs(&r.address, &r.attrs)?;
        let ids = subnet_ids(aws, &a.subnets).await?;
        common::rds(aws)
            .modify_db_subnet_group()
            .db_subnet_group_name(&a.name)
            .db_subnet_group_description(&a.description)
            .set_subnet_ids(Some(ids))
            .send()
            .await
            .map_err(|e| api(aws, "rds", "ModifyDBSubnetGroup", e))?;
        Ok(())
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let a: SubnetGroupAttrs = from_attrs(&r.address, &r.attrs)?;
        match common::rds(aws).delete_db_subnet_group().db_subnet_group_name(&a.name).send().await {
            Err(e) if !gone(common::code(&e)) => Err(api(aws, "rds", "DeleteDBSubnetGroup", e)),
            _ => Ok(()),
        }
    }
}

pub struct DbInstance;

#[async_trait::async_trait]
impl KindHandler<Aws> for DbInstance {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let rds = common::rds(aws);
        let a: DbInstanceAttrs = from_attrs(&r.address, &r.attrs)?;
        // The group's name is derived from the environment and the identifier (see desired).
        let group = format!("{}-{}", aws.environment, a.identifier);
        let kms_key_id = super::kms::resolve(aws, &a.kms_key_id).await?;
        let created = rds
            .create_db_instance()
            .db_instance_identifier(&a.identifier)
            .engine(&a.engine)
            .db_instance_class(&a.instance_class)
            .allocated_storage(a.allocated_storage)
            .backup_retention_period(a.backup_retention_period)
            .storage_encrypted(a.storage_encrypted)
            .kms_key_id(&kms_key_id)
            .publicly_accessible(a.publicly_accessible)
            .db_subnet_group_name(group)
            .master_username(&a.master_username)
            // The password is generated and kept by RDS in Secrets Manager: ctl never sees it.
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&kms_key_id)
            .copy_tags_to_snapshot(true)
            .set_tags(Some(tags(aws, r.address.as_str())))
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if common::code(&e) == Some("DBInstanceAlreadyExists") => ensure_ours(aws, &rds, r).await,
            Err(e) => Err(api(aws, "rds", "CreateDBInstance", e)),
        }
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        let r = u.after;
        let a: DbInstanceAttrs = from_attrs(&r.address, &r.attrs)?;
        if u.changed("master_username") {
            return Err(AwsError::Other(format!("{}: the master username cannot be changed", r.address)));
        }
        let mut m = common::rds(aws).modify_db_instance().db_instance_identifier(&a.identifier).apply_immediately(true);
        if u.changed("instance_class") {
            m = m.db_instance_class(&a.instance_class);
        }
        if u.changed("allocated_storage") {
            m = m.allocated_storage(a.allocated_storage);
        }
        if u.changed("backup_retention_period") {
            m = m.backup_retention_period(a.backup_retention_period);
        }
        if u.changed("publicly_accessible") {
            m = m.publicly_accessible(a.publicly_accessible);
        }
        m.send().await.map_err(|e| api(aws, "rds", "ModifyDBInstance", e))?;
        Ok(())
    }

    /// Delete with a final snapshot, and wait until it is gone (the subnet group it uses
    /// cannot be deleted before).
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let rds = common::rds(aws);
        let a: DbInstanceAttrs = from_attrs(&r.address, &r.attrs)?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let deleted = rds
            .delete_db_instance()
            .db_instance_identifier(&a.identifier)
            .skip_final_snapshot(false)
            .final_db_snapshot_identifier(format!("{}-final-{stamp}", a.identifier))
            .send()
            .await;
        match deleted {
            Err(e) if gone(common::code(&e)) => return Ok(()),
            Err(e) => return Err(api(aws, "rds", "DeleteDBInstance", e)),
            Ok(_) => {}
        }
        let deadline = tokio::time::Instant::now() + DELETE_WAIT;
        loop {
            match rds.describe_db_instances().db_instance_identifier(&a.identifier).send().await {
                Err(e) if gone(common::code(&e)) => return Ok(()),
                Err(e) => return Err(api(aws, "rds", "DescribeDBInstances", e)),
                Ok(out) if out.db_instances().is_empty() => return Ok(()),
                Ok(_) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AwsError::Other(format!("{}: still deleting after {}s", r.address, DELETE_WAIT.as_secs())));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// What `ctl dr rebuild` asserts about a restored DB instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    pub storage_encrypted: bool,
    pub kms_key_id: Option<String>,
    pub backup_retention_period: i32,
}

/// Whether the DB instance `identifier` exists.
pub async fn instance_exists(aws: &Aws, identifier: &str) -> Result<bool, AwsError> {
    Ok(protection(aws, identifier).await?.is_some())
}

/// Encryption and retention of `identifier`; `None` if it does not exist.
pub async fn protection(aws: &Aws, identifier: &str) -> Result<Option<Protection>, AwsError> {
    let rds = common::rds(aws);
    match rds.describe_db_instances().db_instance_identifier(identifier).send().await {
        Err(e) if e.as_service_error().is_some_and(|e| e.is_db_instance_not_found_fault()) => Ok(None),
        Err(e) => Err(api(aws, "rds", "DescribeDBInstances", e)),
        Ok(out) => Ok(out.db_instances().first().map(|db| Protection {
            storage_encrypted: db.storage_encrypted().unwrap_or(false),
            kms_key_id: db.kms_key_id().map(str::to_string),
            backup_retention_period: db.backup_retention_period().unwrap_or(0),
        })),
    }
}

/// Restore the desired DB instance `r` from the manual snapshot `snapshot` into its subnet
/// group, tagged as ctl's. Settings a restore does not take (retention) are converged by the
/// following apply of the same address. "Already exists" is success (a resumed restore).
pub async fn restore_from_snapshot(aws: &Aws, r: &Resource, snapshot: &str) -> Result<(), AwsError> {
    let a: DbInstanceAttrs = from_attrs(&r.address, &r.attrs)?;
    let rds = common::rds(aws);
    let group = format!("{}-{}", aws.environment, a.identifier);
    let restored = rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&a.identifier)
        .db_snapshot_identifier(snapshot)
        .db_instance_class(&a.instance_class)
        .db_subnet_group_name(group)
        .publicly_accessible(a.publicly_accessible)
        .copy_tags_to_snapshot(true)
        .set_tags(Some(tags(aws, r.address.as_str())))
        .send()
        .await;
    match restored {
        Ok(_) => Ok(()),
        Err(e) if common::code(&e) == Some("DBInstanceAlreadyExists") => ensure_ours(aws, &rds, r).await,
        Err(e) => Err(api(aws, "rds", "RestoreDBInstanceFromDBSnapshot", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::{DbSubnetGroup, Subnet};

    #[test]
    fn a_subnet_group_shows_ctl_subnets_by_address_sorted() {
        let ids = BTreeMap::from([("subnet-b".to_string(), Address::new("network.subnet.private-b"))]);
        let g = DbSubnetGroup::builder()
            .db_subnet_group_name("prod-main")
            .db_subnet_group_description("ctl: main")
            .subnets(Subnet::builder().subnet_identifier("subnet-b").build())
            .subnets(Subnet::builder().subnet_identifier("subnet-a").build())
            .build();
        let a = normalize_group(&g, &ids);
        assert_eq!((a.name.as_str(), a.description.as_str()), ("prod-main", "ctl: main"));
        assert_eq!(a.subnets, ["network.subnet.private-b", "subnet-a"], "a subnet that is not ctl's shows its id: drift");
    }

    #[test]
    fn an_instance_shows_its_key_id_and_group_address() {
        let key = "0a1b2c3d-0000-1111-2222-333344445555";
        let groups = BTreeMap::from([("prod-main".to_string(), Address::new("rds.subnet_group"))]);
        let db = aws_sdk_rds::types::DbInstance::builder()
            .db_instance_identifier("main")
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .backup_retention_period(30)
            .storage_encrypted(true)
            .kms_key_id(format!("arn:aws:kms:us-east-1:123456789012:key/{key}"))
            .db_subnet_group(DbSubnetGroup::builder().db_subnet_group_name("prod-main").build())
            .master_username("ctl")
            .build();
        let a = normalize_instance(&db, &groups);
        assert_eq!(a.kms_key_id, key, "the ARN is cut to the key id the file declares");
        assert_eq!(a.subnet_group, "rds.subnet_group");
        assert_eq!((a.allocated_storage, a.backup_retention_period, a.storage_encrypted, a.publicly_accessible), (20, 30, true, false));
    }
}
