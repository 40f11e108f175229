//! Alarm changes in a plan, with their consequence: every alarm the plan creates, or changes in
//! how it evaluates, is backtested over the last days of its metric (the live rule against the
//! proposed one) and the numbers go under the change ([`PlanBacktest`]). Reading the metric can
//! fail or find nothing: the plan then says why, and plans anyway.

use super::backtest::{self, Comparison, MissingData, PlanBacktest, Rule, Series, SideBySide, Summary};
use super::resources::MetricAlarmAttrs;
use crate::aws::cloudwatch::{self, MetricId};
use crate::aws::Aws;
use crate::diff::{Action, Change};
use crate::model::{from_attrs, Kind};
use futures::stream::{self, StreamExt};
use std::path::Path;

/// Fields that change what an alarm evaluates or when it fires.
pub const EVALUATION_FIELDS: &[&str] = &[
    "namespace",
    "metric_name",
    "statistic",
    "dimensions",
    "period",
    "evaluation_periods",
    "datapoints_to_alarm",
    "threshold",
    "comparison_operator",
    "treat_missing_data",
];

/// Alarms read in parallel (each reads its metric in a few GetMetricData calls).
const PARALLEL: usize = 4;

/// Whether the plan should show this change's backtest.
pub fn wants_backtest(c: &Change) -> bool {
    c.kind == Kind::MetricAlarm
        && match c.action() {
            Action::Create => true,
            Action::Update | Action::Replace => c.fields().iter().any(|f| EVALUATION_FIELDS.contains(&f.field.as_str())),
            Action::Delete => false,
        }
}

/// The evaluation rule of an alarm's attributes.
pub fn rule(a: &MetricAlarmAttrs) -> Result<Rule, String> {
    Ok(Rule {
        comparison: Comparison::parse(&a.comparison_operator).ok_or_else(|| format!("comparison {:?} is not supported", a.comparison_operator))?,
        threshold: a.threshold,
        evaluation_periods: a.evaluation_periods as usize,
        datapoints_to_alarm: a.datapoints_to_alarm as usize,
        treat_missing_data: MissingData::parse(&a.treat_missing_data).ok_or_else(|| format!("treat_missing_data {:?} is not supported", a.treat_missing_data))?,
    })
}

/// Read `a`'s metric over the last `days` (period-aligned), as its statistic per period.
async fn series(aws: &Aws, a: &MetricAlarmAttrs, days: u32, now: i64) -> Result<Series, String> {
    let mut dimensions = std::collections::BTreeMap::new();
    for (k, v) in &a.dimensions {
        let value = cloudwatch::resolve_dimension(aws, v)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} does not exist yet, so its metric has no history", cloudwatch::referent(v)))?;
        dimensions.insert(k.clone(), value);
    }
    let period = a.period.max(1) as i64;
    let end = now - now.rem_euclid(period);
    let start = end - i64::from(days) * 86_400;
    let metric = MetricId { namespace: a.namespace.clone(), name: a.metric_name.clone(), dimensions };
    cloudwatch::metric_series(aws, &metric, &a.statistic, period, start, end)
        .await
        .map_err(|e| format!("reading {}/{}: {e}", a.namespace, a.metric_name))
}

/// The backtest of one change. `chart`: where to draw it (PNG), if asked.
async fn one(aws: &Aws, c: &Change, days: u32, now: i64, chart: Option<&Path>) -> PlanBacktest {
    let attrs = |r: Option<&crate::model::Resource>| r.map(|r| from_attrs::<MetricAlarmAttrs>(&r.attrs).map_err(|e| e.to_string())).transpose();
    let result: Result<PlanBacktest, String> = async {
        let after = attrs(c.after())?.ok_or("the change has no desired alarm")?;
        let before = attrs(c.before())?;
        let proposed_rule = rule(&after)?;
        let proposed_series = series(aws, &after, days, now).await?;
        if proposed_series.values.iter().all(Option::is_none) {
            return Err(format!("{}/{} has no datapoints in the last {days} days", after.namespace, after.metric_name));
        }
        let proposed = backtest::backtest(&proposed_series, &proposed_rule);
        let same_metric = |b: &MetricAlarmAttrs| {
            (&b.namespace, &b.metric_name, &b.statistic, &b.dimensions, b.period) == (&after.namespace, &after.metric_name, &after.statistic, &after.dimensions, after.period)
        };
        let current = match &before {
            None => None,
            Some(b) if same_metric(b) => Some(backtest::backtest(&proposed_series, &rule(b)?)),
            Some(b) => Some(backtest::backtest(&series(aws, b, days, now).await?, &rule(b)?)),
        };
        let mut chart_name = None;
        if let Some(file) = chart {
            // Both rules over one line only when they read the same series.
            let shown = match (&before, &current) {
                (Some(b), Some(cur)) if same_metric(b) => cur.clone(),
                _ => proposed.clone(),
            };
            let title = format!("{} ({}d): {} per {}s", after.alarm_name, days, after.statistic, after.period);
            match super::chart::draw(file, &title, &proposed_series, &SideBySide { current: shown, proposed: proposed.clone() }) {
                Ok(()) => chart_name = file.file_name().map(|n| n.to_string_lossy().into_owned()),
                Err(e) => tracing::warn!(alarm = %after.alarm_name, error = %e, "could not draw the backtest chart"),
            }
        }
        Ok(PlanBacktest::Done { days, current: current.as_ref().map(Summary::from), proposed: Summary::from(&proposed), chart: chart_name })
    }
    .await;
    result.unwrap_or_else(|why| PlanBacktest::Unavailable { why })
}

/// Add a backtest to every change that [`wants_backtest`], reading each metric once (twice when
/// the change moves the alarm to another metric, statistic or period). `chart_dir`: one PNG per
/// alarm, named after the alarm.
pub async fn annotate(aws: &Aws, changes: &mut [Change], days: u32, chart_dir: Option<&Path>) {
    let now = super::mute::now();
    if let Some(dir) = chart_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the chart directory; no charts");
        }
    }
    let picked: Vec<usize> = changes.iter().enumerate().filter(|(_, c)| wants_backtest(c)).map(|(i, _)| i).collect();
    let shared: &[Change] = changes;
    let results: Vec<(usize, PlanBacktest)> = stream::iter(picked.into_iter().map(|i| {
        let c = &shared[i];
        let chart = chart_dir.map(|d| d.join(format!("{}.png", c.resource().name)));
        async move { (i, one(aws, c, days, now, chart.as_deref()).await) }
    }))
    .buffer_unordered(PARALLEL)
    .collect()
    .await;
    for (i, b) in results {
        changes[i].backtest = Some(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{ChangeReason, FieldChange, Op};
    use crate::model::{Address, Resource, Scope};

    fn change(action: Action, fields: &[&str]) -> Change {
        let r = Resource {
            address: Address::new("alarms.alarm.x"),
            kind: Kind::MetricAlarm,
            scope: Scope::Root,
            name: "ctl-e-x".into(),
            attrs: Default::default(),
            depends_on: vec![],
            container: None,
        };
        let fields = fields.iter().map(|f| FieldChange { field: f.to_string(), before: None, after: None, forces_replace: false }).collect();
        let op = match action {
            Action::Create => Op::Create { after: r },
            Action::Update => Op::Update { before: r.clone(), after: r, fields },
            Action::Replace => Op::Replace { before: r.clone(), after: r, fields },
            Action::Delete => Op::Delete { before: r, implied_by: None },
        };
        Change::new(op, ChangeReason::Absent, false)
    }

    #[test]
    fn only_changes_to_how_an_alarm_evaluates_are_backtested() {
        assert!(wants_backtest(&change(Action::Create, &[])));
        assert!(wants_backtest(&change(Action::Update, &["threshold"])));
        assert!(wants_backtest(&change(Action::Update, &["description", "dimensions"])));
        assert!(!wants_backtest(&change(Action::Update, &["description", "alarm_actions"])));
        assert!(!wants_backtest(&change(Action::Update, &["actions_enabled"])), "a mute is not a rule change");
        assert!(!wants_backtest(&change(Action::Delete, &[])));
        let mut topic = change(Action::Create, &[]);
        topic.kind = Kind::SnsTopic;
        assert!(!wants_backtest(&topic));
    }
}
