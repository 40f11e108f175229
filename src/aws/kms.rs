//! KMS keys and aliases: observe (ListKeys → ListResourceTags → DescribeKey + GetKeyPolicy;
//! ListAliases) and apply, idempotently.
//!
//! Ownership: a key is ctl's when its tags say so ([`super::tags`]); an alias is ctl's when it
//! points at one of ctl's keys (aliases cannot be tagged). An alias pointing at any other key is
//! reported as unmanaged, so declaring the same alias name is a conflict, never an adoption.
//! Keys pending deletion are gone as far as ctl is concerned.
//!
//! Physical key ids are not attributes (desired state cannot know them): apply finds the key by
//! its `ctl-address` tag.

use super::resources::*;
use super::tags::{self, Owner};
use super::{Aws, AwsError};
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Observed, Resource, Unmanaged, UnmanagedReason};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::BTreeMap;

const SERVICE: &str = "kms";
/// Concurrent tag/describe reads while observing.
const READ_CONCURRENCY: usize = 8;
/// Days before a deleted key is really destroyed (the maximum: time to notice and cancel).
pub const DELETION_WINDOW_DAYS: i32 = 30;

fn client(aws: &Aws) -> aws_sdk_kms::Client {
    super::client::kms(aws)
}

/// One live key with its tags judged.
struct LiveKey {
    key_id: String,
    owner: Owner,
}

async fn list_key_ids(c: &Client) -> Result<Vec<String>, AwsError> {
    let keys = c.list_keys().into_paginator().items().send().try_collect().await;
    let keys = keys.map_err(|e| AwsError::api(SERVICE, "ListKeys", e))?;
    Ok(keys.into_iter().filter_map(|k| k.key_id).collect())
}

/// `(alias name, target key id)` of every alias in the account/region (not `alias/aws/…`).
async fn list_aliases(c: &Client) -> Result<Vec<(String, Option<String>)>, AwsError> {
    let aliases = c.list_aliases().into_paginator().items().send().try_collect().await;
    let aliases = aliases.map_err(|e| AwsError::api(SERVICE, "ListAliases", e))?;
    Ok(aliases
        .into_iter()
        .filter_map(|a| Some((a.alias_name.filter(|n| !n.starts_with("alias/aws/"))?, a.target_key_id)))
        .collect())
}

async fn key_owner(c: &Client, key_id: &str, environment: &str) -> Result<Option<LiveKey>, AwsError> {
    match c.list_resource_tags().key_id(key_id).send().await {
        Ok(resp) => {
            let owner = tags::owner(resp.tags().iter().map(|t| (t.tag_key(), t.tag_value())), environment);
            Ok(Some(LiveKey { key_id: key_id.to_string(), owner }))
        }
        // Deleted meanwhile, or a key we may not read (AWS managed keys in some accounts).
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
        Err(e) if e.as_service_error().is_some_and(|s| s.meta().code() == Some("AccessDeniedException")) => Ok(None),
        Err(e) => Err(AwsError::api(SERVICE, "ListResourceTags", e)),
    }
}

async fn live_keys(c: &Client, environment: &str) -> Result<Vec<LiveKey>, AwsError> {
    let ids = list_key_ids(c).await?;
    let found: Vec<Option<LiveKey>> = stream::iter(ids)
        .map(|id| async move { key_owner(c, &id, environment).await })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// What DescribeKey + GetKeyPolicy say about one of ctl's keys; `None` if pending deletion or gone.
async fn read_key(c: &Client, key_id: &str) -> Result<Option<(KmsKeyAttrs, String)>, AwsError> {
    let described = match c.describe_key().key_id(key_id).send().await {
        Ok(d) => d,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
        Err(e) => return Err(AwsError::api(SERVICE, "DescribeKey", e)),
    };
    let Some(meta) = described.key_metadata() else { return Ok(None) };
    if matches!(meta.key_state(), Some(KeyState::PendingDeletion) | Some(KeyState::PendingReplicaDeletion)) {
        return Ok(None);
    }
    let account = meta.aws_account_id().unwrap_or_default().to_string();
    let policy = c
        .get_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "GetKeyPolicy", e))?;
    let doc: Value = policy.policy().and_then(|p| serde_json::from_str(p).ok()).unwrap_or(Value::Null);
    let attrs = KmsKeyAttrs {
        description: meta.description().unwrap_or_default().to_string(),
        key_spec: meta.key_spec().map(|s| s.as_str().to_string()).unwrap_or_default(),
        key_usage: meta.key_usage().map(|s| s.as_str().to_string()).unwrap_or_default(),
        enabled: meta.enabled(),
        policy: policy_attrs(&doc, &Symbols::for_account(&account)),
    };
    Ok(Some((attrs, account)))
}

/// Read this environment's keys and aliases into `out`; returns ctl's keys' ids → addresses.
pub async fn observe(aws: &Aws, out: &mut Observed) -> Result<BTreeMap<String, Address>, AwsError> {
    let c = client(aws);
    let keys = live_keys(&c, &aws.environment).await?;
    let ours: Vec<(&LiveKey, Address)> = keys
        .iter()
        .filter_map(|k| match &k.owner {
            Owner::Ours(a) => Some((k, a.clone())),
            _ => None,
        })
        .collect();
    let read: Vec<Option<(KmsKeyAttrs, String)>> = stream::iter(ours.iter())
        .map(|(k, _)| read_key(&c, &k.key_id))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;

    // key id → address of ctl's live keys.
    let mut by_id: BTreeMap<&str, Address> = BTreeMap::new();
    let mut seen: BTreeMap<Address, &str> = BTreeMap::new();
    for ((key, address), attrs) in ours.iter().zip(read) {
        let Some((attrs, _account)) = attrs else { continue };
        if let Some(first) = seen.get(address) {
            out.unmanaged.push(Unmanaged::root(
                Kind::KmsKey,
                key.key_id.clone(),
                UnmanagedReason::Duplicate { detail: format!("a second key tagged {address} (the first is {first}); ctl leaves it alone") },
            ));
            continue;
        }
        seen.insert(address.clone(), &key.key_id);
        by_id.insert(&key.key_id, address.clone());
        out.resources.push(kms_key(address.clone(), &key_name_of(address), &attrs, vec![]));
    }

    let mut aliased: BTreeMap<Address, ()> = BTreeMap::new();
    let mut aliases = list_aliases(&c).await?;
    aliases.sort();
    for (alias, target) in aliases {
        // The dev stack's own unseal key is the local stack's, not this environment's concern.
        if aws.dev_stack && alias == crate::dev::UNSEAL_KEY_ALIAS {
            continue;
        }
        let target = target.unwrap_or_default();
        match by_id.get(target.as_str()) {
            Some(key_address) if !aliased.contains_key(key_address) => {
                aliased.insert(key_address.clone(), ());
                let address = Address::new(format!("{key_address}.alias"));
                out.resources.push(kms_alias(address, &alias, &KmsAliasAttrs { target_key: key_address.to_string() }));
            }
            Some(key_address) => out.unmanaged.push(Unmanaged::root(
                Kind::KmsAlias,
                alias,
                UnmanagedReason::Duplicate { detail: format!("a second alias of ctl's key {key_address}; not declared, left alone") },
            )),
            None => {
                let owner = keys.iter().find(|k| k.key_id == target).map(|k| &k.owner);
                // Other environments' aliases are theirs; everything else is reported.
                if !matches!(owner, Some(Owner::OtherEnvironment(_))) {
                    out.unmanaged.push(Unmanaged::root(
                        Kind::KmsAlias,
                        alias,
                        UnmanagedReason::no_marker(format!("points at key {target}, which ctl does not manage for this environment")),
                    ));
                }
            }
        }
    }
    Ok(by_id.into_iter().map(|(id, address)| (id.to_string(), address)).collect())
}

/// What a desired resource stores for its `kms_key`: the key id, or the address of a key
/// declared in `kms:` (observe shows ctl's own keys by address too, so the two compare).
pub fn reference(kms_key: &str) -> String {
    if crate::config::is_declared_key(kms_key) {
        key_address(kms_key).to_string()
    } else {
        kms_key.to_string()
    }
}

/// The declared key a `kms_key` names, as a dependency (created first, deleted last).
pub fn declared_dependency(kms_key: &str) -> Option<Address> {
    crate::config::is_declared_key(kms_key).then(|| key_address(kms_key))
}

/// The key id for a create call: `reference` itself, or the id of the live key at that address.
pub async fn resolve(aws: &Aws, reference: &str) -> Result<String, AwsError> {
    if !reference.starts_with("aws.kms.") {
        return Ok(reference.to_string());
    }
    let address = Address::new(reference);
    find_key(&client(aws), aws, &address)
        .await?
        .ok_or_else(|| AwsError::Other(format!("the KMS key {address} does not exist (yet): apply it first")))
}

/// In observed instances and databases, ctl's own keys by address (`by_id`: key id → address).
pub fn show_keys(resources: &mut [Resource], by_id: &BTreeMap<String, Address>) {
    for r in resources.iter_mut().filter(|r| matches!(r.kind, Kind::Instance | Kind::DbInstance)) {
        for field in ["root_volume_kms_key", "kms_key_id"] {
            let id = r.attrs.get(field).and_then(Value::as_str).and_then(|k| by_id.get(k));
            if let Some(address) = id {
                r.attrs.insert(field.into(), Value::from(address.to_string()));
            }
        }
    }
}

/// The id of the live (not pending deletion) key tagged with `address`, if any.
async fn find_key(c: &Client, aws: &Aws, address: &Address) -> Result<Option<String>, AwsError> {
    for k in live_keys(c, &aws.environment).await? {
        if k.owner == Owner::Ours(address.clone()) && read_state_live(c, &k.key_id).await? {
            return Ok(Some(k.key_id));
        }
    }
    Ok(None)
}

async fn read_state_live(c: &Client, key_id: &str) -> Result<bool, AwsError> {
    match c.describe_key().key_id(key_id).send().await {
        Ok(d) => Ok(d.key_metadata().is_some_and(|m| {
            !matches!(m.key_state(), Some(KeyState::PendingDeletion) | Some(KeyState::PendingReplicaDeletion))
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(false),
        Err(e) => Err(AwsError::api(SERVICE, "DescribeKey", e)),
    }
}

fn attrs_of<T: serde::de::DeserializeOwned>(r: &Resource) -> Result<T, AwsError> {
    from_attrs(&r.attrs).map_err(|e| AwsError::Other(format!("{}: malformed attributes: {e}", r.address)))
}

/// Account and role ARNs for the symbols in `policy` (each `iam-role/<name>` via GetRole).
async fn resolve_symbols(aws: &Aws, policy: &BTreeMap<String, Value>) -> Result<Symbols, AwsError> {
    let mut roles: Vec<String> = Vec::new();
    for stmt in policy.values() {
        for p in stmt["principals"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Some(name) = p.strip_prefix(ROLE_PREFIX) {
                roles.push(name.to_string());
            }
        }
    }
    roles.sort();
    roles.dedup();
    let mut symbols = Symbols::default();
    for name in roles {
        let arn = super::iam::role_arn(aws, &name).await?;
        if symbols.account.is_none() {
            symbols.account = arn.split(':').nth(4).map(str::to_string);
        }
        symbols.role_arns.insert(arn, name);
    }
    if symbols.account.is_none() {
        return Err(AwsError::Other("the key policy names no IAM role, so the account id is unknown".into()));
    }
    Ok(symbols)
}

async fn policy_text(aws: &Aws, a: &KmsKeyAttrs) -> Result<String, AwsError> {
    let symbols = resolve_symbols(aws, &a.policy).await?;
    Ok(policy_document(&a.policy, &symbols).to_string())
}

pub struct KmsKey;

#[async_trait::async_trait]
impl KindHandler<Aws> for KmsKey {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        create_key(aws, &client(aws), r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        update_key(aws, &client(aws), u).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        delete_key(aws, &client(aws), r).await
    }
}

pub struct KmsAlias;

#[async_trait::async_trait]
impl KindHandler<Aws> for KmsAlias {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        put_alias(aws, &client(aws), r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        put_alias(aws, &client(aws), u.after).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        delete_alias(&client(aws), r).await
    }
}

async fn create_key(aws: &Aws, c: &Client, r: &Resource) -> Result<(), AwsError> {
    let a: KmsKeyAttrs = attrs_of(r)?;
    let policy = policy_text(aws, &a).await?;
    // A retried create (the response was lost) finds its key by tag instead of making a second one.
    if let Some(key_id) = find_key(c, aws, &r.address).await? {
        return converge_key(c, &key_id, &a, &policy, true).await;
    }
    let mut req = c
        .create_key()
        .description(&a.description)
        .key_spec(KeySpec::from(a.key_spec.as_str()))
        .key_usage(KeyUsageType::from(a.key_usage.as_str()))
        .policy(policy);
    for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
        let tag = Tag::builder().tag_key(k).tag_value(v).build().map_err(|e| AwsError::Other(e.to_string()))?;
        req = req.tags(tag);
    }
    let created = req.send().await.map_err(|e| AwsError::api(SERVICE, "CreateKey", e))?;
    if !a.enabled {
        if let Some(id) = created.key_metadata().map(|m| m.key_id().to_string()) {
            c.disable_key().key_id(id).send().await.map_err(|e| AwsError::api(SERVICE, "DisableKey", e))?;
        }
    }
    Ok(())
}

/// Set description, policy and enabled state of an existing key.
async fn converge_key(c: &Client, key_id: &str, a: &KmsKeyAttrs, policy: &str, all: bool) -> Result<(), AwsError> {
    if all {
        c.update_key_description()
            .key_id(key_id)
            .description(&a.description)
            .send()
            .await
            .map_err(|e| AwsError::api(SERVICE, "UpdateKeyDescription", e))?;
    }
    c.put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(policy)
        .send()
        .await
        .map_err(|e| AwsError::api(SERVICE, "PutKeyPolicy", e))?;
    if a.enabled {
        c.enable_key().key_id(key_id).send().await.map_err(|e| AwsError::api(SERVICE, "EnableKey", e))?;
    } else {
        c.disable_key().key_id(key_id).send().await.map_err(|e| AwsError::api(SERVICE, "DisableKey", e))?;
    }
    Ok(())
}

async fn update_key(aws: &Aws, c: &Client, change: Update<'_>) -> Result<(), AwsError> {
    let r = change.after;
    let a: KmsKeyAttrs = attrs_of(r)?;
    let Some(key_id) = find_key(c, aws, &r.address).await? else {
        return Err(AwsError::Other(format!("{}: the key is gone; run plan again to re-create it", r.address)));
    };
    let changed = |f: &str| change.changed(f);
    if changed("description") {
        c.update_key_description()
            .key_id(&key_id)
            .description(&a.description)
            .send()
            .await
            .map_err(|e| AwsError::api(SERVICE, "UpdateKeyDescription", e))?;
    }
    if change.fields.iter().any(|f| f.field.starts_with(STATEMENT_PREFIX)) {
        let policy = policy_text(aws, &a).await?;
        c.put_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map_err(|e| AwsError::api(SERVICE, "PutKeyPolicy", e))?;
    }
    if changed("enabled") {
        if a.enabled {
            c.enable_key().key_id(&key_id).send().await.map_err(|e| AwsError::api(SERVICE, "EnableKey", e))?;
        } else {
            c.disable_key().key_id(&key_id).send().await.map_err(|e| AwsError::api(SERVICE, "DisableKey", e))?;
        }
    }
    Ok(())
}

async fn delete_key(aws: &Aws, c: &Client, r: &Resource) -> Result<(), AwsError> {
    let Some(key_id) = find_key(c, aws, &r.address).await? else {
        return Ok(()); // already gone (or already pending deletion)
    };
    match c.schedule_key_deletion().key_id(&key_id).pending_window_in_days(DELETION_WINDOW_DAYS).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception() || s.is_kms_invalid_state_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::api(SERVICE, "ScheduleKeyDeletion", e)),
    }
}

async fn put_alias(aws: &Aws, c: &Client, r: &Resource) -> Result<(), AwsError> {
    let a: KmsAliasAttrs = attrs_of(r)?;
    let target = Address::new(a.target_key.clone());
    let Some(key_id) = find_key(c, aws, &target).await? else {
        return Err(AwsError::Other(format!("{}: its key {target} does not exist", r.address)));
    };
    match c.create_alias().alias_name(&r.name).target_key_id(&key_id).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) => {
            // Ours already (a retry): point it at the right key. An alias of anyone else's key
            // is left alone (observe reports it, so the plan conflicts; this is the race).
            let current = list_aliases(c).await?.into_iter().find(|(n, _)| *n == r.name).and_then(|(_, t)| t);
            let owner = match &current {
                Some(id) => key_owner(c, id, &aws.environment).await?.map(|k| k.owner),
                None => None,
            };
            if !matches!(owner, Some(Owner::Ours(_))) {
                return Err(AwsError::Other(format!(
                    "{}: alias {} already exists and points at a key ctl does not manage for this environment; refusing to move it",
                    r.address, r.name
                )));
            }
            c.update_alias()
                .alias_name(&r.name)
                .target_key_id(&key_id)
                .send()
                .await
                .map(drop)
                .map_err(|e| AwsError::api(SERVICE, "UpdateAlias", e))
        }
        Err(e) => Err(AwsError::api(SERVICE, "CreateAlias", e)),
    }
}

async fn delete_alias(c: &Client, r: &Resource) -> Result<(), AwsError> {
    match c.delete_alias().alias_name(&r.name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
        Err(e) => Err(AwsError::api(SERVICE, "DeleteAlias", e)),
    }
}

/// Whether a key can still wrap and unwrap OpenBao's root key, for `ctl dr rebuild`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUsability {
    Enabled { arn: String },
    /// Exists but cannot be used; the reason says what to do.
    Unusable(String),
    Missing(String),
}

/// DescribeKey `key_id` and judge whether it is usable.
pub async fn key_usability(aws: &Aws, key_id: &str) -> Result<KeyUsability, AwsError> {
    let client = client(aws);
    let described = match client.describe_key().key_id(key_id).send().await {
        Ok(d) => d,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {
            return Ok(KeyUsability::Missing(format!(
                "KMS key {key_id} does not exist in this account/region; restore access to it (it may live in another account) before rebuilding"
            )))
        }
        Err(e) => return Err(AwsError::api("kms", "DescribeKey", e)),
    };
    let Some(meta) = described.key_metadata() else {
        return Ok(KeyUsability::Missing(format!("KMS key {key_id}: DescribeKey returned no metadata")));
    };
    Ok(match meta.key_state() {
        Some(KeyState::Enabled) => KeyUsability::Enabled { arn: meta.arn().unwrap_or(key_id).to_string() },
        Some(KeyState::PendingDeletion) => KeyUsability::Unusable(format!(
            "KMS key {key_id} is pending deletion{}; run `aws kms cancel-key-deletion --key-id {key_id}` and `aws kms enable-key --key-id {key_id}`",
            meta.deletion_date().map(|d| format!(" (scheduled for {d})")).unwrap_or_default()
        )),
        Some(KeyState::Disabled) => {
            KeyUsability::Unusable(format!("KMS key {key_id} is disabled; run `aws kms enable-key --key-id {key_id}`"))
        }
        other => KeyUsability::Unusable(format!(
            "KMS key {key_id} is in state {}; it must be Enabled",
            other.map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".into())
        )),
    })
}
