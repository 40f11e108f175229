//! IAM roles and instance profiles: observe (ListRoles → ListRoleTags → GetRole;
//! ListInstanceProfiles → GetInstanceProfile for tags) and apply, idempotently.
//!
//! ctl names everything `ctl-<environment>-<role>`, so only names starting with `ctl-` are
//! candidates: tagged for this environment → observed; tagged for another → skipped; untagged →
//! reported as unmanaged (a desired role of that name is then a conflict).

use super::resources::*;
use super::tags::{self, Owner};
use super::{Aws, AwsError};
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Observed, Resource, Unmanaged, UnmanagedReason};
use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

const SERVICE: &str = "iam";
const NAME_PREFIX: &str = "ctl-";
const READ_CONCURRENCY: usize = 8;

fn client(aws: &Aws) -> aws_sdk_iam::Client {
    super::client::iam(aws)
}

fn tag_pairs(t: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    t.iter().map(|t| (t.key(), t.value()))
}

fn sdk_tags(aws: &Aws, address: &Address) -> Result<Vec<Tag>, AwsError> {
    tags::ownership_tags(&aws.environment, address)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| AwsError::Other(e.to_string())))
        .collect()
}

/// Canonical duration text → seconds (default 1h).
fn session_secs(text: &str) -> i32 {
    text.parse::<crate::config::Duration>().ok().and_then(|d| i32::try_from(d.0).ok()).unwrap_or(3600)
}

/// Seconds → canonical duration text.
fn duration(secs: i32) -> String {
    crate::config::Duration(u64::try_from(secs).unwrap_or(0)).to_string()
}

async fn role_names(c: &Client) -> Result<Vec<String>, AwsError> {
    let roles = c.list_roles().into_paginator().items().send().try_collect().await;
    let roles = roles.map_err(|e| AwsError::api(SERVICE, "ListRoles", e))?;
    Ok(roles.into_iter().map(|r| r.role_name).filter(|n| n.starts_with(NAME_PREFIX)).collect())
}

async fn role_owner(c: &Client, name: &str, environment: &str) -> Result<Option<Owner>, AwsError> {
    match c.list_role_tags().role_name(name).send().await {
        Ok(t) => Ok(Some(tags::owner(tag_pairs(t.tags()), environment))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(AwsError::api(SERVICE, "ListRoleTags", e)),
    }
}

async fn read_role(c: &Client, name: &str) -> Result<Option<IamRoleAttrs>, AwsError> {
    let role = match c.get_role().role_name(name).send().await {
        Ok(r) => r,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
        Err(e) => return Err(AwsError::api(SERVICE, "GetRole", e)),
    };
    let Some(role) = role.role() else { return Ok(None) };
    let trust = role.assume_role_policy_document().map(parse_policy_document).unwrap_or_default();
    Ok(Some(IamRoleAttrs {
        description: role.description().unwrap_or_default().to_string(),
        trusted_services: trusted_services(&trust),
        max_session_duration: duration(role.max_session_duration().unwrap_or(3600)),
    }))
}

/// The ARN of role `name` (for key policies).
pub async fn role_arn(aws: &Aws, name: &str) -> Result<String, AwsError> {
    let role = client(aws).get_role().role_name(name).send().await.map_err(|e| AwsError::api(SERVICE, "GetRole", e))?;
    role.role()
        .map(|r| r.arn().to_string())
        .ok_or_else(|| AwsError::Other(format!("GetRole {name}: no role in the response")))
}

/// Read this environment's roles and instance profiles into `out`.
pub async fn observe(aws: &Aws, out: &mut Observed) -> Result<(), AwsError> {
    let c = client(aws);
    let env = aws.environment.as_str();
    let names = role_names(&c).await?;
    let roles: Vec<Option<(String, Owner, Option<IamRoleAttrs>)>> = stream::iter(names)
        .map(|name| {
            let c = &c;
            async move {
                let Some(owner) = role_owner(c, &name, env).await? else { return Ok(None) };
                let attrs = match &owner {
                    Owner::Ours(_) => read_role(c, &name).await?,
                    _ => None,
                };
                Ok::<_, AwsError>(Some((name, owner, attrs)))
            }
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut our_roles: std::collections::BTreeMap<String, Address> = std::collections::BTreeMap::new();
    for (name, owner, attrs) in roles.into_iter().flatten() {
        match (owner, attrs) {
            (Owner::Ours(address), Some(attrs)) => {
                our_roles.insert(name.clone(), address.clone());
                out.resources.push(iam_role(address, &name, &attrs));
            }
            (Owner::Unmanaged(reason), _) => out.unmanaged.push(Unmanaged::root(Kind::IamRole, name, UnmanagedReason::no_marker(reason))),
            _ => {}
        }
    }

    let all = c.list_instance_profiles().into_paginator().items().send().try_collect().await;
    let profiles: Vec<(String, Vec<String>)> = all
        .map_err(|e| AwsError::api(SERVICE, "ListInstanceProfiles", e))?
        .into_iter()
        .filter(|p| p.instance_profile_name().starts_with(NAME_PREFIX))
        .map(|p| (p.instance_profile_name().to_string(), p.roles().iter().map(|r| r.role_name().to_string()).collect()))
        .collect();
    let owners: Vec<Option<Owner>> = stream::iter(profiles.iter())
        .map(|(name, _)| profile_owner(&c, name, env))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    for ((name, roles), owner) in profiles.into_iter().zip(owners) {
        match owner {
            Some(Owner::Ours(address)) => {
                let role = roles.join(",");
                let dep = our_roles.get(&role).cloned();
                out.resources.push(instance_profile(address, &name, &IamInstanceProfileAttrs { role }, dep));
            }
            Some(Owner::Unmanaged(reason)) => {
                out.unmanaged.push(Unmanaged::root(Kind::IamInstanceProfile, name, UnmanagedReason::no_marker(reason)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The owner of instance profile `name` from GetInstanceProfile's tags (ListInstanceProfileTags
/// would do too, but moto does not implement it); `None` if it is gone.
async fn profile_owner(c: &Client, name: &str, environment: &str) -> Result<Option<Owner>, AwsError> {
    match c.get_instance_profile().instance_profile_name(name).send().await {
        Ok(p) => Ok(p.instance_profile().map(|p| tags::owner(tag_pairs(p.tags()), environment))),
        Err(e) if is_no_such_entity(&e) => Ok(None),
        Err(e) => Err(AwsError::api(SERVICE, "GetInstanceProfile", e)),
    }
}

fn attrs_of<T: serde::de::DeserializeOwned>(r: &Resource) -> Result<T, AwsError> {
    from_attrs(&r.attrs).map_err(|e| AwsError::Other(format!("{}: malformed attributes: {e}", r.address)))
}

pub struct IamRole;

#[async_trait::async_trait]
impl KindHandler<Aws> for IamRole {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        create_role(aws, &client(aws), r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        update_role(&client(aws), u.after).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        delete_role(&client(aws), r).await
    }
}

pub struct IamInstanceProfile;

#[async_trait::async_trait]
impl KindHandler<Aws> for IamInstanceProfile {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        create_profile(aws, &client(aws), r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        set_profile_role(&client(aws), u.after).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        delete_profile(&client(aws), r).await
    }
}

/// After "already exists": fine only if the existing object carries this address's tags.
fn check_ours(owner: Option<Owner>, r: &Resource) -> Result<(), AwsError> {
    match owner {
        Some(Owner::Ours(a)) if a == r.address => Ok(()),
        _ => Err(AwsError::Other(format!(
            "{}: {:?} {} already exists and is not managed by ctl for this address; remove or rename it, then re-run",
            r.address, r.kind, r.name
        ))),
    }
}

async fn create_role(aws: &Aws, c: &Client, r: &Resource) -> Result<(), AwsError> {
    let a: IamRoleAttrs = attrs_of(r)?;
    let secs = session_secs(&a.max_session_duration);
    let result = c
        .create_role()
        .role_name(&r.name)
        .assume_role_policy_document(trust_document(&a.trusted_services).to_string())
        .description(&a.description)
        .max_session_duration(secs)
        .set_tags(Some(sdk_tags(aws, &r.address)?))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_already_exists_exception()) => {
            check_ours(role_owner(c, &r.name, &aws.environment).await?, r)?;
            update_role(c, r).await
        }
        Err(e) => Err(AwsError::api(SERVICE, "CreateRole", e)),
    }
}

async fn update_role(c: &Client, r: &Resource) -> Result<(), AwsError> {
    let a: IamRoleAttrs = attrs_of(r)?;
    let secs = session_secs(&a.max_session_duration);
    c.update_role()
        .role_name(&r.name)
        .description(&a.description)
        .max_session_duration(secs)
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "UpdateRole", e))?;
    c.update_assume_role_policy()
        .role_name(&r.name)
        .policy_document(trust_document(&a.trusted_services).to_string())
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "UpdateAssumeRolePolicy", e))?;
    Ok(())
}

async fn delete_role(c: &Client, r: &Resource) -> Result<(), AwsError> {
    // A role must be out of every instance profile and have no policies before DeleteRole.
    match c.list_instance_profiles_for_role().role_name(&r.name).send().await {
        Ok(p) => {
            for profile in p.instance_profiles() {
                remove_role(c, profile.instance_profile_name(), &r.name).await?;
            }
        }
        Err(e) if is_no_such_entity(&e) => return Ok(()),
        Err(e) => return Err(AwsError::api(SERVICE, "ListInstanceProfilesForRole", e)),
    }
    let attached = c
        .list_attached_role_policies()
        .role_name(&r.name)
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "ListAttachedRolePolicies", e))?;
    for p in attached.attached_policies() {
        if let Some(arn) = p.policy_arn() {
            c.detach_role_policy()
                .role_name(&r.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| AwsError::api(SERVICE, "DetachRolePolicy", e))?;
        }
    }
    let inline = c
        .list_role_policies()
        .role_name(&r.name)
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "ListRolePolicies", e))?;
    for name in inline.policy_names() {
        c.delete_role_policy()
            .role_name(&r.name)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| AwsError::api(SERVICE, "DeleteRolePolicy", e))?;
    }
    match c.delete_role().role_name(&r.name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_no_such_entity(&e) => Ok(()),
        Err(e) => Err(AwsError::api(SERVICE, "DeleteRole", e)),
    }
}

fn is_no_such_entity<E: aws_sdk_iam::error::ProvideErrorMetadata, R>(e: &aws_sdk_iam::error::SdkError<E, R>) -> bool {
    e.as_service_error().is_some_and(|s| s.code() == Some("NoSuchEntity"))
}

async fn remove_role(c: &Client, profile: &str, role: &str) -> Result<(), AwsError> {
    match c.remove_role_from_instance_profile().instance_profile_name(profile).role_name(role).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_no_such_entity(&e) => Ok(()),
        Err(e) => Err(AwsError::api(SERVICE, "RemoveRoleFromInstanceProfile", e)),
    }
}

async fn create_profile(aws: &Aws, c: &Client, r: &Resource) -> Result<(), AwsError> {
    let result = c
        .create_instance_profile()
        .instance_profile_name(&r.name)
        .set_tags(Some(sdk_tags(aws, &r.address)?))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_already_exists_exception()) => {
            let owner = profile_owner(c, &r.name, &aws.environment).await?;
            check_ours(owner, r)?;
        }
        Err(e) => return Err(AwsError::api(SERVICE, "CreateInstanceProfile", e)),
    }
    set_profile_role(c, r).await
}

/// Make the profile carry exactly the desired role.
async fn set_profile_role(c: &Client, r: &Resource) -> Result<(), AwsError> {
    let a: IamInstanceProfileAttrs = attrs_of(r)?;
    let profile = c
        .get_instance_profile()
        .instance_profile_name(&r.name)
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "GetInstanceProfile", e))?;
    let current: Vec<String> = profile
        .instance_profile()
        .map(|p| p.roles().iter().map(|x| x.role_name().to_string()).collect())
        .unwrap_or_default();
    for role in current.iter().filter(|x| **x != a.role) {
        remove_role(c, &r.name, role).await?;
    }
    if !a.role.is_empty() && !current.contains(&a.role) {
        match c.add_role_to_instance_profile().instance_profile_name(&r.name).role_name(&a.role).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_limit_exceeded_exception()) => {}
            Err(e) => return Err(AwsError::api(SERVICE, "AddRoleToInstanceProfile", e)),
        }
    }
    Ok(())
}

async fn delete_profile(c: &Client, r: &Resource) -> Result<(), AwsError> {
    let profile = match c.get_instance_profile().instance_profile_name(&r.name).send().await {
        Ok(p) => p,
        Err(e) if is_no_such_entity(&e) => return Ok(()),
        Err(e) => return Err(AwsError::api(SERVICE, "GetInstanceProfile", e)),
    };
    for role in profile.instance_profile().map(|p| p.roles().to_vec()).unwrap_or_default() {
        remove_role(c, &r.name, role.role_name()).await?;
    }
    match c.delete_instance_profile().instance_profile_name(&r.name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_no_such_entity(&e) => Ok(()),
        Err(e) => Err(AwsError::api(SERVICE, "DeleteInstanceProfile", e)),
    }
}
