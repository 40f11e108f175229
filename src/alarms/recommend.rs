//! `ctl alarms recommend`: percentiles of the alarm's own datapoints (computed here: CloudWatch
//! percentiles need extended statistics, which moto lacks) and a proposed threshold.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value
//! at rank ⌈p/100 · n⌉ (1-based), so it is always an observed value.
//! Proposal: for alarms on high values (`>`/`>=`), p99 × margin; for alarms on low values,
//! the 1st percentile ÷ margin (the mirror image). Missing datapoints are not values.

use super::backtest::{compare, Rule, Series, SideBySide};
use serde::Serialize;

pub const DEFAULT_MARGIN: f64 = 1.2;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p1: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100). `None` for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn percentiles(series: &Series) -> Option<Percentiles> {
    let mut v: Vec<f64> = series
        .values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p| percentile(&v, p).unwrap_or(f64::NAN);
    Some(Percentiles {
        count: v.len(),
        p1: at(1.0),
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: v[v.len() - 1],
    })
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub percentiles: Percentiles,
    pub margin: f64,
    pub proposed: f64,
    pub backtest: SideBySide,
}

/// Round to 3 significant decimals so proposals are readable in YAML.
fn tidy(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn recommend(series: &Series, rule: &Rule, margin: f64) -> Option<Recommendation> {
    let percentiles = percentiles(series)?;
    let proposed = if rule.comparison.upward() {
        percentiles.p99 * margin
    } else {
        percentiles.p1 / margin
    };
    let proposed = tidy(proposed);
    let backtest = compare(series, rule, proposed);
    Some(Recommendation {
        percentiles,
        margin,
        proposed,
        backtest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::backtest::{Comparison, MissingData};

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0, 7.0], 50.0), Some(3.0));
        assert_eq!(percentile(&[3.0, 7.0], 51.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn proposal_is_p99_times_margin_with_its_backtest() {
        // 0..=199 with gaps: p99 of 200 values is rank 198 → 197.
        let mut values: Vec<Option<f64>> = (0..200).map(|i| Some(f64::from(i))).collect();
        values.insert(10, None);
        let s = Series {
            start: 0,
            period: 60,
            values,
        };
        let rule = Rule {
            comparison: Comparison::GreaterThanThreshold,
            threshold: 150.0,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            treat_missing_data: MissingData::NotBreaching,
        };
        let r = recommend(&s, &rule, 1.2).expect("values");
        assert_eq!(r.percentiles.count, 200);
        assert_eq!(r.percentiles.p50, 99.0);
        assert_eq!(r.percentiles.p99, 197.0);
        assert_eq!(r.percentiles.max, 199.0);
        assert_eq!(r.proposed, 236.4);
        assert_eq!(r.backtest.proposed.alarms, 0);
        assert_eq!(r.backtest.current.alarms, 1);
        assert_eq!(r.backtest.current.seconds_in_alarm, 49 * 60);
    }
}
