//! `ctl bench backtest`: the backtest engine over 14 days at 1-minute resolution (20,160
//! points), against the baseline of a naive single pass over the same series (summing it),
//! measured in the same run so the ratio means something on any machine. No server needed.

use super::CmdResult;
use crate::alarms::backtest::{self, Comparison, MissingData, Rule, Series, Statistic};
use crate::alarms::recommend;
use std::hint::black_box;
use super::Status;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BacktestBenchArgs {
    /// Days of 1-minute datapoints.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 21)]
    pub repeat: usize,
}

/// A deterministic noisy metric with bursts and gaps (xorshift; no randomness crate needed).
pub fn synthetic(days: u32) -> Vec<(i64, f64)> {
    let n = i64::from(days) * 1440;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 97 == 0 {
            continue; // a gap
        }
        let base = 20.0 + 10.0 * ((i as f64) / 1440.0 * std::f64::consts::TAU).sin();
        let burst = if (i / 180) % 37 == 5 { 60.0 } else { 0.0 };
        out.push((i * 60, base + burst + (x % 1000) as f64 / 100.0));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn run(args: BacktestBenchArgs) -> CmdResult {
    let samples = synthetic(args.days);
    let n = i64::from(args.days) * 1440;
    let series = Series::aggregate(&samples, 0, n * 60, 60, Statistic::Average);
    let rule = Rule {
        comparison: Comparison::GreaterThanThreshold,
        threshold: 45.0,
        evaluation_periods: 5,
        datapoints_to_alarm: 3,
        treat_missing_data: MissingData::Missing,
    };
    let repeat = args.repeat.max(1);
    let (mut engine, mut full, mut naive) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeat {
        let t = Instant::now();
        let mut s = 0.0;
        for v in series.values.iter().flatten() {
            s += v;
        }
        black_box(s);
        naive.push(t.elapsed());

        let t = Instant::now();
        black_box(backtest::compare(black_box(&series), &rule, 55.0));
        engine.push(t.elapsed());

        let t = Instant::now();
        let agg = Series::aggregate(black_box(&samples), 0, n * 60, 60, Statistic::Average);
        black_box(recommend::recommend(&agg, &rule, recommend::DEFAULT_MARGIN));
        full.push(t.elapsed());
    }
    let (e, f, b) = (median(engine), median(full), median(naive));
    let ratio = |d: Duration| d.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "ctl bench backtest: {} days at 1-minute resolution = {} periods ({} with data), median of {repeat}",
        args.days,
        series.values.len(),
        samples.len()
    );
    println!("  baseline (naive single pass: sum of the series) {:>12.3?}", b);
    println!(
        "  backtest current + proposed (2 timelines)       {:>12.3?}  ({:.1}× baseline)",
        e,
        ratio(e)
    );
    println!(
        "  aggregate + percentiles + recommend + backtests {:>12.3?}  ({:.1}× baseline)",
        f,
        ratio(f)
    );
    println!(
        "  goal: < 1 s → {}",
        if f < Duration::from_secs(1) { "met" } else { "NOT met" }
    );
    Ok(Status::Success)
}
