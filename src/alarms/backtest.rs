//! The backtest engine (pure): replays a metric series through CloudWatch's alarm evaluation
//! and reports what the alarm would have done.
//!
//! Semantics (CloudWatch's documented model, with one stated simplification):
//! - the metric is aggregated per `period` with the alarm's statistic (one datapoint per period,
//!   or none: *missing*);
//! - after every period the alarm evaluates the last M = `evaluation_periods` datapoints (the
//!   evaluation range) and goes to ALARM when at least N = `datapoints_to_alarm` of them breach
//!   (N of M);
//! - missing datapoints follow `treat_missing_data`:
//!   - `notBreaching`: a missing datapoint counts as within the threshold;
//!   - `breaching`: a missing datapoint counts as breaching;
//!   - `missing`: missing datapoints are neither; if *every* datapoint of the range is missing the
//!     alarm goes to INSUFFICIENT_DATA, otherwise it is ALARM with ≥ N breaching, else OK;
//!   - `ignore`: like `missing`, except that a range with no datapoint at all keeps the current
//!     state ("the current alarm state is maintained");
//! - the state starts as INSUFFICIENT_DATA; the first M−1 evaluations see a range padded with
//!   missing datapoints (the alarm did not exist before the series starts).
//!
//! Simplification: CloudWatch, for `missing`/`ignore`, may look further back than M periods to
//! find M datapoints; this engine never looks past the evaluation range. Evaluation is
//! instantaneous at each period's end (no ingestion delay).
//!
//! A **flap** is a return to ALARM soon after leaving it: an ALARM episode that starts at most
//! [`FLAP_WINDOWS`] × M periods after the previous ALARM episode ended. Each such re-entry counts
//! once.
//!
//! Cost: one pass over the series with running counts (O(n), no allocation per period).

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ALARM→OK→ALARM cycle is a flap when the alarm is back within this many evaluation ranges.
pub const FLAP_WINDOWS: usize = 3;

/// How the datapoints of a period are combined.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Statistic {
    Sum,
    Average,
    Maximum,
    Minimum,
    SampleCount,
}

impl Statistic {
    pub const ALL: [Statistic; 5] = [
        Statistic::Sum,
        Statistic::Average,
        Statistic::Maximum,
        Statistic::Minimum,
        Statistic::SampleCount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Sum => "Sum",
            Statistic::Average => "Average",
            Statistic::Maximum => "Maximum",
            Statistic::Minimum => "Minimum",
            Statistic::SampleCount => "SampleCount",
        }
    }

    pub fn parse(s: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The alarm's comparison of a datapoint with the threshold.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanThreshold,
    GreaterThanOrEqualToThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub const ALL: [Comparison; 4] = [
        Comparison::GreaterThanThreshold,
        Comparison::GreaterThanOrEqualToThreshold,
        Comparison::LessThanThreshold,
        Comparison::LessThanOrEqualToThreshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    pub fn parse(s: &str) -> Option<Comparison> {
        Comparison::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThanThreshold => ">",
            Comparison::GreaterThanOrEqualToThreshold => ">=",
            Comparison::LessThanThreshold => "<",
            Comparison::LessThanOrEqualToThreshold => "<=",
        }
    }

    /// Whether high values are bad (alarms on `>`/`>=`).
    pub fn upward(self) -> bool {
        matches!(
            self,
            Comparison::GreaterThanThreshold | Comparison::GreaterThanOrEqualToThreshold
        )
    }

    #[inline]
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

/// `treat_missing_data`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MissingData {
    #[serde(rename = "missing")]
    Missing,
    #[serde(rename = "notBreaching")]
    NotBreaching,
    #[serde(rename = "breaching")]
    Breaching,
    #[serde(rename = "ignore")]
    Ignore,
}

impl MissingData {
    pub const ALL: [MissingData; 4] = [
        MissingData::Missing,
        MissingData::NotBreaching,
        MissingData::Breaching,
        MissingData::Ignore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MissingData::Missing => "missing",
            MissingData::NotBreaching => "notBreaching",
            MissingData::Breaching => "breaching",
            MissingData::Ignore => "ignore",
        }
    }

    pub fn parse(s: &str) -> Option<MissingData> {
        MissingData::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An alarm state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum State {
    Ok,
    Alarm,
    InsufficientData,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ok => "OK",
            State::Alarm => "ALARM",
            State::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// The evaluation rule of an alarm (everything but the metric).
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct Rule {
    pub comparison: Comparison,
    pub threshold: f64,
    /// M.
    pub evaluation_periods: usize,
    /// N (1 ≤ N ≤ M).
    pub datapoints_to_alarm: usize,
    pub treat_missing_data: MissingData,
}

/// One datapoint per period (`None`: missing), starting at `start` (epoch seconds).
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Series {
    pub start: i64,
    pub period: i64,
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// The start (epoch seconds) of period `i`.
    pub fn time(&self, i: usize) -> i64 {
        self.start + self.period * i as i64
    }

    /// Aggregate raw samples `(epoch seconds, value)` into periods of `period` seconds over
    /// `[start, end)` with `stat` (samples outside the window are dropped).
    pub fn aggregate(samples: &[(i64, f64)], start: i64, end: i64, period: i64, stat: Statistic) -> Series {
        let n = usize::try_from((end - start).max(0) / period.max(1)).unwrap_or(0);
        // (sum, count, min, max) per period.
        let mut acc: Vec<(f64, u64, f64, f64)> = vec![(0.0, 0, f64::INFINITY, f64::NEG_INFINITY); n];
        for &(t, v) in samples {
            if t < start || t >= end {
                continue;
            }
            let i = ((t - start) / period) as usize;
            if let Some(a) = acc.get_mut(i) {
                a.0 += v;
                a.1 += 1;
                a.2 = a.2.min(v);
                a.3 = a.3.max(v);
            }
        }
        let values = acc
            .into_iter()
            .map(|(sum, count, min, max)| {
                (count > 0).then(|| match stat {
                    Statistic::Sum => sum,
                    Statistic::Average => sum / count as f64,
                    Statistic::Maximum => max,
                    Statistic::Minimum => min,
                    Statistic::SampleCount => count as f64,
                })
            })
            .collect();
        Series { start, period, values }
    }
}

/// What a rule would have done over a series.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Outcome {
    pub threshold: f64,
    /// Entries into ALARM.
    pub alarms: usize,
    /// Periods spent in ALARM × period, in seconds.
    pub seconds_in_alarm: i64,
    /// Re-entries into ALARM within [`FLAP_WINDOWS`] evaluation ranges of leaving it.
    pub flaps: usize,
    /// ALARM episodes as `[start, end)` epoch seconds (for charts).
    pub episodes: Vec<(i64, i64)>,
}

/// The state after each period of `series` under `rule` (same length as the series).
pub fn timeline(series: &Series, rule: &Rule) -> Vec<State> {
    let mut out = Vec::with_capacity(series.values.len());
    evaluate(series, rule, |_, s| out.push(s));
    out
}

/// Run the rule over the series and summarise.
pub fn backtest(series: &Series, rule: &Rule) -> Outcome {
    let m = rule.evaluation_periods.max(1);
    let mut alarms = 0;
    let mut alarm_periods: i64 = 0;
    let mut flaps = 0;
    let mut episodes: Vec<(i64, i64)> = Vec::new();
    let mut prev = State::InsufficientData;
    // Index of the first period after the last ALARM episode ended.
    let mut last_end: Option<usize> = None;
    evaluate(series, rule, |i, s| {
        if s == State::Alarm {
            alarm_periods += 1;
            if prev != State::Alarm {
                alarms += 1;
                if last_end.is_some_and(|end| i - end <= FLAP_WINDOWS * m) {
                    flaps += 1;
                }
                episodes.push((series.time(i), series.time(i + 1)));
            } else if let Some(e) = episodes.last_mut() {
                e.1 = series.time(i + 1);
            }
        } else if prev == State::Alarm {
            last_end = Some(i);
        }
        prev = s;
    });
    Outcome {
        threshold: rule.threshold,
        alarms,
        seconds_in_alarm: alarm_periods * series.period,
        flaps,
        episodes,
    }
}

/// The heart: one pass with running counts of breaching and missing datapoints in the range.
fn evaluate(series: &Series, rule: &Rule, mut emit: impl FnMut(usize, State)) {
    #[derive(Clone, Copy, PartialEq)]
    enum Point {
        Breach,
        Good,
        Missing,
    }
    let classify = |v: Option<f64>| match v {
        Some(x) if rule.comparison.breaches(x, rule.threshold) => Point::Breach,
        Some(_) => Point::Good,
        None => match rule.treat_missing_data {
            MissingData::Breaching => Point::Breach,
            MissingData::NotBreaching => Point::Good,
            MissingData::Missing | MissingData::Ignore => Point::Missing,
        },
    };
    let m = rule.evaluation_periods.max(1);
    let n = rule.datapoints_to_alarm.clamp(1, m);
    let values = &series.values;
    // Periods before the series are "no data": padding counts as a missing datapoint, which
    // `breaching`/`notBreaching` substitute like any other.
    let pad = classify(None);
    let (mut breaching, mut missing) = match pad {
        Point::Breach => (m, 0),
        Point::Good => (0, 0),
        Point::Missing => (0, m),
    };
    let mut state = State::InsufficientData;
    for i in 0..values.len() {
        let incoming = classify(values[i]);
        let outgoing = if i >= m { classify(values[i - m]) } else { pad };
        match outgoing {
            Point::Breach => breaching -= 1,
            Point::Missing => missing -= 1,
            Point::Good => {}
        }
        match incoming {
            Point::Breach => breaching += 1,
            Point::Missing => missing += 1,
            Point::Good => {}
        }
        state = if breaching >= n {
            State::Alarm
        } else if missing == m {
            match rule.treat_missing_data {
                MissingData::Ignore => state,
                _ => State::InsufficientData,
            }
        } else {
            State::Ok
        };
        emit(i, state);
    }
}

/// Current and proposed rule over the same series.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct SideBySide {
    pub current: Outcome,
    pub proposed: Outcome,
}

/// Backtest the rule at its current threshold and at `proposed`.
pub fn compare(series: &Series, rule: &Rule, proposed: f64) -> SideBySide {
    let current = backtest(series, rule);
    let proposed = backtest(
        series,
        &Rule {
            threshold: proposed,
            ..*rule
        },
    );
    SideBySide { current, proposed }
}

/// The numbers a plan shows for one rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub alarms: usize,
    pub seconds_in_alarm: i64,
    pub flaps: usize,
}

impl From<&Outcome> for Summary {
    fn from(o: &Outcome) -> Summary {
        Summary { alarms: o.alarms, seconds_in_alarm: o.seconds_in_alarm, flaps: o.flaps }
    }
}

/// What a plan says about an alarm change: the backtest of the live rule (none for a new
/// alarm) and of the proposed one over the same days of the metric, or why there is none.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlanBacktest {
    Done {
        days: u32,
        /// `None`: the alarm does not exist yet.
        current: Option<Summary>,
        proposed: Summary,
        /// The chart written with `--chart-dir` (file name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chart: Option<String>,
    },
    Unavailable { why: String },
}

impl PlanBacktest {
    /// `backtest 14d: 0 → 15 alarms, 0m → 3h 35m in ALARM, 0 → 2 flaps` (or `no backtest: why`).
    pub fn line(&self) -> String {
        match self {
            PlanBacktest::Done { days, current, proposed, .. } => {
                let c = current.unwrap_or(Summary { alarms: 0, seconds_in_alarm: 0, flaps: 0 });
                format!(
                    "backtest {days}d: {} → {} alarms, {} → {} in ALARM, {} → {} flaps{}",
                    c.alarms,
                    proposed.alarms,
                    human_seconds(c.seconds_in_alarm),
                    human_seconds(proposed.seconds_in_alarm),
                    c.flaps,
                    proposed.flaps,
                    if current.is_none() { " (new alarm)" } else { "" }
                )
            }
            PlanBacktest::Unavailable { why } => format!("no backtest: {why}"),
        }
    }
}

/// `3d 4h 5m` style.
pub fn human_seconds(secs: i64) -> String {
    if secs == 0 {
        return "0m".into();
    }
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Alarm as A, InsufficientData as I, Ok as O};

    const X: Option<f64> = Some(10.0); // breaching (> 5)
    const G: Option<f64> = Some(1.0); // good
    const M: Option<f64> = None; // missing

    fn series(values: &[Option<f64>]) -> Series {
        Series {
            start: 0,
            period: 60,
            values: values.to_vec(),
        }
    }

    fn rule(m: usize, n: usize, missing: MissingData) -> Rule {
        Rule {
            comparison: Comparison::GreaterThanThreshold,
            threshold: 5.0,
            evaluation_periods: m,
            datapoints_to_alarm: n,
            treat_missing_data: missing,
        }
    }

    // The series used for every missing-data mode, with the ranges (M = 3) evaluated by hand:
    //   i:      0  1  2  3  4  5  6  7  8  9
    //   value:  X  G  X  M  M  M  X  X  G  M
    const S: [Option<f64>; 10] = [X, G, X, M, M, M, X, X, G, M];

    #[test]
    fn plan_lines_read_as_consequences() {
        let s = |alarms, seconds_in_alarm, flaps| Summary { alarms, seconds_in_alarm, flaps };
        let done = PlanBacktest::Done { days: 14, current: Some(s(0, 0, 0)), proposed: s(15, 12_900, 2), chart: None };
        assert_eq!(done.line(), "backtest 14d: 0 → 15 alarms, 0m → 3h 35m in ALARM, 0 → 2 flaps");
        let new = PlanBacktest::Done { days: 7, current: None, proposed: s(1, 300, 0), chart: None };
        assert_eq!(new.line(), "backtest 7d: 0 → 1 alarms, 0m → 5m in ALARM, 0 → 0 flaps (new alarm)");
        assert_eq!(PlanBacktest::Unavailable { why: "x".into() }.line(), "no backtest: x");
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(json["status"], "done");
        assert_eq!(json["proposed"]["alarms"], 15);
    }

    #[test]
    fn two_of_three_missing_as_missing() {
        // Ranges (pad = missing): [-,-,X] [-,X,G] [X,G,X] [G,X,M] [X,M,M] [M,M,M] [M,M,X] [M,X,X] [X,X,G] [X,G,M]
        // breaching:               1       1       2       1       1       0       1       2       2       1
        // all missing?             no      no      no      no      no      yes     no      no      no      no
        let expected = [O, O, A, O, O, I, O, A, A, O];
        assert_eq!(timeline(&series(&S), &rule(3, 2, MissingData::Missing)), expected);
    }

    #[test]
    fn two_of_three_ignore_keeps_state_on_empty_range() {
        // Same as `missing` except i=5 (all missing) keeps OK from i=4.
        let expected = [O, O, A, O, O, O, O, A, A, O];
        assert_eq!(timeline(&series(&S), &rule(3, 2, MissingData::Ignore)), expected);
        // …and keeps ALARM when the range empties out right after an ALARM.
        let s = series(&[X, X, M, M, M, M]);
        // [-,-,X]=1 O, [-,X,X]=2 A, [X,X,M]=2 A, [X,M,M]=1 O, [M,M,M] keep O, keep O
        assert_eq!(timeline(&s, &rule(3, 2, MissingData::Ignore)), [O, A, A, O, O, O]);
        let s = series(&[X, X, X, M, M, M, M]);
        // N=1: [X,X,X] A …, [X,M,M] A, [M,M,M] keeps A
        assert_eq!(timeline(&s, &rule(3, 1, MissingData::Ignore)), [A, A, A, A, A, A, A]);
    }

    #[test]
    fn two_of_three_missing_as_breaching() {
        // pad = breaching: [b,b,X]=3 A, [b,X,G]=2 A, [X,G,X]=2 A, [G,X,M]=2 A, [X,M,M]=3 A,
        // [M,M,M]=3 A, [M,M,X]=3 A, [M,X,X]=3 A, [X,X,G]=2 A, [X,G,M]=2 A
        let expected = [A; 10];
        assert_eq!(timeline(&series(&S), &rule(3, 2, MissingData::Breaching)), expected);
        // Good data breaks it: G G G → [b,b,G]=2 A, [b,G,G]=1 O, [G,G,G]=0 O
        assert_eq!(
            timeline(&series(&[G, G, G]), &rule(3, 2, MissingData::Breaching)),
            [A, O, O]
        );
    }

    #[test]
    fn two_of_three_missing_as_not_breaching() {
        // Missing = good: breaching counts 1 1 2 1 1 0 1 2 2 1 → never INSUFFICIENT_DATA.
        let expected = [O, O, A, O, O, O, O, A, A, O];
        assert_eq!(timeline(&series(&S), &rule(3, 2, MissingData::NotBreaching)), expected);
    }

    #[test]
    fn n_of_m_variants() {
        let s = series(&[X, G, X, G, X, X, X, G]);
        // 1 of 1: alarm exactly on breaching points.
        assert_eq!(
            timeline(&s, &rule(1, 1, MissingData::Missing)),
            [A, O, A, O, A, A, A, O]
        );
        // 3 of 3: needs three in a row: only at i=6 ([X,X,X]).
        assert_eq!(
            timeline(&s, &rule(3, 3, MissingData::Missing)),
            [O, O, O, O, O, O, A, O]
        );
        // 2 of 4: [-,-,-,X]=1 O, [-,-,X,G]=1 O, [-,X,G,X]=2 A, [X,G,X,G]=2 A, [G,X,G,X]=2 A,
        // [X,G,X,X]=3 A, [G,X,X,X]=3 A, [X,X,X,G]=3 A
        assert_eq!(
            timeline(&s, &rule(4, 2, MissingData::Missing)),
            [O, O, A, A, A, A, A, A]
        );
        // Leading missing data under `missing`: INSUFFICIENT_DATA until a datapoint arrives.
        assert_eq!(
            timeline(&series(&[M, M, G]), &rule(2, 1, MissingData::Missing)),
            [I, I, O]
        );
    }

    #[test]
    fn lower_comparisons() {
        let r = Rule {
            comparison: Comparison::LessThanThreshold,
            threshold: 1.0,
            ..rule(1, 1, MissingData::Missing)
        };
        let s = series(&[Some(1.0), Some(0.0), Some(2.0)]);
        assert_eq!(timeline(&s, &r), [O, A, O]);
        let r = Rule {
            comparison: Comparison::LessThanOrEqualToThreshold,
            ..r
        };
        assert_eq!(timeline(&s, &r), [A, A, O]);
    }

    #[test]
    fn report_counts_alarms_time_and_flaps() {
        // 1 of 1, M = 1 → flap window = 3 periods.
        //   i:     0 1 2 3 4 5 6 7 8 9 10 11
        //   state: A A O A O O O O A O O  O
        // episodes: [0,2) [3,4) [8,9); re-entry at 3 is 1 period after the end at 2 → flap;
        // re-entry at 8 is 4 periods after the end at 4 → not a flap.
        let s = series(&[X, X, G, X, G, G, G, G, X, G, G, G]);
        let o = backtest(&s, &rule(1, 1, MissingData::Missing));
        assert_eq!(o.alarms, 3);
        assert_eq!(o.seconds_in_alarm, 4 * 60);
        assert_eq!(o.flaps, 1);
        assert_eq!(o.episodes, vec![(0, 120), (180, 240), (480, 540)]);
    }

    #[test]
    fn compare_side_by_side() {
        let s = series(&[Some(3.0), Some(6.0), Some(8.0), Some(4.0)]);
        let c = compare(&s, &rule(1, 1, MissingData::Missing), 7.0);
        assert_eq!((c.current.alarms, c.current.seconds_in_alarm), (1, 120));
        assert_eq!((c.proposed.alarms, c.proposed.seconds_in_alarm), (1, 60));
        assert_eq!(c.proposed.threshold, 7.0);
    }

    #[test]
    fn aggregation_per_statistic() {
        let samples = [(0, 1.0), (30, 3.0), (60, 5.0), (179, 7.0), (180, 100.0), (-1, 100.0)];
        let agg = |stat| Series::aggregate(&samples, 0, 180, 60, stat).values;
        assert_eq!(agg(Statistic::Sum), vec![Some(4.0), Some(5.0), Some(7.0)]);
        assert_eq!(agg(Statistic::Average), vec![Some(2.0), Some(5.0), Some(7.0)]);
        assert_eq!(agg(Statistic::Maximum), vec![Some(3.0), Some(5.0), Some(7.0)]);
        assert_eq!(agg(Statistic::Minimum), vec![Some(1.0), Some(5.0), Some(7.0)]);
        assert_eq!(agg(Statistic::SampleCount), vec![Some(2.0), Some(1.0), Some(1.0)]);
        let gap = Series::aggregate(&[(0, 1.0), (130, 2.0)], 0, 180, 60, Statistic::Sum);
        assert_eq!(gap.values, vec![Some(1.0), None, Some(2.0)]);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(0), "0m");
        assert_eq!(human_seconds(3 * 86_400 + 4 * 3600 + 5 * 60), "3d 4h 5m");
    }
}
