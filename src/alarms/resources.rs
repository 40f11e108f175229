//! The alarm kinds as typed attribute structs shared by desired expansion and the AWS provider
//! (`aws::cloudwatch`, `aws::sns`, `aws::route53`), plus the expansion itself.
//!
//! Values that only exist live are written symbolically so both sides compare equal: alarm
//! actions name the SNS topic (not its ARN), and a route53_health alarm's `HealthCheckId`
//! dimension is `@<health check address>`.

use crate::config::{AlarmKind, Environment};
use crate::model::{Address, Resource, Scope};
use crate::model::to_attrs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Alarm descriptions start with this, followed by the address.
pub const DESCRIPTION_MARKER: &str = "managed by ctl: ";
/// A dimension value that refers to a resource address.
pub const REF_PREFIX: &str = "@";
pub const HEALTH_CHECK_DIMENSION: &str = "HealthCheckId";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarmAttrs {
    pub alarm_name: String,
    pub namespace: String,
    pub metric_name: String,
    pub statistic: String,
    pub dimensions: BTreeMap<String, String>,
    pub period: u64,
    pub evaluation_periods: u64,
    pub datapoints_to_alarm: u64,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
    /// `true` also while a mute recorded by `ctl alarms mute` is in force; an expired mute
    /// shows up as `false` → `true`.
    pub actions_enabled: bool,
    /// SNS topic names.
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnsTopicAttrs {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnsSubscriptionAttrs {
    /// Topic name.
    pub topic: String,
    pub protocol: String,
    /// The webhook's `alarms::webhook::stand_in` (host and digest), never the URL.
    pub endpoint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckAttrs {
    #[serde(rename = "type")]
    pub check_type: String,
    pub fqdn: String,
    pub port: u16,
    pub resource_path: String,
    pub request_interval: u32,
    pub failure_threshold: u32,
}

pub fn topic_address() -> Address {
    Address::new("alarms.topic")
}
pub fn subscription_address() -> Address {
    Address::new("alarms.subscription")
}
pub fn alarm_address(name: &str) -> Address {
    Address::new(format!("alarms.alarm.{name}"))
}
pub fn health_check_address(name: &str) -> Address {
    Address::new(format!("alarms.health_check.{name}"))
}

/// The CloudWatch name of an alarm: scoped by environment so environments never collide.
pub fn alarm_name(environment: &str, name: &str) -> String {
    format!("ctl-{environment}-{name}")
}

/// Prefix of every alarm of the environment (DescribeAlarms filter).
pub fn alarm_prefix(environment: &str) -> String {
    format!("ctl-{environment}-")
}

fn resource(
    address: Address,
    kind: crate::model::Kind,
    name: String,
    attrs: impl Serialize,
    deps: Vec<Address>,
) -> Resource {
    Resource {
        address,
        kind,
        scope: Scope::Root,
        name,
        attrs: to_attrs(&attrs),
        depends_on: deps,
        container: None,
    }
}

/// The desired alarm resources of an environment (empty without an `alarms:` section).
pub fn desired(env: &Environment) -> Vec<Resource> {
    use crate::model::Kind;
    let Some(cfg) = &env.alarms else { return Vec::new() };
    let mut out = vec![
        resource(
            topic_address(),
            Kind::SnsTopic,
            cfg.topic.clone(),
            SnsTopicAttrs {
                name: cfg.topic.clone(),
            },
            vec![],
        ),
        resource(
            subscription_address(),
            Kind::SnsSubscription,
            "webhook".into(),
            SnsSubscriptionAttrs {
                topic: cfg.topic.clone(),
                protocol: "https".into(),
                // Never the URL: `webhook::set_stand_in` puts its stand-in here once it is read.
                endpoint: super::webhook::UNRESOLVED.into(),
            },
            vec![topic_address()],
        ),
    ];
    for a in &cfg.alarms {
        let address = alarm_address(&a.name);
        let (namespace, metric, _, comparison) = a.kind.metric();
        let mut dimensions = a.dimensions.clone();
        let mut deps = vec![topic_address()];
        if let (AlarmKind::Route53Health, Some(hc)) = (a.kind, &a.health_check) {
            let hc_address = health_check_address(&a.name);
            out.push(resource(
                hc_address.clone(),
                Kind::Route53HealthCheck,
                alarm_name(&env.name, &a.name),
                HealthCheckAttrs {
                    check_type: "HTTPS".into(),
                    fqdn: hc.fqdn.clone(),
                    port: 443,
                    resource_path: hc.path.clone(),
                    request_interval: 30,
                    failure_threshold: 3,
                },
                vec![],
            ));
            dimensions.insert(HEALTH_CHECK_DIMENSION.into(), format!("{REF_PREFIX}{hc_address}"));
            deps.push(hc_address);
        }
        // `@instance.api.0`: a declared instance, created first.
        for value in a.dimensions.values() {
            if let Some(target) = value.strip_prefix(REF_PREFIX) {
                deps.push(Address::new(target));
            }
        }
        let mut description = format!("{DESCRIPTION_MARKER}{address}. Runbook: {}", a.runbook_url);
        if let Some(max) = a.max_connections {
            description.push_str(&format!(". Saturation: {} of max_connections {max}", a.threshold));
        }
        let attrs = MetricAlarmAttrs {
            alarm_name: alarm_name(&env.name, &a.name),
            namespace: namespace.into(),
            metric_name: metric.into(),
            statistic: a.statistic.as_str().into(),
            dimensions,
            period: u64::from(a.period),
            evaluation_periods: u64::from(a.evaluation_periods),
            datapoints_to_alarm: u64::from(a.datapoints_to_alarm),
            threshold: a.threshold,
            comparison_operator: comparison.as_str().into(),
            treat_missing_data: a.treat_missing_data.as_str().into(),
            actions_enabled: true,
            alarm_actions: vec![cfg.topic.clone()],
            ok_actions: vec![cfg.topic.clone()],
            description,
        };
        out.push(resource(
            address,
            Kind::MetricAlarm,
            attrs.alarm_name.clone(),
            attrs,
            deps,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn expansion_links_alarms_to_topic_and_health_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prod.yaml");
        std::fs::write(
            &path,
            "openbao: { address: 'http://127.0.0.1:8200', token_env: T }\naws: { region: us-east-1 }\nalarms:
  sns: { topic: oncall, webhook: { url_env: ALARM_WEBHOOK_URL } }
  alarms:
    - { name: hz, kind: route53_health, threshold: 1, period: 60, evaluation_periods: 3, datapoints_to_alarm: 2,
        runbook_url: 'https://r.example.com/hz', health_check: { fqdn: bao.example.com } }
",
        )
        .unwrap();
        let env = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let rs = desired(&env);
        let kinds: Vec<(Kind, &str)> = rs.iter().map(|r| (r.kind, r.address.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::SnsTopic, "alarms.topic"),
                (Kind::SnsSubscription, "alarms.subscription"),
                (Kind::Route53HealthCheck, "alarms.health_check.hz"),
                (Kind::MetricAlarm, "alarms.alarm.hz"),
            ]
        );
        let alarm = &rs[3];
        assert_eq!(alarm.name, "ctl-prod-hz");
        assert_eq!(alarm.depends_on, [topic_address(), health_check_address("hz")]);
        let a: MetricAlarmAttrs = crate::model::from_attrs(&alarm.attrs).unwrap();
        assert_eq!(
            a.dimensions.get("HealthCheckId").map(String::as_str),
            Some("@alarms.health_check.hz")
        );
        assert_eq!(
            (a.statistic.as_str(), a.comparison_operator.as_str()),
            ("Minimum", "LessThanThreshold")
        );
        assert_eq!(
            (a.alarm_actions.clone(), a.ok_actions.clone()),
            (vec!["oncall".to_string()], vec!["oncall".to_string()])
        );
        assert!(a
            .description
            .starts_with("managed by ctl: alarms.alarm.hz. Runbook: https://r.example.com/hz"));
        let hc: HealthCheckAttrs = crate::model::from_attrs(&rs[2].attrs).unwrap();
        assert_eq!(
            (hc.check_type.as_str(), hc.port, hc.resource_path.as_str()),
            ("HTTPS", 443, "/healthz")
        );
    }
}
