//! The `alarms:` section: CloudWatch alarms as code, their SNS topic and webhook, and Route 53
//! health checks.
//!
//! ```yaml
//! alarms:
//!   sns:
//!     topic: oncall
//!     # The URL is a bearer secret: never in git. One of:
//!     webhook: { url_env: ALARM_WEBHOOK_URL }            # an environment variable, or
//!     # webhook: { url_kv: { namespace: ops, mount: secret, path: alarms/webhook, field: url } }  # KV v2
//!   alarms:
//!     - name: api-5xx
//!       kind: api_5xx                 # api_5xx | ec2_cpu | ec2_status_check | route53_health | rds_connections
//!       threshold: 5
//!       period: 300                   # seconds: 10, 30 or a multiple of 60
//!       evaluation_periods: 3         # M
//!       datapoints_to_alarm: 2        # N ≤ M (default M)
//!       treat_missing_data: notBreaching   # missing (default) | notBreaching | breaching | ignore
//!       runbook_url: https://runbooks.example.com/api-5xx
//!       statistic: Sum                # optional; default per kind
//!       dimensions: { ApiName: secrets-api }
//!     - { name: healthz, kind: route53_health, health_check: { fqdn: bao.example.com }, … }
//!     - { name: db-conn, kind: rds_connections, max_connections: 200, threshold: 160, … }
//! ```
//!
//! Per-value checks (URLs, names, enums) run while deserializing, cross-field checks
//! (N ≤ M, period, per-kind fields) record a YAML path: every error is `file:line:col`.

use super::problems::Problems;
use super::names::{EnvVarName, MountPath, NamespaceName, NonEmpty};
use super::PathSeg;
use crate::alarms::backtest::{Comparison, MissingData, Statistic};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A validated `alarms:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmsConfig {
    /// The SNS topic every alarm notifies (AlarmActions and OKActions).
    pub topic: String,
    /// Where the https endpoint subscribed to the topic is read from (never the file itself).
    pub webhook: WebhookSource,
    pub alarms: Vec<Alarm>,
}

/// Where the webhook URL comes from. A Make.com/Slack-style webhook URL is a bearer secret, so
/// like the OpenBao token (`token_env`/`token_file`) it is named, never written, in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSource {
    /// `url_env: VAR`: the environment variable `VAR`.
    Env(String),
    /// `url_kv: { namespace?, mount, path, field }`: a field of a KV v2 secret in OpenBao.
    Kv {
        namespace: Option<String>,
        mount: String,
        path: String,
        field: String,
    },
}

/// What an alarm watches; fixes the namespace, metric, default statistic and comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    #[serde(rename = "api_5xx")]
    Api5xx,
    Ec2Cpu,
    Ec2StatusCheck,
    Route53Health,
    RdsConnections,
}

impl AlarmKind {
    /// (namespace, metric name, default statistic, comparison).
    pub fn metric(self) -> (&'static str, &'static str, Statistic, Comparison) {
        use Comparison::*;
        match self {
            AlarmKind::Api5xx => ("AWS/ApiGateway", "5XXError", Statistic::Sum, GreaterThanThreshold),
            AlarmKind::Ec2Cpu => ("AWS/EC2", "CPUUtilization", Statistic::Average, GreaterThanThreshold),
            AlarmKind::Ec2StatusCheck => (
                "AWS/EC2",
                "StatusCheckFailed",
                Statistic::Maximum,
                GreaterThanOrEqualToThreshold,
            ),
            AlarmKind::Route53Health => (
                "AWS/Route53",
                "HealthCheckStatus",
                Statistic::Minimum,
                LessThanThreshold,
            ),
            AlarmKind::RdsConnections => (
                "AWS/RDS",
                "DatabaseConnections",
                Statistic::Maximum,
                GreaterThanThreshold,
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Api5xx => "api_5xx",
            AlarmKind::Ec2Cpu => "ec2_cpu",
            AlarmKind::Ec2StatusCheck => "ec2_status_check",
            AlarmKind::Route53Health => "route53_health",
            AlarmKind::RdsConnections => "rds_connections",
        }
    }

    /// The dimension the alarm needs (route53_health's is filled from its health check).
    fn required_dimension(self) -> Option<&'static str> {
        match self {
            AlarmKind::Api5xx => Some("ApiName"),
            AlarmKind::Ec2Cpu | AlarmKind::Ec2StatusCheck => Some("InstanceId"),
            AlarmKind::RdsConnections => Some("DBInstanceIdentifier"),
            AlarmKind::Route53Health => None,
        }
    }
}

/// One alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub kind: AlarmKind,
    pub threshold: f64,
    pub period: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub treat_missing_data: MissingData,
    pub statistic: Statistic,
    pub runbook_url: String,
    pub dimensions: BTreeMap<String, String>,
    /// route53_health: the HTTPS health check on `https://<fqdn>:443<path>`.
    pub health_check: Option<HealthCheck>,
    /// rds_connections: the instance's max_connections (the threshold must not exceed it).
    pub max_connections: Option<u32>,
    /// YAML path of the alarm's item in the environment file (for `ctl alarms tune`).
    pub yaml_path: Vec<PathSeg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub fqdn: String,
    pub path: String,
}

impl AlarmsConfig {
    pub fn alarm(&self, name: &str) -> Option<&Alarm> {
        self.alarms.iter().find(|a| a.name == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlarms {
    pub sns: RawSns,
    #[serde(default)]
    pub alarms: Vec<RawAlarm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSns {
    pub topic: TopicName,
    pub webhook: RawWebhook,
}

/// `webhook:` as written: a map naming the URL's source. A plain string (the URL itself) is
/// refused while parsing, so the error has the value's position; the URL is not repeated in it.
#[derive(Debug)]
pub(crate) struct RawWebhook(RawWebhookSource);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhookSource {
    #[serde(default)]
    pub url_env: Option<EnvVarName>,
    #[serde(default)]
    pub url_kv: Option<RawKvField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKvField {
    #[serde(default)]
    pub namespace: Option<NamespaceName>,
    pub mount: MountPath,
    pub path: NonEmpty,
    pub field: NonEmpty,
}

/// What a literal webhook URL in the file gets (exit 1 before any API call).
pub(crate) const LITERAL_WEBHOOK: &str = "the webhook URL is a secret (anyone who has it can post to the channel) and must not be in a file kept in git: \
     rotate it if it was committed, then name where ctl reads it: `webhook: { url_env: ALARM_WEBHOOK_URL }` (an environment variable) \
     or `webhook: { url_kv: { mount: secret, path: alarms/webhook, field: url } }` (a field of an OpenBao KV v2 secret; `namespace:` optional)";

impl<'de> Deserialize<'de> for RawWebhook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawWebhook;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("{ url_env: VAR } or { url_kv: { mount, path, field } }")
            }
            fn visit_str<E: de::Error>(self, _url: &str) -> Result<RawWebhook, E> {
                Err(E::custom(LITERAL_WEBHOOK))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawWebhook, A::Error> {
                RawWebhookSource::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawWebhook)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlarm {
    pub name: AlarmName,
    pub kind: AlarmKind,
    pub threshold: f64,
    pub period: u32,
    pub evaluation_periods: u32,
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    #[serde(default)]
    pub treat_missing_data: Option<MissingData>,
    #[serde(default)]
    pub runbook_url: Option<HttpsUrl>,
    #[serde(default)]
    pub statistic: Option<Statistic>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default)]
    pub health_check: Option<RawHealthCheck>,
    #[serde(default)]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    pub fqdn: Fqdn,
    #[serde(default = "default_health_path")]
    pub path: HealthPath,
}

fn default_health_path() -> HealthPath {
    HealthPath("/healthz".into())
}

/// Declare a validated `String` newtype: `check` returns the full error message.
macro_rules! checked {
    ($name:ident, $check:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) struct $name(pub String);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let check: fn(&str) -> Result<(), String> = $check;
                check(&s).map_err(de::Error::custom)?;
                Ok($name(s))
            }
        }
    };
}

fn simple_name(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("{what} {s:?} must be 1 to {max} characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{what} {s:?} is invalid: contains {c:?}; allowed are a-z, 0-9, '-', '_'"
        ));
    }
    Ok(())
}

/// `https://host…` with a host; anything else is refused (webhooks and runbooks alike).
pub(crate) fn check_https(s: &str) -> Result<(), String> {
    match url::Url::parse(s) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(u) => Err(format!("{s:?} must be an https:// URL (got scheme {:?})", u.scheme())),
        Err(e) => Err(format!("{s:?} is not a URL: {e}")),
    }
}

checked!(AlarmName, |s| simple_name("alarm name", s, 64));
checked!(TopicName, |s| simple_name("topic name", s, 200));
checked!(HttpsUrl, check_https);
checked!(Fqdn, |s| {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("fqdn {s:?} is not a host name (like bao.example.com)"))
    }
});
checked!(HealthPath, |s| {
    if s.starts_with('/') && !s.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "health check path {s:?} must start with '/' and contain no spaces"
        ))
    }
});

/// Cross-field checks; `None` if anything is wrong (problems recorded at their YAML paths).
pub(crate) fn validate(raw: &RawAlarms, has_aws: bool, all: &mut Problems) -> Option<AlarmsConfig> {
    let mut local = Problems::default();
    let problems = &mut local;
    if !has_aws {
        problems.at(
            0,
            vec![PathSeg::key("alarms")],
            "alarms need an aws: section (where the alarms live)",
        );
    }
    let mut out = Vec::with_capacity(raw.alarms.len());
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, a) in raw.alarms.iter().enumerate() {
        let base = vec![PathSeg::key("alarms"), PathSeg::key("alarms"), PathSeg::Index(i)];
        let at = |key: &str| {
            let mut p = base.clone();
            p.push(PathSeg::key(key));
            p
        };
        if let Some(first) = seen.insert(&a.name.0, i) {
            problems.at(
                0,
                at("name"),
                format!("duplicate alarm name {:?} (also alarms[{first}])", a.name.0),
            );
        }
        if !(a.period == 10 || a.period == 30 || (a.period >= 60 && a.period % 60 == 0)) {
            problems.at(
                0,
                at("period"),
                format!("period {} must be 10, 30 or a multiple of 60 seconds", a.period),
            );
        }
        if a.evaluation_periods == 0 {
            problems.at(0, at("evaluation_periods"), "evaluation_periods must be at least 1");
        }
        let n = a.datapoints_to_alarm.unwrap_or(a.evaluation_periods);
        if n == 0 || n > a.evaluation_periods {
            problems.at(
                0,
                at("datapoints_to_alarm"),
                format!(
                    "datapoints_to_alarm ({n}) must be between 1 and evaluation_periods ({})",
                    a.evaluation_periods
                ),
            );
        }
        if u64::from(a.period) * u64::from(a.evaluation_periods) > 86_400 {
            problems.at(
                0,
                at("evaluation_periods"),
                "period × evaluation_periods must not exceed one day (86400 s)",
            );
        }
        if !a.threshold.is_finite() {
            problems.at(0, at("threshold"), "threshold must be a finite number");
        }
        if a.runbook_url.is_none() {
            problems.at(
                0,
                base.clone(),
                format!(
                    "alarm {:?} needs a runbook_url (https://…): on-call reads it first",
                    a.name.0
                ),
            );
        }
        if let Some(dim) = a.kind.required_dimension() {
            if !a.dimensions.contains_key(dim) {
                problems.at(
                    0,
                    base.clone(),
                    format!("a {} alarm needs dimensions: {{ {dim}: … }}", a.kind.as_str()),
                );
            }
        }
        match (a.kind, &a.health_check) {
            (AlarmKind::Route53Health, None) => problems.at(
                0,
                base.clone(),
                "a route53_health alarm needs health_check: { fqdn: … }",
            ),
            (AlarmKind::Route53Health, Some(_)) => {
                if !a.dimensions.is_empty() {
                    problems.at(
                        0,
                        at("dimensions"),
                        "route53_health alarms get their HealthCheckId dimension from health_check",
                    );
                }
            }
            (_, Some(_)) => problems.at(0, at("health_check"), "health_check is only for route53_health alarms"),
            (_, None) => {}
        }
        match (a.kind, a.max_connections) {
            (AlarmKind::RdsConnections, None) => problems.at(
                0,
                base.clone(),
                "an rds_connections alarm needs max_connections (the instance's limit)",
            ),
            (AlarmKind::RdsConnections, Some(max)) => {
                if max == 0 || a.threshold > f64::from(max) {
                    problems.at(
                        0,
                        at("threshold"),
                        format!("threshold {} exceeds max_connections {max}", a.threshold),
                    );
                }
            }
            (_, Some(_)) => problems.at(
                0,
                at("max_connections"),
                "max_connections is only for rds_connections alarms",
            ),
            (_, None) => {}
        }
        let (_, _, default_stat, _) = a.kind.metric();
        out.push(Alarm {
            name: a.name.0.clone(),
            kind: a.kind,
            threshold: a.threshold,
            period: a.period,
            evaluation_periods: a.evaluation_periods,
            datapoints_to_alarm: n,
            treat_missing_data: a.treat_missing_data.unwrap_or(MissingData::Missing),
            statistic: a.statistic.unwrap_or(default_stat),
            runbook_url: a.runbook_url.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
            dimensions: a.dimensions.clone(),
            health_check: a.health_check.as_ref().map(|h| HealthCheck {
                fqdn: h.fqdn.0.clone(),
                path: h.path.0.clone(),
            }),
            max_connections: a.max_connections,
            yaml_path: base,
        });
    }
    let webhook_at = vec![PathSeg::key("alarms"), PathSeg::key("sns"), PathSeg::key("webhook")];
    let webhook = match &raw.sns.webhook.0 {
        RawWebhookSource { url_env: Some(var), url_kv: None } => Some(WebhookSource::Env(var.0.clone())),
        RawWebhookSource { url_env: None, url_kv: Some(kv) } => Some(WebhookSource::Kv {
            namespace: kv.namespace.as_ref().map(|n| n.0.clone()),
            mount: kv.mount.0.clone(),
            path: kv.path.0.trim_matches('/').to_string(),
            field: kv.field.0.clone(),
        }),
        RawWebhookSource { url_env: Some(_), url_kv: Some(_) } => {
            problems.at(0, webhook_at, "set exactly one of url_env or url_kv, not both");
            None
        }
        RawWebhookSource { url_env: None, url_kv: None } => {
            problems.at(
                0,
                webhook_at,
                "webhook needs a source: url_env (an environment variable name) or url_kv \
                 ({ mount, path, field } of an OpenBao KV v2 secret)",
            );
            None
        }
    };
    let ok = local.is_empty();
    all.append(local);
    ok.then(|| AlarmsConfig {
        topic: raw.sns.topic.0.clone(),
        webhook: webhook.expect("checked above"),
        alarms: out,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{load, WebhookSource};

    fn env(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        let text = format!(
            "openbao:\n  address: http://127.0.0.1:8200\n  token_env: BAO_TOKEN\naws:\n  region: us-east-1\n{body}"
        );
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const GOOD: &str = "alarms:
  sns: { topic: oncall, webhook: { url_env: ALARM_WEBHOOK_URL } }
  alarms:
    - name: api-5xx
      kind: api_5xx
      threshold: 5
      period: 300
      evaluation_periods: 3
      datapoints_to_alarm: 2
      treat_missing_data: notBreaching
      runbook_url: https://runbooks.example.com/api-5xx
      dimensions: { ApiName: secrets }
    - name: healthz
      kind: route53_health
      threshold: 1
      period: 60
      evaluation_periods: 2
      runbook_url: https://runbooks.example.com/healthz
      health_check: { fqdn: bao.example.com }
    - { name: db, kind: rds_connections, threshold: 160, max_connections: 200, period: 60, evaluation_periods: 5,
        runbook_url: 'https://r.example.com/db', dimensions: { DBInstanceIdentifier: bao } }
";

    #[test]
    fn good_section_loads_with_defaults() {
        let (_d, path) = env(GOOD);
        let e = load(&path).unwrap_or_else(|e| panic!("{e}"));
        let a = e.alarms.expect("alarms");
        assert_eq!(a.topic, "oncall");
        assert_eq!(a.webhook, WebhookSource::Env("ALARM_WEBHOOK_URL".into()));
        assert_eq!(a.alarms.len(), 3);
        let hz = a.alarm("healthz").unwrap();
        assert_eq!(hz.datapoints_to_alarm, 2, "N defaults to M");
        assert_eq!(hz.statistic.as_str(), "Minimum");
        assert_eq!(hz.treat_missing_data.as_str(), "missing");
        assert_eq!(hz.health_check.as_ref().unwrap().path, "/healthz");
        assert_eq!(a.alarm("api-5xx").unwrap().statistic.as_str(), "Sum");
    }

    fn errors(body: &str) -> String {
        let (_d, path) = env(body);
        match load(&path) {
            Ok(_) => panic!("expected errors for:\n{body}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cross_field_errors_are_located() {
        let bad = GOOD
            .replace("datapoints_to_alarm: 2", "datapoints_to_alarm: 4")
            .replace("period: 300", "period: 90")
            .replace("      runbook_url: https://runbooks.example.com/healthz\n", "")
            .replace("threshold: 160", "threshold: 260");
        let e = errors(&bad);
        assert!(
            e.contains("t.yaml:14:28: datapoints_to_alarm (4) must be between 1 and evaluation_periods (3)"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:12:15: period 90 must be 10, 30 or a multiple of 60 seconds"),
            "{e}"
        );
        assert!(e.contains("t.yaml:18:7: alarm \"healthz\" needs a runbook_url"), "{e}");
        assert!(
            e.contains("t.yaml:24:53: threshold 260 exceeds max_connections 200"),
            "{e}"
        );
    }

    #[test]
    fn a_literal_webhook_url_is_refused_without_repeating_it() {
        let hook = "https://hooks.example.com/T000/secret-token";
        for literal in [hook.to_string(), format!("'{hook}'")] {
            let e = errors(&GOOD.replace("{ url_env: ALARM_WEBHOOK_URL }", &literal));
            assert!(e.contains("t.yaml:7:34: alarms.sns.webhook: the webhook URL is a secret"), "{e}");
            assert!(e.contains("url_env: ALARM_WEBHOOK_URL") && e.contains("url_kv: { mount"), "{e}");
            assert!(!e.contains("secret-token"), "{e}");
        }
    }

    #[test]
    fn webhook_sources() {
        let kv = |body: &str| GOOD.replace("{ url_env: ALARM_WEBHOOK_URL }", body);
        let (_d, path) = env(&kv("{ url_kv: { namespace: ops, mount: secret, path: /alarms/webhook, field: url } }"));
        let a = load(&path).unwrap_or_else(|e| panic!("{e}")).alarms.unwrap();
        assert_eq!(
            a.webhook,
            WebhookSource::Kv {
                namespace: Some("ops".into()),
                mount: "secret".into(),
                path: "alarms/webhook".into(),
                field: "url".into()
            }
        );
        let e = errors(&kv("{ url_env: A, url_kv: { mount: secret, path: p, field: f } }"));
        assert!(e.contains("t.yaml:7:34: set exactly one of url_env or url_kv"), "{e}");
        let e = errors(&kv("{}"));
        assert!(e.contains("t.yaml:7:34: webhook needs a source"), "{e}");
        let e = errors(&kv("{ url_kv: { mount: secret, path: p } }"));
        assert!(e.contains("missing field `field`"), "{e}");
        let e = errors(&kv("{ url_env: 'not a var' }"));
        assert!(e.contains("invalid environment variable name"), "{e}");
    }

    #[test]
    fn per_value_errors_are_located() {
        let e = errors(&GOOD.replace("https://runbooks.example.com/api-5xx", "http://runbooks.example.com/api-5xx"));
        assert!(
            e.contains("\"http://runbooks.example.com/api-5xx\" must be an https:// URL"),
            "{e}"
        );
        let e = errors(&GOOD.replace("kind: api_5xx", "kind: api_4xx"));
        assert!(
            e.contains("t.yaml:10:13: ") && e.contains("unknown variant `api_4xx`"),
            "{e}"
        );
        let e = errors(&GOOD.replace("notBreaching", "sometimes"));
        assert!(
            e.contains("t.yaml:15:27: ") && e.contains("unknown variant `sometimes`"),
            "{e}"
        );
    }

    #[test]
    fn alarms_need_aws() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(
            &path,
            format!("openbao:\n  address: http://127.0.0.1:8200\n  token_env: X\n{GOOD}"),
        )
        .unwrap();
        let e = load(&path).expect_err("error").to_string();
        assert!(e.contains("t.yaml:5:3: alarms need an aws: section"), "{e}");
    }
}
