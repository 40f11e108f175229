//! The on-call reports of `ctl alarms`: a backtest of an alarm's rule, current against
//! proposed, as text and as a pull-request description.

use crate::alarms::backtest::{self, human_seconds, Rule, Series, SideBySide};
use crate::alarms::resources::alarm_name;
use crate::alarms::tune;
use crate::config::{Alarm, Environment};

fn fmt(x: f64) -> String {
    tune::format_threshold(x)
}

fn header(env: &Environment, a: &Alarm, series: &Series, rule: &Rule, days: u32) -> String {
    let with_data = series.values.iter().filter(|v| v.is_some()).count();
    let (ns, metric, _, _) = a.kind.metric();
    format!(
        "{} ({}): {ns} {metric} {} per {}s, ALARM when {} of {} datapoints {} threshold, missing data: {}; last {days} days ({} periods, {with_data} with data)",
        a.name,
        alarm_name(&env.name, &a.name),
        a.statistic.as_str(),
        a.period,
        rule.datapoints_to_alarm,
        rule.evaluation_periods,
        rule.comparison.symbol(),
        rule.treat_missing_data.as_str(),
        series.values.len(),
    )
}

fn rows(r: &SideBySide) -> [(String, String, String); 4] {
    [
        ("threshold".into(), fmt(r.current.threshold), fmt(r.proposed.threshold)),
        (
            "alarms".into(),
            r.current.alarms.to_string(),
            r.proposed.alarms.to_string(),
        ),
        (
            "time in ALARM".into(),
            human_seconds(r.current.seconds_in_alarm),
            human_seconds(r.proposed.seconds_in_alarm),
        ),
        (
            format!("flaps (back within {}×M periods)", backtest::FLAP_WINDOWS),
            r.current.flaps.to_string(),
            r.proposed.flaps.to_string(),
        ),
    ]
}

/// `ctl alarms backtest` / `recommend`: the rule, then current against proposed.
pub fn text_report(env: &Environment, a: &Alarm, series: &Series, rule: &Rule, r: &SideBySide, days: u32) -> String {
    let mut out = header(env, a, series, rule, days);
    out.push_str("\n\n");
    out.push_str(&format!("{:<36} {:>14} {:>14}\n", "", "current", "proposed"));
    for (k, c, p) in rows(r) {
        out.push_str(&format!("{k:<36} {c:>14} {p:>14}\n"));
    }
    out
}

/// `ctl alarms tune --markdown`: the same as a pull-request description.
pub fn markdown_report(
    env: &Environment,
    a: &Alarm,
    series: &Series,
    rule: &Rule,
    r: &SideBySide,
    days: u32,
) -> String {
    let mut out = format!(
        "### Tune alarm `{}`: threshold {} → {}\n\nBacktest: {}\n\n| | current | proposed |\n|---|---:|---:|\n",
        a.name,
        fmt(r.current.threshold),
        fmt(r.proposed.threshold),
        header(env, a, series, rule, days)
    );
    for (k, c, p) in rows(r) {
        out.push_str(&format!("| {k} | {c} | {p} |\n"));
    }
    out.push_str(&format!("\nRunbook: {}\n", a.runbook_url));
    out
}
