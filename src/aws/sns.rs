//! SNS: the alarms' topic (tagged with ctl's ownership tags) and its https webhook subscription.
//!
//! Subscriptions carry no tags: the https subscription on this environment's (owned) topic is
//! ctl's. Its endpoint is observed as `alarms::webhook::stand_in` (host + digest), the same
//! value desired state carries, so the URL, a bearer secret, never reaches a plan. A subscription still `PendingConfirmation` (real SNS, until the endpoint confirms;
//! moto confirms at once) has no ARN: it counts as present, and deleting it is a no-op that
//! SNS cleans up itself after 3 days. While it is pending the endpoint receives no alarms:
//! [`webhook_state`] tells (`ctl alarms status`), and `plan`'s observation warns.
//!
//! moto cannot produce the pending state (5.2: Subscribe always stores a confirmed
//! subscription with an ARN and `PendingConfirmation: false`, SetSubscriptionAttributes refuses
//! that attribute, ConfirmSubscription is a stub), so its parsing is unit-tested on the SDK's
//! types and the integration tests see only the confirmed state.

use super::tags;
use super::{Aws, AwsError};
use crate::alarms::resources::*;
use crate::alarms::webhook::stand_in;
use crate::secret::Sensitive;
use crate::providers::{KindHandler, Update};
use crate::model::{Kind, Observed, Resource, Scope, Unmanaged, UnmanagedReason};
use crate::model::{from_attrs, to_attrs};
use aws_sdk_sns::types::{Subscription, Tag};
use std::collections::{BTreeMap, HashMap};

/// What ListSubscriptionsByTopic says instead of an ARN until the endpoint confirms.
pub const PENDING_CONFIRMATION: &str = "PendingConfirmation";

/// The webhook subscription of the alarms' topic, as `ctl alarms status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookState {
    /// The topic does not exist (not applied yet).
    NoTopic,
    /// The topic has no https subscription.
    NotSubscribed,
    /// Subscribed, but the endpoint has not confirmed: SNS delivers nothing to it yet.
    /// Only the endpoint's origin is kept: webhook paths carry a token.
    PendingConfirmation {
        origin: String,
    },
    Confirmed {
        origin: String,
    },
}

impl WebhookState {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            WebhookState::NoTopic => "(topic not created)".into(),
            WebhookState::NotSubscribed => "(not subscribed)".into(),
            WebhookState::PendingConfirmation { origin } => format!(
                "{origin}: PendingConfirmation: receives no alarms until the endpoint confirms (by visiting the SubscribeURL of the SubscriptionConfirmation message SNS posted to it)"
            ),
            WebhookState::Confirmed { origin } => format!("{origin}: confirmed"),
        }
    }
}

/// `scheme://host[:port]` of a URL.
pub fn origin(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(u) if u.has_host() => u.origin().ascii_serialization(),
        _ => "(unparsable endpoint)".into(),
    }
}

/// The https subscription that is the webhook: the one to `endpoint` if there is one, else the
/// first https one (the endpoint was changed out of band).
pub fn webhook_subscription<'a>(subs: &'a [Subscription], endpoint: &str) -> Option<&'a Subscription> {
    let https = || subs.iter().filter(|s| s.protocol() == Some("https"));
    https()
        .find(|s| s.endpoint() == Some(endpoint))
        .or_else(|| https().next())
}

/// Whether a listed subscription is still waiting for its endpoint: no ARN yet.
pub fn listed_as_pending(s: &Subscription) -> bool {
    s.subscription_arn() == Some(PENDING_CONFIRMATION)
}

/// GetSubscriptionAttributes' `PendingConfirmation` (for a subscription created with
/// ReturnSubscriptionArn, whose ARN is known before confirmation).
pub fn attributes_say_pending(attributes: &HashMap<String, String>) -> bool {
    attributes
        .get("PendingConfirmation")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn subscriptions_by_topic(c: &aws_sdk_sns::Client, topic_arn: &str) -> Result<Vec<Subscription>, AwsError> {
    c.list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(api("ListSubscriptionsByTopic"))
}

/// Whether a subscription is pending: listed without an ARN, or its attributes say so.
async fn is_pending(c: &aws_sdk_sns::Client, s: &Subscription) -> Result<bool, AwsError> {
    if listed_as_pending(s) {
        return Ok(true);
    }
    let Some(arn) = s.subscription_arn().filter(|a| a.starts_with("arn:")) else {
        return Ok(false);
    };
    let out = c
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(api("GetSubscriptionAttributes"))?;
    Ok(out.attributes().is_some_and(attributes_say_pending))
}

/// The webhook subscription of topic `topic` (by name) to `endpoint`.
pub async fn webhook_state(aws: &Aws, topic: &str, endpoint: &Sensitive<String>) -> Result<WebhookState, AwsError> {
    let c = client(aws);
    let Some(arn) = topics(aws).await?.get(topic).cloned() else {
        return Ok(WebhookState::NoTopic);
    };
    let subs = subscriptions_by_topic(&c, &arn).await?;
    let Some(s) = webhook_subscription(&subs, endpoint.expose()) else {
        return Ok(WebhookState::NotSubscribed);
    };
    let origin = origin(s.endpoint().unwrap_or_default());
    Ok(if is_pending(&c, s).await? {
        WebhookState::PendingConfirmation { origin }
    } else {
        WebhookState::Confirmed { origin }
    })
}

pub fn client(aws: &Aws) -> aws_sdk_sns::Client {
    super::client::sns(aws)
}

fn api<E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata>(op: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::api("sns", op, e)
}

/// Every topic ARN by name.
pub async fn topics(aws: &Aws) -> Result<BTreeMap<String, String>, AwsError> {
    let topics = client(aws).list_topics().into_paginator().items().send().try_collect().await.map_err(api("ListTopics"))?;
    Ok(topics
        .iter()
        .filter_map(|t| t.topic_arn())
        .map(|arn| (arn.rsplit(':').next().unwrap_or(arn).to_string(), arn.to_string()))
        .collect())
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
        match tags::ours(&pairs, &aws.environment) {
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
            None => observed.unmanaged.push(Unmanaged::root(Kind::SnsTopic, name, UnmanagedReason::no_marker("no ctl ownership tags"))),
        }
    }
    for (name, arn) in &owned {
        let subs = subscriptions_by_topic(&c, arn).await?;
        if let Some(s) = subs.iter().find(|s| s.protocol() == Some("https")) {
            if listed_as_pending(s) {
                tracing::warn!(
                    "{}: the webhook {} is PendingConfirmation: it receives no alarms until it confirms",
                    subscription_address(),
                    origin(s.endpoint().unwrap_or_default())
                );
            }
            let attrs = SnsSubscriptionAttrs {
                topic: name.clone(),
                protocol: "https".into(),
                endpoint: stand_in(&aws.environment, s.endpoint().unwrap_or_default()),
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
        .any(|(k, v)| *k == tags::MANAGED_BY_KEY && *v == tags::MANAGED_BY_VALUE)
        && !pairs
            .iter()
            .any(|(k, v)| *k == tags::ENVIRONMENT_KEY && *v == aws.environment)
}

fn malformed(r: &Resource) -> impl Fn(serde_json::Error) -> AwsError + '_ {
    move |e| AwsError::Other(format!("{}: {e}", r.address))
}

fn tag(k: String, v: String) -> Result<Tag, AwsError> {
    Tag::builder().key(k).value(v).build().map_err(|e| AwsError::Other(e.to_string()))
}

pub struct SnsTopic;

/// Creates and updates are one CreateTopic (idempotent for the same name and tags), guarded
/// against a foreign topic of that name.
#[async_trait::async_trait]
impl KindHandler<Aws> for SnsTopic {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        put_topic(aws, r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        put_topic(aws, u.after).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let a: SnsTopicAttrs = from_attrs(&r.attrs).map_err(malformed(r))?;
        match topics(aws).await?.get(&a.name) {
            Some(arn) => client(aws).delete_topic().topic_arn(arn).send().await.map(|_| ()).map_err(api("DeleteTopic")),
            None => Ok(()),
        }
    }
}

async fn put_topic(aws: &Aws, r: &Resource) -> Result<(), AwsError> {
    let c = client(aws);
    let a: SnsTopicAttrs = from_attrs(&r.attrs).map_err(malformed(r))?;
    // CreateTopic returns an existing topic of that name, which TagResource would then
    // stamp: refuse one that is not already ours.
    if let Some(arn) = topics(aws).await?.get(&a.name) {
        let tags = c.list_tags_for_resource().resource_arn(arn).send().await.map_err(api("ListTagsForResource"))?;
        let pairs: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        if tags::ours(&pairs, &aws.environment).as_ref() != Some(&r.address) {
            return Err(AwsError::Other(format!(
                "{}: an SNS topic named {:?} exists and is not tagged as ctl's for this address; nothing was written",
                r.address, a.name
            )));
        }
    }
    let mut req = c.create_topic().name(&a.name);
    for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
        req = req.tags(tag(k, v)?);
    }
    let out = req.send().await.map_err(api("CreateTopic"))?;
    if let Some(arn) = out.topic_arn() {
        let mut tagging = c.tag_resource().resource_arn(arn);
        for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
            tagging = tagging.tags(tag(k, v)?);
        }
        tagging.send().await.map_err(api("TagResource"))?;
    }
    Ok(())
}

pub struct SnsSubscription;

#[async_trait::async_trait]
impl KindHandler<Aws> for SnsSubscription {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        subscribe(aws, r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        subscribe(aws, u.after).await
    }
    /// Unsubscribe the topic's https subscriptions whose endpoint has this stand-in.
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let c = client(aws);
        let a: SnsSubscriptionAttrs = from_attrs(&r.attrs).map_err(malformed(r))?;
        let Some(arn) = topics(aws).await?.get(&a.topic).cloned() else { return Ok(()) };
        let subs = c.list_subscriptions_by_topic().topic_arn(&arn).send().await.map_err(api("ListSubscriptionsByTopic"))?;
        for s in subs.subscriptions() {
            let sub_arn = s.subscription_arn().unwrap_or_default();
            if s.protocol() == Some("https")
                && stand_in(&aws.environment, s.endpoint().unwrap_or_default()) == a.endpoint
                && sub_arn.starts_with("arn:")
            {
                c.unsubscribe().subscription_arn(sub_arn).send().await.map_err(api("Unsubscribe"))?;
            }
        }
        Ok(())
    }
}

async fn subscribe(aws: &Aws, r: &Resource) -> Result<(), AwsError> {
    let a: SnsSubscriptionAttrs = from_attrs(&r.attrs).map_err(malformed(r))?;
    let Some(arn) = topics(aws).await?.get(&a.topic).cloned() else {
        return Err(AwsError::Other(format!("{}: topic {} does not exist", r.address, a.topic)));
    };
    // The one place the URL leaves ctl. It must be the URL the plan was made with: a
    // saved plan applied after the variable or KV secret changed is refused.
    let url = aws.webhook.as_ref().ok_or_else(|| {
        AwsError::Other(format!("{}: the webhook URL was not read (no alarms.sns.webhook source resolved)", r.address))
    })?;
    let now = stand_in(&aws.environment, url.expose());
    if now != a.endpoint {
        return Err(AwsError::Other(format!(
            "{}: the webhook URL is {now} now, the plan has {}; run `ctl plan` again",
            r.address, a.endpoint
        )));
    }
    // Subscribe is idempotent for the same topic, protocol and endpoint. Its error text
    // is scrubbed of the URL in case the service quotes the parameter.
    client(aws)
        .subscribe()
        .topic_arn(&arn)
        .protocol(&a.protocol)
        .endpoint(url.expose())
        .return_subscription_arn(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| match AwsError::api("sns", "Subscribe", e) {
            AwsError::Api { service, operation, message } => {
                AwsError::Api { service, operation, message: message.replace(url.expose().as_str(), &now) }
            }
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(protocol: &str, endpoint: &str, arn: &str) -> Subscription {
        Subscription::builder()
            .protocol(protocol)
            .endpoint(endpoint)
            .subscription_arn(arn)
            .topic_arn("arn:aws:sns:us-east-1:123456789012:oncall")
            .build()
    }

    const HOOK: &str = "https://hooks.example.com/T000/secret-token";

    #[test]
    fn pending_is_the_placeholder_arn() {
        let pending = sub("https", HOOK, "PendingConfirmation");
        let confirmed = sub(
            "https",
            HOOK,
            "arn:aws:sns:us-east-1:123456789012:oncall:6b0e71bd-7e97-4d97-80ce-4a0994e55286",
        );
        assert!(listed_as_pending(&pending));
        assert!(!listed_as_pending(&confirmed));
        assert!(!listed_as_pending(&Subscription::builder().build()));
    }

    #[test]
    fn pending_from_attributes() {
        let attrs = |v: &str| HashMap::from([("PendingConfirmation".to_string(), v.to_string())]);
        assert!(attributes_say_pending(&attrs("true")));
        assert!(!attributes_say_pending(&attrs("false")));
        assert!(!attributes_say_pending(&HashMap::new()));
    }

    #[test]
    fn the_webhook_is_the_https_subscription_to_the_endpoint() {
        let subs = [
            sub("email", "oncall@example.com", "PendingConfirmation"),
            sub("https", "https://old.example.com/x", "arn:aws:sns:us-east-1:1:t:a"),
            sub("https", HOOK, "PendingConfirmation"),
        ];
        let s = webhook_subscription(&subs, HOOK).unwrap();
        assert_eq!(s.endpoint(), Some(HOOK));
        assert!(listed_as_pending(s));
        // Endpoint changed out of band: the https one is still the webhook.
        let s = webhook_subscription(&subs, "https://new.example.com/").unwrap();
        assert_eq!(s.endpoint(), Some("https://old.example.com/x"));
        assert!(webhook_subscription(&subs[..1], HOOK).is_none());
    }

    #[test]
    fn describe_shows_the_origin_only() {
        let pending = WebhookState::PendingConfirmation { origin: origin(HOOK) }.describe();
        assert!(
            pending.starts_with("https://hooks.example.com: PendingConfirmation: receives no alarms"),
            "{pending}"
        );
        let confirmed = WebhookState::Confirmed {
            origin: origin("https://127.0.0.1:9443/hook?token=x"),
        }
        .describe();
        assert_eq!(confirmed, "https://127.0.0.1:9443: confirmed");
        for s in [&pending, &confirmed] {
            assert!(!s.contains("secret-token") && !s.contains("token=x"), "{s}");
        }
        assert_eq!(WebhookState::NotSubscribed.describe(), "(not subscribed)");
        assert_eq!(WebhookState::NoTopic.describe(), "(topic not created)");
    }
}
