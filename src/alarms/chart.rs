//! `--chart FILE.svg|FILE.png`: the metric, the current and proposed thresholds, and the periods
//! the proposed threshold would have alarmed (shaded).
//!
//! The file's extension picks the backend: SVG (text left to the viewer's fonts) or PNG
//! (plotters' bitmap backend into a buffer, encoded by the `png` crate). Text is measured, and in PNGs drawn, with DejaVu Sans compiled
//! into the binary (`assets/fonts/`), so neither needs fontconfig or system fonts. The drawing
//! itself is one function, generic over the backend.

use super::backtest::{Series, SideBySide};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Width × height in pixels (SVG user units).
pub const SIZE: (u32, u32) = (1200, 500);
/// The current threshold's line.
pub const CURRENT_COLOR: RGBColor = RGBColor(90, 90, 90);
/// The proposed threshold's line.
pub const PROPOSED_COLOR: RGBColor = RED;
/// The periods the proposed threshold would have been in ALARM.
pub const SHADE_COLOR: RGBColor = RGBColor(255, 200, 200);
pub const METRIC_COLOR: RGBColor = BLUE;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ChartError {
    file: String,
    message: String,
}

impl ChartError {
    fn new(file: &Path, message: impl std::fmt::Display) -> Self {
        ChartError {
            file: file.display().to_string(),
            message: message.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format named by the file's extension (`.svg` or `.png`, any case).
    pub fn of(file: &Path) -> Result<Format, ChartError> {
        match file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            Some(other) => Err(ChartError::new(
                file,
                format!("unsupported chart format .{other}: the file name must end in .svg or .png"),
            )),
            None => Err(ChartError::new(file, "the chart file name must end in .svg or .png")),
        }
    }
}

/// Registers the bundled font as plotters' "sans-serif" (the only family the chart uses).
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled font DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
}

/// Draws the chart to `file` in the format its extension names.
pub fn draw(file: &Path, title: &str, series: &Series, result: &SideBySide) -> Result<(), ChartError> {
    let format = Format::of(file)?;
    register_font().map_err(|m| ChartError::new(file, m))?;
    let drawing = |m: &dyn std::fmt::Display| ChartError::new(file, format!("drawing the chart: {m}"));
    match format {
        Format::Svg => {
            plot(SVGBackend::new(file, SIZE).into_drawing_area(), title, series, result).map_err(|e| drawing(&e))
        }
        Format::Png => {
            // Drawn in memory first: a failed drawing leaves no half-written file.
            let mut rgb = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
            plot(
                BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
                title,
                series,
                result,
            )
            .map_err(|e| drawing(&e))?;
            let out = std::fs::File::create(file).map_err(|e| ChartError::new(file, e))?;
            encode_png(std::io::BufWriter::new(out), &rgb).map_err(|e| ChartError::new(file, e))
        }
    }
}

/// An RGB buffer of [`SIZE`] as a PNG.
fn encode_png<W: std::io::Write>(out: W, rgb: &[u8]) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The drawing, for any backend; `present` writes the file.
fn plot<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &Series,
    result: &SideBySide,
) -> DrawResult<DB> {
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

    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..hours(t1), y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("hours since start")
        .y_desc("value")
        .draw()?;
    // Shade the periods the proposed threshold would have been in ALARM.
    let shade = SHADE_COLOR.filled();
    chart
        .draw_series(
            result
                .proposed
                .episodes
                .iter()
                .map(|&(a, b)| Rectangle::new([(hours(a), y0), (hours(b), y1)], shade)),
        )?
        .label("proposed: would alarm")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], shade));
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|&(t, v)| (hours(t), v)),
            &METRIC_COLOR,
        ))?
        .label("metric")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], METRIC_COLOR));
    for (value, color, label) in [
        (cur, CURRENT_COLOR, "current threshold"),
        (prop, PROPOSED_COLOR, "proposed threshold"),
    ] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, value), (hours(t1), value)],
                color.stroke_width(2),
            ))?
            .label(format!("{label} {value}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::backtest::{compare, Comparison, MissingData, Rule};

    /// 48 hourly points: 1 everywhere, 10 from hour 12 to hour 36 (a half-width episode).
    fn fixture() -> (Series, SideBySide) {
        let values = (0..48)
            .map(|h| Some(if (12..36).contains(&h) { 10.0 } else { 1.0 }))
            .collect();
        let series = Series {
            start: 1_700_000_000 - 1_700_000_000 % 3600,
            period: 3600,
            values,
        };
        let rule = Rule {
            comparison: Comparison::GreaterThanThreshold,
            threshold: 0.5,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            treat_missing_data: MissingData::NotBreaching,
        };
        let result = compare(&series, &rule, 5.0);
        assert_eq!(result.proposed.episodes.len(), 1, "{result:?}");
        (series, result)
    }

    fn decode(file: &Path) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().expect("fits in memory")];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("a/b.svg")).unwrap(), Format::Svg);
        assert_eq!(Format::of(Path::new("B.PNG")).unwrap(), Format::Png);
        let e = Format::of(Path::new("chart.jpg")).unwrap_err().to_string();
        assert_eq!(
            e,
            "chart.jpg: unsupported chart format .jpg: the file name must end in .svg or .png"
        );
        assert!(Format::of(Path::new("chart")).is_err());
        assert!(Format::of(Path::new("svg")).is_err());
    }

    #[test]
    fn unsupported_extension_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chart.gif");
        let (series, result) = fixture();
        assert!(draw(&file, "t", &series, &result).is_err());
        assert!(!file.exists());
    }

    #[test]
    fn svg_has_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chart.svg");
        let (series, result) = fixture();
        draw(&file, "api-5xx (prod)", &series, &result).unwrap();
        let svg = std::fs::read_to_string(&file).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "api-5xx (prod)",
            "current threshold 0.5",
            "proposed threshold 5",
            "hours since start",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.contains(r#"width="1200" height="500""#));
    }

    #[test]
    fn png_has_size_lines_and_shading() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chart.png");
        let (series, result) = fixture();
        draw(&file, "api-5xx (prod)", &series, &result).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, pixels) = decode(&file);
        assert_eq!((info.width, info.height), SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let (w, h) = (SIZE.0 as usize, SIZE.1 as usize);
        let at = |x: usize, y: usize| {
            let i = (y * w + x) * 3;
            RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
        };
        let row_count = |y: usize, c: RGBColor| (0..w).filter(|&x| at(x, y) == c).count();
        let col_count = |x: usize, c: RGBColor| (0..h).filter(|&y| at(x, y) == c).count();
        // Each threshold is a horizontal line across the plot area (1120 pixels wide, of which
        // the legend box, drawn over it, may tint up to 170; its swatches are 16 pixels).
        for c in [CURRENT_COLOR, PROPOSED_COLOR] {
            let longest = (0..h).map(|y| row_count(y, c)).max().unwrap();
            assert!(longest > 900, "{c:?}: longest row {longest}");
        }
        // The one episode (hours 12..36 of 48) is shaded from bottom to top in the middle
        // of the plot and nowhere near its left edge; the legend's swatch is 16 pixels wide.
        let middle = col_count(w / 2 + 30, SHADE_COLOR);
        assert!(middle > 300, "middle column: {middle}");
        assert_eq!(col_count(120, SHADE_COLOR), 0);
        let total: usize = (0..w).map(|x| col_count(x, SHADE_COLOR)).sum();
        assert!(total > 100_000, "shaded pixels: {total}");
        // Text is drawn (anti-aliased, so grey levels between black and white exist).
        let greys = pixels
            .chunks(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 20 && p[0] < 200 && p[0] != 90)
            .count();
        assert!(greys > 500, "text pixels: {greys}");
    }
}
