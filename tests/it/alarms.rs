//! CloudWatch alarms as code against the shared stack's moto: apply → empty plan → out-of-band
//! threshold change shows exactly that field → apply; 14 days of 1-minute metric data and the
//! backtest numbers against the engine's; `tune` touches only the threshold's bytes; the SVG
//! and PNG charts; mute → status → expiry restored by apply; unmute. The webhook URL (a
//! bearer secret, read from `$ALARM_WEBHOOK_URL` or OpenBao KV) is a canary: plans, PR
//! comments, saved plans and `RUST_LOG=trace` logs show only its stand-in.

use crate::harness::{bao_cli, moto_aws as aws, runtime, stack, unique, CtlOutput, Scenario};
use ctl::alarms::backtest::{self, Comparison, MissingData, Rule, Series, Statistic};
use ctl::aws::cloudwatch::{self, MetricId};
use ctl::aws::Aws;
use ctl::dev::BaoVersion;
use serde_json::Value;
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

fn now() -> i64 {
    ctl::alarms::mute::now()
}

struct Names {
    topic: String,
    api: String,
}

/// The variable the environment files below name in `webhook: { url_env: … }`.
const WEBHOOK_ENV: &str = "ALARM_WEBHOOK_URL";
/// Loopback port 9 (discard): nothing connects to it (moto does not deliver https messages).
const HOOK: &str = "https://127.0.0.1:9/hook/T0000/B0000/xoxb-canary-webhook-token";

/// `ctl` with the webhook URL in its environment.
fn ctl(sc: &Scenario, args: &[&str]) -> CtlOutput {
    sc.ctl_with_env(args, &[(WEBHOOK_ENV, HOOK)])
}

fn body(moto: &str, n: &Names, api_threshold: &str) -> String {
    format!(
        r#"aws: {{ region: us-east-1, endpoint: "{moto}" }}
# On-call alarms. Comments and layout must survive `ctl alarms tune`.
alarms:
  sns: {{ topic: {topic}, webhook: {{ url_env: ALARM_WEBHOOK_URL }} }}
  alarms:
    - name: api-5xx
      kind: api_5xx
      threshold: {api_threshold}     # errors per 5 minutes
      period: 300
      evaluation_periods: 3
      datapoints_to_alarm: 2
      treat_missing_data: notBreaching
      runbook_url: https://runbooks.example.com/api-5xx
      dimensions: {{ ApiName: {api} }}
    - {{ name: healthz, kind: route53_health, threshold: 1, period: 60, evaluation_periods: 2,
        runbook_url: "https://runbooks.example.com/healthz", health_check: {{ fqdn: bao.example.com }} }}
    - {{ name: db-conn, kind: rds_connections, threshold: 160, max_connections: 200, period: 60,
        evaluation_periods: 5, runbook_url: "https://runbooks.example.com/db", dimensions: {{ DBInstanceIdentifier: bao }} }}
"#,
        topic = n.topic,
        api = n.api,
    )
}

fn plan_json(sc: &Scenario) -> Value {
    let out = ctl(sc, &["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn apply(sc: &Scenario) {
    let out = ctl(sc, &["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
}

fn assert_no_changes(sc: &Scenario) {
    let out = ctl(sc, &["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(out.status, 0, "plan must be empty:\n{}\n{}", out.stdout, out.stderr);
}

fn only_change(plan: &Value) -> (&Value, Vec<&Value>) {
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "exactly one change: {plan:#}");
    let fields = changes[0]["fields"].as_array().expect("fields").iter().collect();
    (&changes[0], fields)
}

/// Someone raises the threshold in the console: PutMetricAlarm with everything else unchanged.
fn drift_threshold(aws: &Aws, alarm: &str, threshold: f64) {
    runtime().block_on(async {
        let c = cloudwatch::client(aws);
        let live = c.describe_alarms().alarm_names(alarm).send().await.expect("describe");
        let a = live.metric_alarms().first().expect("alarm exists").clone();
        c.put_metric_alarm()
            .alarm_name(alarm)
            .set_alarm_description(a.alarm_description().map(str::to_string))
            .set_namespace(a.namespace().map(str::to_string))
            .set_metric_name(a.metric_name().map(str::to_string))
            .set_statistic(a.statistic().cloned())
            .set_dimensions(Some(a.dimensions().to_vec()))
            .set_period(a.period())
            .set_evaluation_periods(a.evaluation_periods())
            .set_datapoints_to_alarm(a.datapoints_to_alarm())
            .threshold(threshold)
            .set_comparison_operator(a.comparison_operator().cloned())
            .set_treat_missing_data(a.treat_missing_data().map(str::to_string))
            .set_actions_enabled(a.actions_enabled())
            .set_alarm_actions(Some(a.alarm_actions().to_vec()))
            .set_ok_actions(Some(a.ok_actions().to_vec()))
            .send()
            .await
            .expect("out-of-band PutMetricAlarm");
    });
}

fn actions_enabled(aws: &Aws, alarm: &str) -> bool {
    runtime().block_on(async {
        let live = cloudwatch::client(aws)
            .describe_alarms()
            .alarm_names(alarm)
            .send()
            .await
            .expect("describe");
        live.metric_alarms()
            .first()
            .expect("alarm")
            .actions_enabled()
            .expect("flag")
    })
}

fn status_row(sc: &Scenario, alarm: &str) -> String {
    let out = ctl(sc, &["alarms", "status", "-e", &sc.env_file()]);
    assert_eq!(out.status, 0, "status failed: {}", out.stderr);
    assert!(out.stdout.starts_with("alarm"), "{}", out.stdout);
    out.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{alarm} ")))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string()
}

/// `ctl alarms mute`/`unmute` write to an alarm (actions, tags): never to one that is not ctl's,
/// even when it has the name ctl would give the declared alarm.
#[test]
fn mute_refuses_an_alarm_that_is_not_ctls() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("am");
    let n = Names { topic: unique("t"), api: unique("api") };
    let sc = Scenario::new(stack, &env, &body(&moto, &n, "5"));
    let aws = aws(&moto, &env);
    // Someone made an alarm with the name of the declared `api-5xx`, before any apply.
    let name = format!("ctl-{env}-api-5xx");
    runtime().block_on(async {
        cloudwatch::client(&aws)
            .put_metric_alarm()
            .alarm_name(&name)
            .namespace("Team/Own")
            .metric_name("Errors")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .actions_enabled(true)
            .send()
            .await
            .expect("PutMetricAlarm by hand");
    });
    for args in [vec!["alarms", "mute", "api-5xx", "--for", "1h", "--reason", "deploy"], vec!["alarms", "unmute", "api-5xx"]] {
        let file = sc.env_file();
        let mut args = args;
        args.extend(["-e", file.as_str()]);
        let out = ctl(&sc, &args);
        assert_eq!(out.status, 1, "{args:?} must refuse:\n{}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("not tagged as ctl's"), "{}", out.stderr);
    }
    assert!(actions_enabled(&aws, &name), "the foreign alarm's actions were disabled");
    let tags = runtime().block_on(async {
        let arn = cloudwatch::client(&aws).describe_alarms().alarm_names(&name).send().await.unwrap().metric_alarms()[0].alarm_arn().unwrap().to_string();
        cloudwatch::client(&aws).list_tags_for_resource().resource_arn(arn).send().await.unwrap().tags().len()
    });
    assert_eq!(tags, 0, "the foreign alarm was stamped");
}

#[test]
fn alarms_apply_drift_mute_and_expiry() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("al");
    let n = Names {
        topic: unique("t"),
        api: unique("api"),
    };
    let sc = Scenario::new(stack, &env, &body(&moto, &n, "5"));

    let first = ctl(&sc, &["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(first.status, 2, "changes pending\n{}\n{}", first.stdout, first.stderr);
    for address in [
        "alarms.topic",
        "alarms.subscription",
        "alarms.alarm.api-5xx",
        "alarms.health_check.healthz",
    ] {
        assert!(first.stdout.contains(address), "{address} missing:\n{}", first.stdout);
    }
    let webhook_line = |sc: &Scenario| {
        let out = ctl(sc, &["alarms", "status", "-e", &sc.env_file()]);
        assert_eq!(out.status, 0, "status failed: {}", out.stderr);
        let prefix = format!("webhook ({}): ", n.topic);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}", out.stdout));
        line[prefix.len()..].to_string()
    };
    assert_eq!(webhook_line(&sc), "(topic not created)");
    apply(&sc);
    assert_no_changes(&sc);
    // moto confirms https subscriptions at once (it cannot show PendingConfirmation: see
    // `aws::sns`), so only the confirmed state is seen here; only the origin is printed.
    assert_eq!(webhook_line(&sc), "https://127.0.0.1:9: confirmed");

    // Ownership tags on the alarm; every alarm notifies the one topic.
    let aws = aws(&moto, &env);
    let api_alarm = format!("ctl-{env}-api-5xx");
    runtime().block_on(async {
        let c = cloudwatch::client(&aws);
        let live = c
            .describe_alarms()
            .alarm_name_prefix(format!("ctl-{env}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.metric_alarms().len(), 3);
        for a in live.metric_alarms() {
            assert_eq!(a.alarm_actions().len(), 1);
            assert!(
                a.alarm_actions()[0].ends_with(&format!(":{}", n.topic)),
                "{:?}",
                a.alarm_actions()
            );
            assert_eq!(a.alarm_actions(), a.ok_actions());
        }
        let hz = live
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(&format!("ctl-{env}-healthz")))
            .unwrap();
        let hc_id = hz.dimensions()[0].value().unwrap().to_string();
        assert_eq!(
            ctl::aws::route53::id_of(&aws, "alarms.health_check.healthz")
                .await
                .unwrap(),
            Some(hc_id)
        );
        let arn = live.metric_alarms()[0].alarm_arn().unwrap();
        let tags = c.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
        let tags: BTreeMap<&str, &str> = tags
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(tags.get("managed-by"), Some(&"ctl"));
        assert_eq!(tags.get("ctl-environment"), Some(&env.as_str()));
    });

    // Out of band: threshold 5 → 50. The plan shows exactly that field.
    drift_threshold(&aws, &api_alarm, 50.0);
    let plan = plan_json(&sc);
    let (change, fields) = only_change(&plan);
    assert_eq!(change["address"], "alarms.alarm.api-5xx");
    assert_eq!(change["action"], "update");
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "threshold");
    assert_eq!(fields[0]["before"], 50.0);
    assert_eq!(fields[0]["after"], 5.0);
    apply(&sc);
    assert_no_changes(&sc);

    // Mute for 2h: actions off, the record in status, and the plan accepts it.
    let out = ctl(&sc, &[
        "alarms",
        "mute",
        "api-5xx",
        "--for",
        "2h",
        "--reason",
        "deploy of v2.6.3",
        "-e",
        &sc.env_file(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(!actions_enabled(&aws, &api_alarm));
    let row = status_row(&sc, "api-5xx");
    assert!(row.contains("deploy of v2.6.3") && row.contains(" 5 "), "{row}");
    assert_no_changes(&sc);

    // Unmute: actions back, no record.
    let out = ctl(&sc, &["alarms", "unmute", "api-5xx", "-e", &sc.env_file()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(actions_enabled(&aws, &api_alarm));
    assert!(
        status_row(&sc, "api-5xx").trim_end().ends_with(" -"),
        "{}",
        status_row(&sc, "api-5xx")
    );

    // A mute that expires: the next plan shows actions_enabled false → true; apply restores it.
    let out = ctl(&sc, &[
        "alarms",
        "mute",
        "api-5xx",
        "--for",
        "1s",
        "--reason",
        "short",
        "-e",
        &sc.env_file(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(status_row(&sc, "api-5xx").contains("expired"));
    let plan = plan_json(&sc);
    let (change, fields) = only_change(&plan);
    assert_eq!(change["address"], "alarms.alarm.api-5xx");
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "actions_enabled");
    assert_eq!(
        (fields[0]["before"].clone(), fields[0]["after"].clone()),
        (Value::Bool(false), Value::Bool(true))
    );
    apply(&sc);
    assert!(actions_enabled(&aws, &api_alarm));
    assert!(status_row(&sc, "api-5xx").trim_end().ends_with(" -"));
    assert_no_changes(&sc);
}

/// Per-minute 5XXError counts: 1 a minute, and each day one burst whose length and height
/// vary by day (so the two thresholds disagree), with a few gaps.
fn seed_samples(start: i64, end: i64) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut t = start;
    while t < end {
        let minute = (t - start) / 60;
        let day = minute / 1440;
        let in_day = minute % 1440;
        let burst_len = (day % 4 + 1) * 5;
        let value = if (600..600 + burst_len).contains(&in_day) {
            (2 + day % 3) as f64
        } else if in_day == 900 {
            -1.0 // marker for a gap
        } else {
            1.0
        };
        if value >= 0.0 {
            out.push((t, value));
        }
        t += 60;
    }
    out
}

#[test]
fn backtest_tune_and_chart_against_seeded_metrics() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("bt");
    let n = Names {
        topic: unique("t"),
        api: unique("api"),
    };
    let sc = Scenario::new(stack, &env, &body(&moto, &n, "5"));
    let aws = aws(&moto, &env);

    // 14 days of 1-minute data (20,160 points), ending an hour ago.
    let end = now() - now().rem_euclid(300) - 3600;
    let start = end - 14 * DAY;
    let samples = seed_samples(start, end);
    assert!(samples.len() > 20_000);
    let metric = MetricId {
        namespace: "AWS/ApiGateway".into(),
        name: "5XXError".into(),
        dimensions: BTreeMap::from([("ApiName".to_string(), n.api.clone())]),
    };
    runtime()
        .block_on(cloudwatch::put_metric_data(&aws, &metric, &samples))
        .expect("PutMetricData");

    // What the engine says on the same data.
    let series = Series::aggregate(&samples, start - DAY, end + DAY, 300, Statistic::Sum);
    let rule = Rule {
        comparison: Comparison::GreaterThanThreshold,
        threshold: 5.0,
        evaluation_periods: 3,
        datapoints_to_alarm: 2,
        treat_missing_data: MissingData::NotBreaching,
    };
    let expected = backtest::compare(&series, &rule, 12.0);
    assert!(expected.current.alarms > expected.proposed.alarms, "{expected:?}");
    assert!(expected.proposed.alarms > 0);

    // A plan that creates the alarm shows what it would have done (there is no live rule yet);
    // an alarm whose metric cannot be read says why, and the plan goes on.
    let planned = plan_json(&sc);
    let change = |plan: &Value, name: &str| -> Value {
        plan["changes"].as_array().unwrap().iter().find(|c| c["address"] == format!("alarms.alarm.{name}")).cloned().unwrap_or_else(|| panic!("no change of {name}: {plan:#}"))
    };
    let created = change(&planned, "api-5xx");
    assert_eq!(created["backtest"]["status"], "done", "{created:#}");
    assert!(created["backtest"]["current"].is_null());
    assert_eq!(created["backtest"]["proposed"]["alarms"], expected.current.alarms);
    assert_eq!(created["backtest"]["proposed"]["seconds_in_alarm"], expected.current.seconds_in_alarm);
    assert_eq!(created["backtest"]["proposed"]["flaps"], expected.current.flaps);
    let healthz = change(&planned, "healthz");
    assert_eq!(healthz["backtest"]["status"], "unavailable");
    assert!(healthz["backtest"]["why"].as_str().unwrap().contains("health check alarms.health_check.healthz does not exist yet"), "{healthz:#}");
    let db = change(&planned, "db-conn");
    assert!(db["backtest"]["why"].as_str().unwrap().contains("no datapoints in the last 14 days"), "{db:#}");
    apply(&sc);

    let chart = sc.path("api.svg");
    let out = sc.ctl(&[
        "alarms",
        "backtest",
        "api-5xx",
        "--threshold",
        "12",
        "--json",
        "--chart",
        &chart,
        "-e",
        &sc.env_file(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let got: Value = serde_json::from_str(&out.stdout).expect("json");
    for (side, want) in [("current", &expected.current), ("proposed", &expected.proposed)] {
        assert_eq!(got[side]["alarms"], want.alarms, "{side}: {got:#}");
        assert_eq!(got[side]["seconds_in_alarm"], want.seconds_in_alarm, "{side}");
        assert_eq!(got[side]["flaps"], want.flaps, "{side}");
        assert_eq!(
            got[side]["episodes"].as_array().unwrap().len(),
            want.episodes.len(),
            "{side}"
        );
    }
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    assert!(svg.contains("proposed threshold 12") && svg.contains("current threshold 5"));

    // Any other extension is refused while parsing the arguments: before the environment file
    // is even read (this one does not exist), so before any AWS call.
    let out = sc.ctl(&[
        "alarms",
        "backtest",
        "api-5xx",
        "--threshold",
        "12",
        "--chart",
        &sc.path("api.jpg"),
        "-e",
        "no-such-env.yaml",
    ]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unsupported chart format .jpg") && out.stderr.contains(".svg or .png"),
        "{}",
        out.stderr
    );
    assert!(!std::path::Path::new(&sc.path("api.jpg")).exists());

    // Text report side by side.
    let out = sc.ctl(&[
        "alarms",
        "backtest",
        "api-5xx",
        "--threshold",
        "12",
        "-e",
        &sc.env_file(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let alarms_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("alarms "))
        .expect("alarms row")
        .to_string();
    let cols: Vec<&str> = alarms_line.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "alarms",
            &expected.current.alarms.to_string(),
            &expected.proposed.alarms.to_string()
        ]
    );

    // recommend: percentiles computed client-side; its chart as PNG this time.
    let png_chart = sc.path("api.png");
    let out = sc.ctl(&[
        "alarms",
        "recommend",
        "api-5xx",
        "--json",
        "--chart",
        &png_chart,
        "-e",
        &sc.env_file(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let bytes = std::fs::read(&png_chart).expect("PNG chart written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let info = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("PNG header")
        .info()
        .clone();
    assert_eq!((info.width, info.height), ctl::alarms::chart::SIZE);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    let p = ctl::alarms::recommend::percentiles(&series).unwrap();
    assert_eq!(r["percentiles"]["p99"], p.p99);
    assert_eq!(r["percentiles"]["p50"], 5.0);
    assert_eq!(r["proposed"], (p.p99 * 1.2 * 1000.0).round() / 1000.0);

    // tune: only the threshold's bytes change, and the markdown has the backtest.
    let file = sc.dir().join(sc.env_file());
    let before = std::fs::read_to_string(&file).unwrap();
    let out = sc.ctl(&["alarms", "tune", "api-5xx", "--threshold", "12", "-e", &sc.env_file()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let after = std::fs::read_to_string(&file).unwrap();
    let (b_at, a_at) = (
        before.find("threshold: 5 ").unwrap(),
        after.find("threshold: 12 ").unwrap(),
    );
    assert_eq!(b_at, a_at);
    assert_eq!(before[..b_at], after[..a_at], "bytes before the threshold changed");
    assert_eq!(
        before[b_at + "threshold: 5".len()..],
        after[a_at + "threshold: 12".len()..],
        "bytes after changed"
    );
    assert!(
        out.stdout.starts_with("### Tune alarm `api-5xx`: threshold 5 → 12"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "| alarms | {} | {} |",
            expected.current.alarms, expected.proposed.alarms
        )),
        "{}",
        out.stdout
    );
    let tuned = ctl::config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tuned.alarms.unwrap().alarm("api-5xx").unwrap().threshold, 12.0);

    // The pull request that tunes it: the plan carries the same numbers as `alarms backtest`,
    // in text, markdown (with a chart per alarm for CI to attach) and JSON.
    let (c, p) = (&expected.current, &expected.proposed);
    let out = ctl(&sc, &["plan", "-e", &sc.env_file()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let line = format!("backtest 14d: {} → {} alarms, {} → {} in ALARM", c.alarms, p.alarms, backtest::human_seconds(c.seconds_in_alarm), backtest::human_seconds(p.seconds_in_alarm));
    assert!(out.stdout.contains(&line), "{line:?} missing from:\n{}", out.stdout);
    let charts = sc.path("charts");
    let out = ctl(&sc, &["plan", "-e", &sc.env_file(), "--markdown", "--chart-dir", &charts]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let row = format!("| `alarms.alarm.api-5xx` | {} → {} | {} → {} | {} → {} | `ctl-{env}-api-5xx.png` |", c.alarms, p.alarms, backtest::human_seconds(c.seconds_in_alarm), backtest::human_seconds(p.seconds_in_alarm), c.flaps, p.flaps);
    assert!(out.stdout.contains(&row), "{row:?} missing from:\n{}", out.stdout);
    let png = std::fs::read(std::path::Path::new(&charts).join(format!("ctl-{env}-api-5xx.png"))).expect("chart per alarm");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let tuned = change(&plan_json(&sc), "api-5xx");
    assert_eq!(tuned["backtest"]["current"]["alarms"], c.alarms, "{tuned:#}");
    assert_eq!(tuned["backtest"]["proposed"]["alarms"], p.alarms);
    let out = ctl(&sc, &["plan", "-e", &sc.env_file(), "--backtest-days", "0", "--json"]);
    assert!(!out.stdout.contains("\"backtest\""), "--backtest-days 0 reads no metric");
}

/// The alarms' subscription change in a `plan --json` document.
fn subscription_change(plan: &Value) -> &Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "alarms.subscription")
        .unwrap_or_else(|| panic!("no alarms.subscription change: {plan:#}"))
}

/// The webhook URL is read from `$ALARM_WEBHOOK_URL` or OpenBao KV, reaches SNS, and appears in
/// no output, log (`RUST_LOG=trace`), PR comment or saved plan: only `host (hmac:…)` does.
/// A literal URL in the file is refused before any call; a changed URL replaces the
/// subscription; a saved plan is refused if the URL changed since.
#[test]
fn the_webhook_url_is_a_secret() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("wh");
    let n = Names {
        topic: unique("t"),
        api: unique("api"),
    };
    let yaml = body(&moto, &n, "5");
    let sc = Scenario::new(stack, &env, &yaml);
    let hook = format!("https://127.0.0.1:9/hook/{}/canary-a-{}", unique("t"), unique("x"));
    let rotated = format!("https://127.0.0.1:9/hook/{}/canary-b-{}", unique("t"), unique("x"));
    sc.canary(hook.clone());
    sc.canary(rotated.clone());
    sc.canary(hook.rsplit('/').next().unwrap());
    let stand_in = ctl::alarms::webhook::stand_in(&env, &hook);
    assert!(stand_in.starts_with("127.0.0.1 (hmac:"), "{stand_in}");
    let run = |url: &str, args: &[&str]| sc.ctl_with_env(args, &[(WEBHOOK_ENV, url), ("RUST_LOG", "trace")]);
    let e = sc.env_file();

    // A literal URL in the file: a located error naming the way out, exit 1, no call made.
    sc.write_env(&yaml.replace("{ url_env: ALARM_WEBHOOK_URL }", &format!("\"{hook}\"")));
    let out = sc.ctl(&["plan", "-e", &e]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{e}:7:")) && out.stderr.contains("the webhook URL is a secret") && out.stderr.contains("url_env: ALARM_WEBHOOK_URL"),
        "{}",
        out.stderr
    );
    sc.write_env(&yaml);
    // Unset variable: a clear error.
    let out = sc.ctl(&["plan", "-e", &e]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("ALARM_WEBHOOK_URL is not set"), "{}", out.stderr);

    // Plan as text, JSON, PR comment and saved plan, all at trace level.
    let text = run(&hook, &["plan", "-e", &e, "--detail"]);
    assert_eq!(text.status, 0, "{}", text.stderr);
    assert!(text.stdout.contains(&stand_in), "{}", text.stdout);
    assert!(text.stderr.contains("INFO"), "RUST_LOG=trace is in force:\n{}", text.stderr);
    let json = run(&hook, &["plan", "-e", &e, "--json"]);
    assert_eq!(json.status, 0, "{}", json.stderr);
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(subscription_change(&plan)["after"]["attrs"]["endpoint"], stand_in.as_str());
    let md = run(&hook, &["plan", "-e", &e, "--markdown"]);
    assert_eq!(md.status, 0, "{}", md.stderr);
    assert!(md.stdout.contains("alarms.subscription"), "{}", md.stdout);
    let saved = sc.path("webhook.plan.json");
    let out = run(&hook, &["plan", "-e", &e, "--out", &saved]);
    assert_eq!(out.status, 0, "{}", out.stderr);

    // The saved plan, applied with another URL than it was made with: refused before any
    // call (the re-derived subscription differs from the saved one).
    let out = run(&rotated, &["apply", &saved, "-e", &e]);
    assert_ne!(out.status, 0, "{}", out.stdout);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("alarms.subscription: the saved change's after is not what") && said.contains("nothing was applied"), "{said}");
    let out = run(&hook, &["plan", "-e", &e, "--out", &saved]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = run(&hook, &["apply", &saved, "-e", &e]);
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    let out = run(&hook, &["plan", "-e", &e, "--detailed-exitcode"]);
    assert_eq!(out.status, 0, "no-op plan after apply:\n{}", out.stdout);

    // The URL itself reached SNS (the one Subscribe).
    let aws = aws(&moto, &env);
    let endpoints = runtime().block_on(async {
        let c = ctl::aws::sns::client(&aws);
        let arn = ctl::aws::sns::topics(&aws).await.unwrap()[&n.topic].clone();
        let subs = c.list_subscriptions_by_topic().topic_arn(arn).send().await.unwrap();
        subs.subscriptions().iter().map(|s| s.endpoint().unwrap_or_default().to_string()).collect::<Vec<_>>()
    });
    assert_eq!(endpoints, std::slice::from_ref(&hook));
    let status = run(&hook, &["alarms", "status", "-e", &e]);
    assert_eq!(status.status, 0, "{}", status.stderr);
    assert!(status.stdout.contains("https://127.0.0.1:9: confirmed"), "{}", status.stdout);

    // Rotated URL: a replace of the subscription, shown as two stand-ins.
    let out = run(&rotated, &["plan", "-e", &e, "--json"]);
    let plan: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.stderr));
    let (change, fields) = only_change(&plan);
    assert_eq!((change["address"].as_str(), change["action"].as_str()), (Some("alarms.subscription"), Some("replace")));
    assert_eq!(fields[0]["field"], "endpoint");
    assert_eq!(fields[0]["before"], stand_in.as_str());
    assert_eq!(fields[0]["after"], ctl::alarms::webhook::stand_in(&env, &rotated).as_str());
    let out = run(&rotated, &["apply", "-e", &e, "--auto-approve"]);
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);

    // The same URL from OpenBao KV v2: nothing to change.
    let mount = unique("hooks");
    let kv = |args: &[&str]| {
        let out = bao_cli(sc.stack(), None, args);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    kv(&["secrets", "enable", &format!("-path={mount}"), "kv-v2"]);
    kv(&["kv", "put", &format!("-mount={mount}"), "alarms/webhook", &format!("url={rotated}")]);
    sc.write_env(&yaml.replace(
        "{ url_env: ALARM_WEBHOOK_URL }",
        &format!("{{ url_kv: {{ mount: {mount}, path: alarms/webhook, field: url }} }}"),
    ));
    let out = sc.ctl_with_env(&["plan", "-e", &e, "--detailed-exitcode"], &[("RUST_LOG", "trace")]);
    assert_eq!(out.status, 0, "the KV URL is the applied one:\n{}\n{}", out.stdout, out.stderr);
    let out = sc.ctl_with_env(&["alarms", "status", "-e", &e], &[("RUST_LOG", "trace")]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("https://127.0.0.1:9: confirmed"), "{}", out.stdout);
    sc.write_env(&yaml.replace(
        "{ url_env: ALARM_WEBHOOK_URL }",
        &format!("{{ url_kv: {{ mount: {mount}, path: alarms/webhook, field: nope }} }}"),
    ));
    let out = sc.ctl(&["plan", "-e", &e]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("KV secret {mount}/alarms/webhook field nope: the secret has no such field")), "{}", out.stderr);

    sc.assert_no_canary();
}
