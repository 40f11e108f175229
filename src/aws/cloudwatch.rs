//! CloudWatch metric alarms: observe (by name prefix `ctl-<env>-` and ownership tags), apply
//! (PutMetricAlarm / DeleteAlarms, idempotent), and what `ctl alarms` needs: status, metric
//! data for backtests, and mute/unmute (actions + mute tags, see [`crate::alarms::mute`]).
//!
//! Live values are normalised to the desired form: alarm actions become topic names and a
//! `HealthCheckId` dimension becomes `@<health check address>`. An alarm whose actions are
//! disabled by a mute still in force reads as `actions_enabled: true` (the mute is sanctioned);
//! once the mute has expired it reads `false` and the plan restores it.

use super::tags;
use super::{Aws, AwsError};
use crate::alarms::backtest::Series;
use crate::alarms::mute::{self, Mute, MUTED_UNTIL_TAG, MUTE_REASON_TAG};
use crate::alarms::resources::*;
use crate::providers::{KindHandler, Update};
use crate::model::{Address, Kind, Observed, Resource, Scope, Unmanaged, UnmanagedReason};
use crate::model::{from_attrs, to_attrs};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm as SdkAlarm, MetricDataQuery, MetricDatum, MetricStat, Statistic, Tag,
};
use aws_smithy_types::DateTime;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::BTreeMap;

pub fn client(aws: &Aws) -> aws_sdk_cloudwatch::Client {
    super::client::cloudwatch(aws)
}

fn api<E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata>(op: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::api("cloudwatch", op, e)
}

/// One live alarm with its tags.
#[derive(Clone, Debug)]
pub struct LiveAlarm {
    pub alarm: SdkAlarm,
    pub tags: Vec<(String, String)>,
}

impl LiveAlarm {
    pub fn mute(&self) -> Option<Mute> {
        Mute::from_tags(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Every alarm whose name starts with `prefix`, with its tags.
pub async fn alarms_with_prefix(aws: &Aws, prefix: &str) -> Result<Vec<LiveAlarm>, AwsError> {
    let c = client(aws);
    let pages = c
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(api("DescribeAlarms"))?;
    let alarms: Vec<_> = pages.iter().flat_map(|p| p.metric_alarms().iter().cloned()).collect();
    stream::iter(alarms)
        .map(|alarm| {
            let c = c.clone();
            async move {
                let arn = alarm.alarm_arn().unwrap_or_default().to_string();
                let out = c
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(api("ListTagsForResource"))?;
                let tags = out
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                Ok::<_, AwsError>(LiveAlarm { alarm, tags })
            }
        })
        .buffered(8)
        .try_collect()
        .await
}

/// Read the SNS topic, subscription, health checks and alarms of this environment.
pub async fn observe_alarms(aws: &Aws, observed: &mut Observed) -> Result<(), AwsError> {
    let topics = super::sns::observe(aws, observed).await?;
    let health_checks = super::route53::observe(aws, observed).await?;
    let topic_by_arn: BTreeMap<&str, &str> = topics.iter().map(|(n, a)| (a.as_str(), n.as_str())).collect();
    let now = mute::now();
    for live in alarms_with_prefix(aws, &alarm_prefix(&aws.environment)).await? {
        let refs: Vec<(&str, &str)> = live.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let name = live.alarm.alarm_name().unwrap_or_default().to_string();
        let Some(address) = tags::ours(&refs, &aws.environment) else {
            if refs.iter().any(|(k, v)| *k == tags::MANAGED_BY_KEY && *v == tags::MANAGED_BY_VALUE) {
                continue; // another environment's (its name shares our prefix)
            }
            observed.unmanaged.push(Unmanaged::root(Kind::MetricAlarm, name, UnmanagedReason::no_marker("no ctl ownership tags for this environment")));
            continue;
        };
        let attrs = normalise(&live, &topic_by_arn, &health_checks, now);
        let mut depends_on = vec![topic_address()];
        depends_on.extend(
            attrs
                .dimensions
                .values()
                .filter_map(|v| v.strip_prefix(REF_PREFIX))
                .map(Address::new),
        );
        observed.resources.push(Resource {
            address,
            kind: Kind::MetricAlarm,
            scope: Scope::Root,
            name,
            attrs: to_attrs(&attrs),
            depends_on,
            container: None,
        });
    }
    Ok(())
}

/// In observed alarms, ctl's own instances by address (`@instance.api.0`), as declared
/// (`ids`: instance id → address, from the network observe, which runs after the alarms').
pub fn show_instances(resources: &mut [Resource], ids: &BTreeMap<String, Address>) {
    for r in resources.iter_mut().filter(|r| r.kind == Kind::MetricAlarm) {
        let Some(dims) = r.attrs.get_mut("dimensions").and_then(serde_json::Value::as_object_mut) else { continue };
        let mut refs = Vec::new();
        for value in dims.values_mut() {
            let address = value.as_str().and_then(|id| ids.get(id)).filter(|a| a.as_str().starts_with("instance."));
            if let Some(address) = address {
                *value = serde_json::Value::from(format!("{REF_PREFIX}{address}"));
                refs.push(address.clone());
            }
        }
        r.depends_on.extend(refs);
        r.depends_on.sort();
        r.depends_on.dedup();
    }
}

fn normalise(
    live: &LiveAlarm,
    topic_by_arn: &BTreeMap<&str, &str>,
    health_checks: &BTreeMap<String, String>,
    now: i64,
) -> MetricAlarmAttrs {
    let a = &live.alarm;
    let action_names = |arns: &[String]| -> Vec<String> {
        let mut v: Vec<String> = arns
            .iter()
            .map(|arn| topic_by_arn.get(arn.as_str()).map_or(arn.clone(), |n| n.to_string()))
            .collect();
        v.sort();
        v
    };
    let dimensions = a
        .dimensions()
        .iter()
        .map(|d| {
            let (name, value) = (d.name().unwrap_or_default(), d.value().unwrap_or_default());
            let value = match health_checks.get(value) {
                Some(address) if name == HEALTH_CHECK_DIMENSION => format!("{REF_PREFIX}{address}"),
                _ => value.to_string(),
            };
            (name.to_string(), value)
        })
        .collect();
    let enabled = a.actions_enabled().unwrap_or(true);
    let muted = live.mute().is_some_and(|m| m.active(now));
    MetricAlarmAttrs {
        alarm_name: a.alarm_name().unwrap_or_default().to_string(),
        namespace: a.namespace().unwrap_or_default().to_string(),
        metric_name: a.metric_name().unwrap_or_default().to_string(),
        statistic: a.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
        dimensions,
        period: a.period().and_then(|p| u64::try_from(p).ok()).unwrap_or(0),
        evaluation_periods: a.evaluation_periods().and_then(|p| u64::try_from(p).ok()).unwrap_or(0),
        datapoints_to_alarm: a
            .datapoints_to_alarm()
            .or(a.evaluation_periods())
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(0),
        threshold: a.threshold().unwrap_or(f64::NAN),
        comparison_operator: a
            .comparison_operator()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
        actions_enabled: enabled || muted,
        alarm_actions: action_names(a.alarm_actions()),
        ok_actions: action_names(a.ok_actions()),
        description: a.alarm_description().unwrap_or_default().to_string(),
    }
}

pub struct MetricAlarm;

/// Creates and updates are one PutMetricAlarm (an upsert, guarded against foreign alarms).
#[async_trait::async_trait]
impl KindHandler<Aws> for MetricAlarm {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        put(aws, r).await
    }
    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        put(aws, u.after).await
    }
    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let a: MetricAlarmAttrs = from_attrs(&r.attrs).map_err(|e| AwsError::Other(format!("{}: {e}", r.address)))?;
        match client(aws).delete_alarms().alarm_names(&a.alarm_name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found()) => Ok(()),
            Err(e) => Err(api("DeleteAlarms")(e)),
        }
    }
}

async fn put(aws: &Aws, r: &Resource) -> Result<(), AwsError> {
    let c = client(aws);
    let a: MetricAlarmAttrs = from_attrs(&r.attrs).map_err(|e| AwsError::Other(format!("{}: {e}", r.address)))?;
    // Resolve symbolic values: topic names → ARNs, health check references → ids.
    let topics = super::sns::topics(aws).await?;
    let arn = |name: &String| {
        topics
            .get(name)
            .cloned()
            .ok_or_else(|| AwsError::Other(format!("{}: SNS topic {name} does not exist", r.address)))
    };
    let alarm_actions = a.alarm_actions.iter().map(arn).collect::<Result<Vec<_>, _>>()?;
    let ok_actions = a.ok_actions.iter().map(arn).collect::<Result<Vec<_>, _>>()?;
    let mut dims = Vec::new();
    for (name, value) in &a.dimensions {
        let value = resolve_dimension(aws, value).await?.ok_or_else(|| AwsError::Other(format!("{}: {} does not exist", r.address, referent(value))))?;
        dims.push(Dimension::builder().name(name).value(value).build());
    }
    // A mute in force keeps actions disabled through any update; an expired one is cleared.
    // PutMetricAlarm is an upsert: never let it overwrite (and tag) an alarm that is not ours.
    let live = live_ours(aws, &a.alarm_name, &r.address).await?;
    let mute = live.as_ref().and_then(LiveAlarm::mute);
    let muted = mute.as_ref().is_some_and(|m| m.active(mute::now()));
    let mut req = c
        .put_metric_alarm()
        .alarm_name(&a.alarm_name)
        .alarm_description(&a.description)
        .namespace(&a.namespace)
        .metric_name(&a.metric_name)
        .statistic(Statistic::from(a.statistic.as_str()))
        .set_dimensions(Some(dims))
        .period(a.period as i32)
        .evaluation_periods(a.evaluation_periods as i32)
        .datapoints_to_alarm(a.datapoints_to_alarm as i32)
        .threshold(a.threshold)
        .comparison_operator(ComparisonOperator::from(a.comparison_operator.as_str()))
        .treat_missing_data(&a.treat_missing_data)
        .actions_enabled(a.actions_enabled && !muted)
        .set_alarm_actions(Some(alarm_actions))
        .set_ok_actions(Some(ok_actions));
    for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
        req = req.tags(Tag::builder().key(k).value(v).build());
    }
    req.send().await.map_err(api("PutMetricAlarm"))?;
    // PutMetricAlarm only sets tags on creation: make sure they are there on updates too.
    let alarm_arn = alarm_arn(aws, &a.alarm_name).await?;
    let mut tag = c.tag_resource().resource_arn(&alarm_arn);
    for (k, v) in tags::ownership_tags(&aws.environment, &r.address) {
        tag = tag.tags(Tag::builder().key(k).value(v).build());
    }
    tag.send().await.map_err(api("TagResource"))?;
    if mute.is_some() && !muted {
        c.untag_resource()
            .resource_arn(&alarm_arn)
            .tag_keys(MUTED_UNTIL_TAG)
            .tag_keys(MUTE_REASON_TAG)
            .send()
            .await
            .map_err(api("UntagResource"))?;
    }
    Ok(())
}

async fn alarm_arn(aws: &Aws, name: &str) -> Result<String, AwsError> {
    let out = client(aws)
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(api("DescribeAlarms"))?;
    out.metric_alarms()
        .first()
        .and_then(|a| a.alarm_arn())
        .map(str::to_string)
        .ok_or_else(|| AwsError::Other(format!("alarm {name} does not exist")))
}

/// The alarm named `name` with its tags.
pub async fn alarm(aws: &Aws, name: &str) -> Result<Option<LiveAlarm>, AwsError> {
    Ok(alarms_with_prefix(aws, name)
        .await?
        .into_iter()
        .find(|l| l.alarm.alarm_name() == Some(name)))
}

/// DisableAlarmActions + the mute record in the alarm's tags.
pub async fn mute(aws: &Aws, name: &str, address: &Address, record: &Mute) -> Result<(), AwsError> {
    let c = client(aws);
    let arn = ours(aws, name, address).await?;
    c.disable_alarm_actions()
        .alarm_names(name)
        .send()
        .await
        .map_err(api("DisableAlarmActions"))?;
    let mut tag = c.tag_resource().resource_arn(&arn);
    for (k, v) in record.tags() {
        tag = tag.tags(Tag::builder().key(k).value(v).build());
    }
    tag.send().await.map(|_| ()).map_err(api("TagResource"))
}

/// The live alarm `name` with its tags: `None` when there is none, an error (before anything
/// is written) when there is one that does not carry ctl's tags for `address` in this
/// environment. Every write to an alarm (put, mute, unmute) checks through this.
async fn live_ours(aws: &Aws, name: &str, address: &Address) -> Result<Option<LiveAlarm>, AwsError> {
    let live = alarms_with_prefix(aws, name).await?.into_iter().find(|l| l.alarm.alarm_name() == Some(name));
    if let Some(l) = &live {
        let tags: Vec<(&str, &str)> = l.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if tags::ours(&tags, &aws.environment).as_ref() != Some(address) {
            return Err(AwsError::Other(format!(
                "{address}: an alarm named {name:?} exists and is not tagged as ctl's for this address; nothing was written (remove or rename it, then re-run)"
            )));
        }
    }
    Ok(live)
}

/// The ARN of ctl's alarm `name` (mute and unmute need it to exist).
async fn ours(aws: &Aws, name: &str, address: &Address) -> Result<String, AwsError> {
    let alarm = live_ours(aws, name, address).await?;
    let alarm = alarm.ok_or_else(|| AwsError::Other(format!("alarm {name} does not exist (apply the environment first)")))?;
    alarm.alarm.alarm_arn().map(str::to_string).ok_or_else(|| AwsError::Other(format!("alarm {name} has no ARN")))
}

/// EnableAlarmActions + remove the mute record.
pub async fn unmute(aws: &Aws, name: &str, address: &Address) -> Result<(), AwsError> {
    let c = client(aws);
    let arn = ours(aws, name, address).await?;
    c.enable_alarm_actions()
        .alarm_names(name)
        .send()
        .await
        .map_err(api("EnableAlarmActions"))?;
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys(MUTED_UNTIL_TAG)
        .tag_keys(MUTE_REASON_TAG)
        .send()
        .await
        .map(|_| ())
        .map_err(api("UntagResource"))
}

/// The metric of a query, for GetMetricData and PutMetricData.
#[derive(Clone, Debug)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

impl MetricId {
    fn dims(&self) -> Vec<Dimension> {
        self.dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect()
    }
}

/// A dimension value as CloudWatch knows it: `@instance.<group>.<n>` → that instance's id,
/// `@<health check address>` → the health check's id, anything else as it is. `None` when
/// the referenced object does not exist (yet).
pub async fn resolve_dimension(aws: &Aws, value: &str) -> Result<Option<String>, AwsError> {
    Ok(match value.strip_prefix(REF_PREFIX) {
        Some(address) if address.starts_with("instance.") => {
            let ec2 = super::network_common::ec2(aws);
            super::ec2::find(aws, &ec2, address).await?.and_then(|i| i.instance_id().map(str::to_string))
        }
        Some(address) => super::route53::id_of(aws, address).await?,
        None => Some(value.to_string()),
    })
}

/// What a `@…` dimension value refers to, in words.
pub fn referent(value: &str) -> String {
    match value.strip_prefix(REF_PREFIX) {
        Some(a) if a.starts_with("instance.") => format!("instance {a}"),
        Some(a) => format!("health check {a}"),
        None => value.to_string(),
    }
}

/// Hours of data per GetMetricData call: the work per call (moto scans every stored datapoint
/// per period) stays small, and real CloudWatch's per-call datapoint limit is never reached.
const CHUNK_SECS: i64 = 6 * 3600;

/// The metric aggregated per `period` with `stat` over `[start, end)` (aligned down to the
/// period), as a [`Series`] with `None` for periods without data.
pub async fn metric_series(
    aws: &Aws,
    metric: &MetricId,
    stat: &str,
    period: i64,
    start: i64,
    end: i64,
) -> Result<Series, AwsError> {
    let start = start - start.rem_euclid(period);
    let n = ((end - start) / period).max(0) as usize;
    let chunk = (CHUNK_SECS / period).max(1) * period;
    let windows: Vec<(i64, i64)> = (0..)
        .map(|i| start + i * chunk)
        .take_while(|s| *s < start + n as i64 * period)
        .map(|s| (s, (s + chunk).min(start + n as i64 * period)))
        .collect();
    let c = client(aws);
    let parts: Vec<Vec<(i64, f64)>> = stream::iter(windows)
        .map(|(s, e)| {
            let c = c.clone();
            let query = MetricDataQuery::builder()
                .id("m")
                .return_data(true)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(&metric.namespace)
                                .metric_name(&metric.name)
                                .set_dimensions(Some(metric.dims()))
                                .build(),
                        )
                        .period(period as i32)
                        .stat(stat)
                        .build(),
                )
                .build();
            async move {
                let pages = c
                    .get_metric_data()
                    .metric_data_queries(query)
                    .start_time(DateTime::from_secs(s))
                    .end_time(DateTime::from_secs(e))
                    .into_paginator()
                    .send()
                    .try_collect()
                    .await
                    .map_err(api("GetMetricData"))?;
                let points = pages.iter().flat_map(|p| p.metric_data_results()).flat_map(|r| r.timestamps().iter().map(|t| t.secs()).zip(r.values().iter().copied()));
                Ok::<_, AwsError>(points.collect::<Vec<_>>())
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let mut values = vec![None; n];
    for (t, v) in parts.into_iter().flatten() {
        if t >= start {
            if let Some(slot) = values.get_mut(((t - start) / period) as usize) {
                *slot = Some(v);
            }
        }
    }
    Ok(Series { start, period, values })
}

/// Datums per PutMetricData call. AWS allows 1000, but moto's query parsing is quadratic in the
/// size of a request, so small batches sent concurrently are much faster there.
const PUT_BATCH: usize = 100;

/// PutMetricData (seeding metrics in tests and demos), in concurrent batches.
pub async fn put_metric_data(aws: &Aws, metric: &MetricId, points: &[(i64, f64)]) -> Result<(), AwsError> {
    let c = client(aws);
    stream::iter(points.chunks(PUT_BATCH))
        .map(|batch| {
            let data: Vec<MetricDatum> = batch
                .iter()
                .map(|&(t, v)| {
                    MetricDatum::builder()
                        .metric_name(&metric.name)
                        .set_dimensions(Some(metric.dims()))
                        .timestamp(DateTime::from_secs(t))
                        .value(v)
                        .build()
                })
                .collect();
            let req = c
                .put_metric_data()
                .namespace(&metric.namespace)
                .set_metric_data(Some(data));
            async move { req.send().await.map(|_| ()).map_err(api("PutMetricData")) }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(enabled: bool, tags: &[(&str, &str)]) -> LiveAlarm {
        let alarm = SdkAlarm::builder()
            .alarm_name("ctl-prod-api-down")
            .namespace("AWS/Route53")
            .metric_name("HealthCheckStatus")
            .dimensions(Dimension::builder().name(HEALTH_CHECK_DIMENSION).value("hc-1").build())
            .evaluation_periods(3)
            .threshold(1.0)
            .actions_enabled(enabled)
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:ctl-prod-oncall")
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:someone-elses")
            .build();
        LiveAlarm { alarm, tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn topics_and_health_checks_by_name_and_address_and_a_mute_is_not_drift() {
        let topics = BTreeMap::from([("arn:aws:sns:us-east-1:123456789012:ctl-prod-oncall", "oncall")]);
        let checks = BTreeMap::from([("hc-1".to_string(), "alarms.health_check.api".to_string())]);
        let a = normalise(&live(true, &[]), &topics, &checks, 0);
        assert_eq!(a.alarm_actions, ["arn:aws:sns:us-east-1:123456789012:someone-elses", "oncall"], "a foreign topic shows its ARN: drift");
        assert_eq!(a.dimensions.get(HEALTH_CHECK_DIMENSION).map(String::as_str), Some("@alarms.health_check.api"));
        assert_eq!((a.datapoints_to_alarm, a.treat_missing_data.as_str()), (3, "missing"), "CloudWatch's defaults");
        // Actions disabled by an active mute read as enabled (the declaration's value); after it ends, as they are.
        let muted = live(false, &[(MUTED_UNTIL_TAG, "2030-01-01T00:00:00Z")]);
        assert!(normalise(&muted, &topics, &checks, 0).actions_enabled);
        assert!(!normalise(&muted, &topics, &checks, 2_000_000_000).actions_enabled);
    }
}
