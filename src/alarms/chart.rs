//! `--chart FILE.svg`: the metric, the current and proposed thresholds, and the periods the
//! proposed threshold would have alarmed (shaded). SVG only (no system libraries needed).

use super::backtest::{Series, SideBySide};
use plotters::prelude::*;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("drawing {file}: {message}")]
pub struct ChartError {
    file: String,
    message: String,
}

pub fn draw(file: &Path, title: &str, series: &Series, result: &SideBySide) -> Result<(), ChartError> {
    let err = |e: &dyn std::fmt::Display| ChartError {
        file: file.display().to_string(),
        message: e.to_string(),
    };
    let points: Vec<(i64, f64)> = series
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (series.time(i), v)))
        .collect();
    let t0 = series.start;
    let t1 = series.time(series.values.len()).max(t0 + 1);
    let hours = |t: i64| (t - t0) as f64 / 3600.0;
    let (cur, prop) = (result.current.threshold, result.proposed.threshold);
    let max_y = points.iter().map(|p| p.1).fold(cur.max(prop), f64::max);
    let min_y = points.iter().map(|p| p.1).fold(cur.min(prop).min(0.0), f64::min);
    let pad = ((max_y - min_y) * 0.1).max(1e-9);
    let (y0, y1) = (min_y, max_y + pad);

    let root = SVGBackend::new(file, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..hours(t1), y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours since start")
        .y_desc("value")
        .draw()
        .map_err(|e| err(&e))?;
    // Shade the periods the proposed threshold would have been in ALARM.
    let shade = RGBColor(255, 200, 200).filled();
    chart
        .draw_series(
            result
                .proposed
                .episodes
                .iter()
                .map(|&(a, b)| Rectangle::new([(hours(a), y0), (hours(b), y1)], shade)),
        )
        .map_err(|e| err(&e))?
        .label("proposed: would alarm")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], shade));
    chart
        .draw_series(LineSeries::new(points.iter().map(|&(t, v)| (hours(t), v)), &BLUE))
        .map_err(|e| err(&e))?
        .label("metric")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    for (value, color, label) in [(cur, BLACK, "current threshold"), (prop, RED, "proposed threshold")] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, value), (hours(t1), value)],
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("{label} {value}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
