//! SNS: the alarms' topic (tagged with ctl's ownership tags) and its https webhook subscription.
//!
//! Subscriptions carry no tags: the https subscription on this environment's (owned) topic is
//! ctl's. A subscription still `PendingConfirmation` (real SNS, until the endpoint confirms;
//! moto confirms at once) has no ARN: it counts as present, and deleting it is a no-op that
//! SNS cleans up itself after 3 days.

use super::cloudwatch::{owner, ownership_tags};
use super::{Aws, AwsError};
use crate::alarms::resources::*;
use crate::diff::{Action, Change};
use crate::model::{Kind, Observed, Resource, Scope, Unmanaged};
use crate::model::{from_attrs, to_attrs};
use aws_sdk_sns::types::Tag;
use std::collections::BTreeMap;

pub fn client(aws: &Aws) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&aws.sdk)
}

fn api<E: std::error::Error>(op: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::api("sns", op, e)
}

/// Every topic ARN by name.
pub async fn topics(aws: &Aws) -> Result<BTreeMap<String, String>, AwsError> {
    let c = client(aws);
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = c
            .list_topics()
            .set_next_token(token)
            .send()
            .await
            .map_err(api("ListTopics"))?;
        for t in page.topics() {
            if let Some(arn) = t.topic_arn() {
                out.insert(arn.rsplit(':').next().unwrap_or(arn).to_string(), arn.to_string());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Observe the topic and subscription; returns the owned topics' name → ARN.
pub async fn observe(aws: &Aws, observed: &mut Observed) -> Result<BTreeMap<String, String>, AwsError> {
    let c = client(aws);
    let mut owned = BTreeMap::new();
    for (name, arn) in topics(aws).await? {
        let tags = c
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(api("ListTagsForResource"))?;
        let pairs: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        match owner(aws, &pairs) {
            Some(address) if address == topic_address() => {
                observed.resources.push(Resource {
                    address,
                    kind: Kind::SnsTopic,
                    scope: Scope::Root,
                    name: name.clone(),
                    attrs: to_attrs(&SnsTopicAttrs { name: name.clone() }),
                    depends_on: vec![],
                    container: None,
                });
                owned.insert(name, arn);
            }
            Some(_) => {}
            None if is_foreign(&pairs, aws) => {}
            None => observed.unmanaged.push(Unmanaged {
                kind: Kind::SnsTopic,
                path: name,
                reason: "no ctl ownership tags".into(),
            }),
        }
    }
    for (name, arn) in &owned {
        let subs = c
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .send()
            .await
            .map_err(api("ListSubscriptionsByTopic"))?;
        if let Some(s) = subs.subscriptions().iter().find(|s| s.protocol() == Some("https")) {
            let attrs = SnsSubscriptionAttrs {
                topic: name.clone(),
                protocol: "https".into(),
                endpoint: s.endpoint().unwrap_or_default().to_string(),
            };
            observed.resources.push(Resource {
                address: subscription_address(),
                kind: Kind::SnsSubscription,
                scope: Scope::Root,
                name: "webhook".into(),
                attrs: to_attrs(&attrs),
                depends_on: vec![topic_address()],
                container: None,
            });
        }
    }
    Ok(owned)
}

/// Owned by ctl, but for another environment: not ours, and not "unmanaged" either.
fn is_foreign(pairs: &[(&str, &str)], aws: &Aws) -> bool {
    pairs
        .iter()
        .any(|(k, v)| *k == super::cloudwatch::MANAGED_BY && *v == "ctl")
        && !pairs
            .iter()
            .any(|(k, v)| *k == super::cloudwatch::ENVIRONMENT && *v == aws.environment)
}

pub async fn apply(aws: &Aws, change: &Change) -> Result<(), AwsError> {
    let c = client(aws);
    let r = change.resource();
    let bad = |e: serde_json::Error| AwsError::Other(format!("{}: {e}", change.address));
    match (change.kind, change.action) {
        (Kind::SnsTopic, Action::Create | Action::Update | Action::Replace) => {
            let a: SnsTopicAttrs = from_attrs(&r.attrs).map_err(bad)?;
            let mut req = c.create_topic().name(&a.name);
            for (k, v) in ownership_tags(aws, &change.address) {
                req = req.tags(
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| AwsError::Other(e.to_string()))?,
                );
            }
            // CreateTopic is idempotent for the same name and tags.
            let out = req.send().await.map_err(api("CreateTopic"))?;
            if let Some(arn) = out.topic_arn() {
                let mut tag = c.tag_resource().resource_arn(arn);
                for (k, v) in ownership_tags(aws, &change.address) {
                    tag = tag.tags(
                        Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                            .map_err(|e| AwsError::Other(e.to_string()))?,
                    );
                }
                tag.send().await.map_err(api("TagResource"))?;
            }
            Ok(())
        }
        (Kind::SnsTopic, Action::Delete) => {
            let a: SnsTopicAttrs = from_attrs(&r.attrs).map_err(bad)?;
            match topics(aws).await?.get(&a.name) {
                Some(arn) => c
                    .delete_topic()
                    .topic_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(api("DeleteTopic")),
                None => Ok(()),
            }
        }
        (Kind::SnsSubscription, action) => {
            let a: SnsSubscriptionAttrs = from_attrs(&r.attrs).map_err(bad)?;
            let Some(arn) = topics(aws).await?.get(&a.topic).cloned() else {
                return if action == Action::Delete {
                    Ok(())
                } else {
                    Err(AwsError::Other(format!(
                        "{}: topic {} does not exist",
                        change.address, a.topic
                    )))
                };
            };
            if matches!(action, Action::Delete | Action::Replace) {
                let before: SnsSubscriptionAttrs =
                    from_attrs(&change.before.as_ref().unwrap_or(r).attrs).map_err(bad)?;
                let subs = c
                    .list_subscriptions_by_topic()
                    .topic_arn(&arn)
                    .send()
                    .await
                    .map_err(api("ListSubscriptionsByTopic"))?;
                for s in subs.subscriptions() {
                    let sub_arn = s.subscription_arn().unwrap_or_default();
                    if s.protocol() == Some("https")
                        && s.endpoint() == Some(before.endpoint.as_str())
                        && sub_arn.starts_with("arn:")
                    {
                        c.unsubscribe()
                            .subscription_arn(sub_arn)
                            .send()
                            .await
                            .map_err(api("Unsubscribe"))?;
                    }
                }
                if action == Action::Delete {
                    return Ok(());
                }
            }
            // Subscribe is idempotent for the same topic, protocol and endpoint.
            c.subscribe()
                .topic_arn(&arn)
                .protocol(&a.protocol)
                .endpoint(&a.endpoint)
                .return_subscription_arn(true)
                .send()
                .await
                .map(|_| ())
                .map_err(api("Subscribe"))
        }
        (kind, _) => Err(AwsError::Other(format!(
            "{}: {kind:?} is not an SNS kind",
            change.address
        ))),
    }
}
