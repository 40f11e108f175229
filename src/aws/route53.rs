//! Route 53 health checks for `route53_health` alarms: HTTPS on port 443 to `<fqdn><path>`,
//! tagged with ctl's ownership tags (ChangeTagsForResource) and a `Name` tag (the console's label).

use super::tags;
use super::{Aws, AwsError};
use crate::alarms::resources::*;
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Observed, Resource, Scope};
use crate::model::{from_attrs, to_attrs};
use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType, Tag, TagResourceType};
use std::collections::BTreeMap;

pub fn client(aws: &Aws) -> aws_sdk_route53::Client {
    super::client::route53(aws)
}

fn api<E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata>(op: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::api("route53", op, e)
}

/// A health check ctl owns in this environment.
#[derive(Clone, Debug)]
pub struct Owned {
    pub id: String,
    pub address: Address,
    pub name: String,
    pub attrs: HealthCheckAttrs,
}

/// Every health check of this environment (by tags).
pub async fn owned(aws: &Aws) -> Result<Vec<Owned>, AwsError> {
    let c = client(aws);
    let checks: Vec<_> = c.list_health_checks().into_paginator().items().send().try_collect().await.map_err(api("ListHealthChecks"))?;
    let mut tags: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for chunk in checks.chunks(10) {
        let out = c
            .list_tags_for_resources()
            .resource_type(TagResourceType::Healthcheck)
            .set_resource_ids(Some(chunk.iter().map(|h| h.id().to_string()).collect()))
            .send()
            .await
            .map_err(api("ListTagsForResources"))?;
        for set in out.resource_tag_sets() {
            let pairs = set
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            tags.insert(set.resource_id().unwrap_or_default().to_string(), pairs);
        }
    }
    let mut out = Vec::new();
    for h in checks {
        let pairs = tags.get(h.id()).cloned().unwrap_or_default();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let Some(address) = tags::ours(&refs, &aws.environment) else { continue };
        let Some(cfg) = h.health_check_config() else { continue };
        let name = refs
            .iter()
            .find(|(k, _)| *k == "Name")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        out.push(Owned {
            id: h.id().to_string(),
            address,
            name,
            attrs: normalize(cfg),
        });
    }
    Ok(out)
}

/// A health check's configuration as attributes (Route 53's defaults where it omits them).
pub fn normalize(cfg: &HealthCheckConfig) -> HealthCheckAttrs {
    HealthCheckAttrs {
        check_type: cfg.r#type().as_str().to_string(),
        fqdn: cfg.fully_qualified_domain_name().unwrap_or_default().to_string(),
        port: cfg.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        resource_path: cfg.resource_path().unwrap_or_default().to_string(),
        request_interval: cfg.request_interval().and_then(|p| u32::try_from(p).ok()).unwrap_or(30),
        failure_threshold: cfg.failure_threshold().and_then(|p| u32::try_from(p).ok()).unwrap_or(3),
    }
}

/// Observe; returns health check id → address (for alarms' `HealthCheckId` dimensions).
pub async fn observe(aws: &Aws, observed: &mut Observed) -> Result<BTreeMap<String, String>, AwsError> {
    let mut ids = BTreeMap::new();
    for o in owned(aws).await? {
        ids.insert(o.id.clone(), o.address.to_string());
        observed.resources.push(Resource {
            address: o.address,
            kind: Kind::Route53HealthCheck,
            scope: Scope::Root,
            name: o.name,
            attrs: to_attrs(&o.attrs),
            depends_on: vec![],
            container: None,
        });
    }
    Ok(ids)
}

/// The id of the health check at `address`, if it exists.
pub async fn id_of(aws: &Aws, address: &str) -> Result<Option<String>, AwsError> {
    Ok(owned(aws)
        .await?
        .into_iter()
        .find(|o| o.address.as_str() == address)
        .map(|o| o.id))
}

fn attrs(r: &Resource) -> Result<HealthCheckAttrs, AwsError> {
    from_attrs(&r.attrs).map_err(|e| AwsError::Other(format!("{}: {e}", r.address)))
}

pub struct HealthCheck;

#[async_trait::async_trait]
impl KindHandler<Aws> for HealthCheck {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        match id_of(aws, r.address.as_str()).await? {
            Some(_) => Ok(()), // already exists (a re-run after a partial apply)
            None => create(aws, r, &attrs(r)?).await,
        }
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        let (r, a) = (u.after, attrs(u.after)?);
        let Some(id) = id_of(aws, r.address.as_str()).await? else { return create(aws, r, &a).await };
        client(aws)
            .update_health_check()
            .health_check_id(id)
            .fully_qualified_domain_name(&a.fqdn)
            .port(i32::from(a.port))
            .resource_path(&a.resource_path)
            .failure_threshold(a.failure_threshold as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(api("UpdateHealthCheck"))
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let Some(id) = id_of(aws, r.address.as_str()).await? else { return Ok(()) };
        match client(aws).delete_health_check().health_check_id(&id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_health_check()) => Ok(()),
            Err(e) => Err(api("DeleteHealthCheck")(e)),
        }
    }
}

async fn create(aws: &Aws, r: &Resource, a: &HealthCheckAttrs) -> Result<(), AwsError> {
    let name = r.name.as_str();
    let c = client(aws);
    let cfg = HealthCheckConfig::builder()
        .r#type(HealthCheckType::from(a.check_type.as_str()))
        .fully_qualified_domain_name(&a.fqdn)
        .port(i32::from(a.port))
        .resource_path(&a.resource_path)
        .request_interval(a.request_interval as i32)
        .failure_threshold(a.failure_threshold as i32)
        .build()
        .map_err(|e| AwsError::Other(format!("{}: {e}", r.address)))?;
    let reference = format!("{name}-{}", crate::alarms::mute::now_nanos());
    let out = c
        .create_health_check()
        .caller_reference(reference)
        .health_check_config(cfg)
        .send()
        .await
        .map_err(api("CreateHealthCheck"))?;
    let id = out.health_check().map(|h| h.id().to_string()).unwrap_or_default();
    let mut req = c
        .change_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(&id);
    req = req.add_tags(Tag::builder().key("Name").value(name).build());
    for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
        req = req.add_tags(Tag::builder().key(k).value(v).build());
    }
    req.send().await.map(|_| ()).map_err(api("ChangeTagsForResource"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_interval_and_threshold_are_route53_defaults() {
        let cfg = HealthCheckConfig::builder()
            .r#type(HealthCheckType::Https)
            .fully_qualified_domain_name("api.example.com")
            .port(443)
            .resource_path("/health")
            .build()
            .unwrap();
        let a = normalize(&cfg);
        assert_eq!((a.check_type.as_str(), a.fqdn.as_str(), a.port, a.resource_path.as_str()), ("HTTPS", "api.example.com", 443, "/health"));
        assert_eq!((a.request_interval, a.failure_threshold), (30, 3));
    }
}
