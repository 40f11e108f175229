//! `ctl alarms …`: on-call tooling for the CloudWatch alarms declared in `alarms:`.
//!
//! These commands talk to AWS only (never OpenBao). History: moto has no DescribeAlarmHistory,
//! and ctl keeps its own records instead — the current mute lives in the alarm's tags
//! (`ctl-muted-until`, `ctl-mute-reason`, read by every `ctl plan`), and threshold changes are
//! edits of the environment file, so git is their history.

use super::{CmdResult, EnvArgs};
use crate::alarms::backtest::{self, Rule, Series, SideBySide};
use crate::alarms::mute::{self, Mute};
use crate::alarms::recommend::{self, DEFAULT_MARGIN};
use crate::alarms::resources::{alarm_address, alarm_name, health_check_address};
use crate::alarms::{chart, tune};
use crate::aws::cloudwatch::{self, MetricId};
use crate::aws::Aws;
use crate::config::{Alarm, AlarmKind, Environment};
use crate::render;
use anyhow::{bail, Context};
use serde_json::json;
use std::path::PathBuf;
use super::Status;

#[derive(clap::Subcommand, Debug)]
pub enum AlarmsCommand {
    /// Every declared alarm: state, threshold, last state change, muted until; and whether the
    /// webhook subscription is confirmed (a PendingConfirmation endpoint receives no alarms).
    Status {
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Replay the alarm's metric (GetMetricData) over the last days with the current and a
    /// proposed threshold: alarms raised, time in ALARM, flaps, side by side.
    Backtest {
        /// The alarm's name in the environment file.
        alarm: String,
        /// The proposed threshold.
        #[arg(long)]
        threshold: f64,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Percentiles (p50/p90/p99/max) of the alarm's datapoints and a proposed threshold
    /// (p99 × margin), with its backtest.
    Recommend {
        alarm: String,
        /// Head-room over p99 (alarms on low values: p1 ÷ margin).
        #[arg(long, default_value_t = DEFAULT_MARGIN)]
        margin: f64,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Set the alarm's threshold in the environment file (only that value changes: comments and
    /// layout stay byte for byte) and print the backtest as markdown for the pull request.
    /// The change is applied by the usual review → `ctl apply`; git keeps the history.
    Tune {
        alarm: String,
        #[arg(long)]
        threshold: f64,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Disable the alarm's actions for a while (DisableAlarmActions) and record why and until
    /// when in the alarm's tags. The first `ctl plan`/`apply` after expiry restores the actions.
    /// Only the current mute is kept (moto has no alarm history).
    Mute {
        alarm: String,
        /// How long, e.g. 30m, 2h.
        #[arg(long = "for", value_name = "DURATION")]
        duration: crate::config::Duration,
        /// Why (kept in the mute record).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Re-enable the alarm's actions now and delete the mute record.
    Unmute {
        alarm: String,
        #[command(flatten)]
        env: EnvArgs,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct Window {
    /// Days of history to replay.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=455))]
    pub days: u32,
    /// Also draw the metric, both thresholds and the would-be ALARM periods to this file:
    /// SVG or PNG, by its extension.
    #[arg(long, value_name = "FILE.svg|FILE.png", value_parser = chart_file)]
    pub chart: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--chart`: the extension is checked while parsing arguments, before any AWS call.
fn chart_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    chart::Format::of(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

pub async fn run(cmd: AlarmsCommand) -> CmdResult {
    match cmd {
        AlarmsCommand::Status { env } => status(&env).await,
        AlarmsCommand::Backtest {
            alarm,
            threshold,
            window,
            env,
        } => {
            let (env, aws) = connect(&env).await?;
            let a = declared(&env, &alarm)?;
            let (series, rule) = fetch(&aws, &env, a, window.days).await?;
            let result = backtest::compare(&series, &rule, threshold);
            draw(&window, &env, a, &series, &result)?;
            if window.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "alarm": a.name, "periods": series.values.len(), "current": result.current, "proposed": result.proposed })
                    )?
                );
            } else {
                print!("{}", render::alarms::text_report(&env, a, &series, &rule, &result, window.days));
            }
            Ok(Status::Success)
        }
        AlarmsCommand::Recommend {
            alarm,
            margin,
            window,
            env,
        } => {
            if !(margin.is_finite() && margin > 0.0) {
                bail!("--margin must be a positive number");
            }
            let (env, aws) = connect(&env).await?;
            let a = declared(&env, &alarm)?;
            let (series, rule) = fetch(&aws, &env, a, window.days).await?;
            let Some(r) = recommend::recommend(&series, &rule, margin) else {
                bail!(
                    "alarm {alarm}: no datapoints in the last {} days; nothing to recommend",
                    window.days
                );
            };
            draw(&window, &env, a, &series, &r.backtest)?;
            if window.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let p = &r.percentiles;
                println!(
                    "{} datapoints: p50 {} · p90 {} · p99 {} · max {}",
                    p.count,
                    fmt(p.p50),
                    fmt(p.p90),
                    fmt(p.p99),
                    fmt(p.max)
                );
                let basis = if rule.comparison.upward() { "p99 ×" } else { "p1 ÷" };
                println!("proposed threshold: {} ({basis} {margin})\n", fmt(r.proposed));
                print!("{}", render::alarms::text_report(&env, a, &series, &rule, &r.backtest, window.days));
                println!(
                    "\nTo apply: ctl alarms tune {} --threshold {} -e {}",
                    a.name,
                    fmt(r.proposed),
                    env.file.display()
                );
            }
            Ok(Status::Success)
        }
        AlarmsCommand::Tune {
            alarm,
            threshold,
            window,
            env: args,
        } => {
            let env = crate::config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))?;
            let a = declared(&env, &alarm)?.clone();
            if !threshold.is_finite() {
                bail!("--threshold must be a finite number");
            }
            if let Some(max) = a.max_connections.filter(|m| threshold > f64::from(*m)) {
                bail!("--threshold {threshold} exceeds the alarm's max_connections {max}");
            }
            let text = std::fs::read_to_string(&env.file).with_context(|| format!("reading {}", env.file.display()))?;
            let mut path = a.yaml_path.clone();
            path.push(crate::config::PathSeg::key("threshold"));
            let (new_text, old) = tune::set_threshold(&env.file, &text, &path, threshold)?;
            // Backtest before writing: a failure leaves the file untouched.
            let aws = Aws::connect(aws_conn(&env)?, &env.name).await?;
            let (series, rule) = fetch(&aws, &env, &a, window.days).await?;
            let result = backtest::compare(&series, &rule, threshold);
            draw(&window, &env, &a, &series, &result)?;
            std::fs::write(&env.file, new_text).with_context(|| format!("writing {}", env.file.display()))?;
            eprintln!(
                "{}: {} threshold {old} → {}",
                env.file.display(),
                a.name,
                tune::format_threshold(threshold)
            );
            print!("{}", render::alarms::markdown_report(&env, &a, &series, &rule, &result, window.days));
            Ok(Status::Success)
        }
        AlarmsCommand::Mute {
            alarm,
            duration,
            reason,
            env,
        } => {
            let (env, aws) = connect(&env).await?;
            let a = declared(&env, &alarm)?;
            if reason.trim().is_empty() {
                bail!("--reason must say why (it is kept with the mute)");
            }
            let until = mute::now() + i64::try_from(duration.0).unwrap_or(i64::MAX / 2);
            let record = Mute { until, reason };
            let name = alarm_name(&env.name, &a.name);
            cloudwatch::mute(&aws, &name, &alarm_address(&a.name), &record)
                .await
                .with_context(|| format!("muting {name}"))?;
            println!("Muted {} until {} ({}). `ctl alarms unmute {}` ends it early; after that time the next `ctl apply` restores its actions.", a.name, mute::rfc3339(until), mute::tag_safe(&record.reason), a.name);
            Ok(Status::Success)
        }
        AlarmsCommand::Unmute { alarm, env } => {
            let (env, aws) = connect(&env).await?;
            let a = declared(&env, &alarm)?;
            let name = alarm_name(&env.name, &a.name);
            cloudwatch::unmute(&aws, &name, &alarm_address(&a.name))
                .await
                .with_context(|| format!("unmuting {name}"))?;
            println!("Unmuted {}: actions enabled.", a.name);
            Ok(Status::Success)
        }
    }
}

fn aws_conn(env: &Environment) -> anyhow::Result<&crate::config::AwsConnection> {
    env.aws
        .as_ref()
        .with_context(|| format!("environment {} has no aws: section", env.name))
}

async fn connect(args: &EnvArgs) -> anyhow::Result<(Environment, Aws)> {
    let env = crate::config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let aws = Aws::connect(aws_conn(&env)?, &env.name).await?;
    Ok((env, aws))
}

fn declared<'a>(env: &'a Environment, name: &str) -> anyhow::Result<&'a Alarm> {
    let Some(cfg) = &env.alarms else {
        bail!("{} declares no alarms: section", env.file.display())
    };
    cfg.alarm(name).with_context(|| {
        let names: Vec<&str> = cfg.alarms.iter().map(|a| a.name.as_str()).collect();
        format!(
            "no alarm {name:?} in {} (declared: {})",
            env.file.display(),
            names.join(", ")
        )
    })
}

pub fn rule(a: &Alarm) -> Rule {
    Rule {
        comparison: a.kind.metric().3,
        threshold: a.threshold,
        evaluation_periods: a.evaluation_periods as usize,
        datapoints_to_alarm: a.datapoints_to_alarm as usize,
        treat_missing_data: a.treat_missing_data,
    }
}

/// The metric of a declared alarm (a route53_health alarm's health check id is looked up).
pub async fn metric(aws: &Aws, env: &Environment, a: &Alarm) -> anyhow::Result<MetricId> {
    let (namespace, name, _, _) = a.kind.metric();
    let mut dimensions = a.dimensions.clone();
    if a.kind == AlarmKind::Route53Health {
        let address = health_check_address(&a.name);
        let id = crate::aws::route53::id_of(aws, address.as_str())
            .await?
            .with_context(|| {
                format!(
                    "the health check of {} does not exist yet (run ctl apply -e {})",
                    a.name,
                    env.file.display()
                )
            })?;
        dimensions.insert(crate::alarms::resources::HEALTH_CHECK_DIMENSION.into(), id);
    }
    Ok(MetricId {
        namespace: namespace.into(),
        name: name.into(),
        dimensions,
    })
}

/// The alarm's datapoints over the last `days` (period-aligned) and its rule.
pub async fn fetch(aws: &Aws, env: &Environment, a: &Alarm, days: u32) -> anyhow::Result<(Series, Rule)> {
    let metric = metric(aws, env, a).await?;
    let period = i64::from(a.period);
    let end = mute::now() - mute::now().rem_euclid(period);
    let start = end - i64::from(days) * 86_400;
    let series = cloudwatch::metric_series(aws, &metric, a.statistic.as_str(), period, start, end)
        .await
        .with_context(|| format!("reading {}/{} for {}", metric.namespace, metric.name, a.name))?;
    Ok((series, rule(a)))
}

fn draw(window: &Window, env: &Environment, a: &Alarm, series: &Series, result: &SideBySide) -> anyhow::Result<()> {
    if let Some(file) = &window.chart {
        let title = format!(
            "{} ({}): {} per {}s, last {} days",
            a.name,
            env.name,
            a.statistic.as_str(),
            a.period,
            window.days
        );
        chart::draw(file, &title, series, result)?;
        eprintln!("chart: {}", file.display());
    }
    Ok(())
}

fn fmt(x: f64) -> String {
    tune::format_threshold(x)
}

async fn status(args: &EnvArgs) -> CmdResult {
    let (env, aws) = connect(args).await?;
    let Some(cfg) = &env.alarms else {
        bail!("{} declares no alarms: section", env.file.display())
    };
    let live = cloudwatch::alarms_with_prefix(&aws, &crate::alarms::resources::alarm_prefix(&env.name)).await?;
    let now = mute::now();
    let mut table = vec![[
        "alarm".to_string(),
        "state".into(),
        "threshold".into(),
        "last state change".into(),
        "muted until".into(),
    ]];
    for a in &cfg.alarms {
        let name = alarm_name(&env.name, &a.name);
        let row = match live.iter().find(|l| l.alarm.alarm_name() == Some(name.as_str())) {
            None => [
                a.name.clone(),
                "(not created)".into(),
                fmt(a.threshold),
                "-".into(),
                "-".into(),
            ],
            Some(l) => {
                let muted = match l.mute() {
                    Some(m) if m.active(now) => format!("{} ({})", mute::rfc3339(m.until), m.reason),
                    Some(m) => format!("expired {} (ctl apply restores actions)", mute::rfc3339(m.until)),
                    None if l.alarm.actions_enabled() == Some(false) => "actions disabled (no mute record)".into(),
                    None => "-".into(),
                };
                [
                    a.name.clone(),
                    l.alarm.state_value().map_or("?", |s| s.as_str()).to_string(),
                    l.alarm.threshold().map_or("?".into(), fmt),
                    l.alarm
                        .state_updated_timestamp()
                        .map_or("-".into(), |t| mute::rfc3339(t.secs())),
                    muted,
                ]
            }
        };
        table.push(row);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    // OpenBao is contacted only when the URL is kept there.
    let bao = match cfg.webhook {
        crate::config::WebhookSource::Kv { .. } => Some(super::context::connect(&env, args.parallelism, crate::openbao::access::Role::Plan).await?),
        crate::config::WebhookSource::Env(_) => None,
    };
    let url = crate::alarms::webhook::resolve(&cfg.webhook, bao.as_ref()).await?;
    let webhook = crate::aws::sns::webhook_state(&aws, &cfg.topic, &url)
        .await
        .with_context(|| format!("reading the subscriptions of topic {}", cfg.topic))?;
    println!("\nwebhook ({}): {}", cfg.topic, webhook.describe());
    Ok(Status::Success)
}
