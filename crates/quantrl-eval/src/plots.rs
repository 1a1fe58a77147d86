//! PNG plots of a [`Report`]: equity, drawdown, positions, walk-forward equity.
//!
//! Drawn with `plotters` on an in-memory RGB bitmap, encoded with `png` and written like the
//! other report files (atomically, all-or-nothing: [`write_files_atomically`]). Text uses
//! DejaVu Sans, a 22 kB subset compiled into the crate (`assets/`; Bitstream Vera licence),
//! so plots need no system font and look the same everywhere.
//!
//! | file | what it shows |
//! |---|---|
//! | `equity.png` | NAV over initial NAV of every backtest (agent and baselines), log scale |
//! | `drawdown.png` | drawdown from the running peak of every backtest, in percent |
//! | `weights.png` | the first backtest's (the agent's) weight per asset over time: one line per asset up to 8 assets, else the 7 largest by mean absolute weight and the sum of the others |
//! | `walk_forward.png` | (walk-forward) out-of-sample NAV of every seed and baseline, log scale |
//!
//! The x axis is the calendar year (fractional) when the backtests have dates, else the
//! market row.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use quantrl_data::Date;

use crate::backtest::BacktestResult;
use crate::error::EvalError;
use crate::report::{Report, write_files_atomically};

/// Width of every plot, in pixels.
pub const WIDTH: u32 = 1200;
/// Height of every plot, in pixels.
pub const HEIGHT: u32 = 700;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Tableau's ten colours: distinct, and readable on white.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Register the embedded font with plotters once per process.
fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font could not be read".to_string())
        })
        .clone()
}

/// A date as a fractional calendar year (2020-07-02 is about 2020.5).
pub fn decimal_year(date: Date) -> f64 {
    let (y, _, _) = date.ymd();
    let start = Date::from_ymd(y, 1, 1).map_or(0, |d| d.days_since_epoch());
    let end = Date::from_ymd(y + 1, 1, 1).map_or(365, |d| d.days_since_epoch());
    y as f64 + (date.days_since_epoch() - start) as f64 / (end - start) as f64
}

/// One line of a chart.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    width: u32,
}

/// The x value of a point: its decimal year when dated, else its row.
fn x_of(row: usize, date: Option<Date>) -> f64 {
    date.map_or(row as f64, decimal_year)
}

fn x_label(dated: bool) -> &'static str {
    if dated { "year" } else { "market row (bar)" }
}

fn bounds(lines: &[Line]) -> Option<(f64, f64, f64, f64)> {
    let mut b = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in lines.iter().flat_map(|l| &l.points) {
        if x.is_finite() && y.is_finite() {
            b = (b.0.min(*x), b.1.max(*x), b.2.min(*y), b.3.max(*y));
        }
    }
    (b.0 <= b.1).then_some(b)
}

/// Draw `lines` into a PNG: title, axis labels, legend; a logarithmic y axis when `log_y`
/// and every value is positive.
fn line_chart(
    name: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    log_y: bool,
) -> Result<Vec<u8>, EvalError> {
    let fail = |message: String| EvalError::Plot {
        path: PathBuf::from(name),
        message,
    };
    ensure_font().map_err(&fail)?;
    let (x0, x1, y0, y1) = bounds(lines).unwrap_or((0.0, 1.0, 0.0, 1.0));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        if log_y && y0 > 0.0 {
            let (lo, hi) = if y1 > y0 * 1.001 {
                (y0 / 1.02, y1 * 1.02)
            } else {
                (y0 / 1.1, y1 * 1.1)
            };
            draw(
                &root,
                title,
                x_desc,
                y_desc,
                lines,
                x0..x1,
                (lo..hi).log_scale(),
            )
            .map_err(&fail)?;
        } else {
            let pad = if y1 > y0 { 0.05 * (y1 - y0) } else { 0.5 };
            draw(
                &root,
                title,
                x_desc,
                y_desc,
                lines,
                x0..x1,
                (y0 - pad)..(y1 + pad),
            )
            .map_err(&fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    encode_png(&buffer).map_err(fail)
}

fn draw<Y>(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    x: std::ops::Range<f64>,
    y: Y,
) -> Result<(), String>
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(85)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    for l in lines {
        let style = l.colour.stroke_width(l.width);
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), style))
            .map_err(|e| err(&e))?
            .label(l.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}

/// Encode an RGB buffer of [`WIDTH`] x [`HEIGHT`] as PNG.
fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn colour(k: usize) -> RGBColor {
    COLOURS[k % COLOURS.len()]
}

fn dated(results: &[BacktestResult]) -> bool {
    results
        .iter()
        .all(|r| r.equity.iter().all(|p| p.date.is_some()))
}

/// `equity.png`: NAV over initial NAV of every result (log scale).
pub fn equity_png(results: &[BacktestResult]) -> Result<Vec<u8>, EvalError> {
    let dated = dated(results);
    let lines: Vec<Line> = results
        .iter()
        .enumerate()
        .map(|(k, r)| Line {
            label: r.label.clone(),
            points: r
                .equity
                .iter()
                .map(|p| (x_of(p.row, p.date), p.nav / r.initial_nav))
                .collect(),
            colour: colour(k),
            width: if k == 0 { 3 } else { 2 },
        })
        .collect();
    line_chart(
        "equity.png",
        "Equity: NAV / initial NAV (log scale)",
        x_label(dated),
        "NAV / initial NAV",
        &lines,
        true,
    )
}

/// `drawdown.png`: drawdown from the running peak of every result, in percent (negative).
pub fn drawdown_png(results: &[BacktestResult]) -> Result<Vec<u8>, EvalError> {
    let dated = dated(results);
    let lines: Vec<Line> = results
        .iter()
        .enumerate()
        .map(|(k, r)| Line {
            label: r.label.clone(),
            points: r
                .equity
                .iter()
                .map(|p| (x_of(p.row, p.date), -100.0 * p.drawdown))
                .collect(),
            colour: colour(k),
            width: if k == 0 { 3 } else { 2 },
        })
        .collect();
    line_chart(
        "drawdown.png",
        "Drawdown from peak NAV",
        x_label(dated),
        "drawdown (%)",
        &lines,
        false,
    )
}

/// `weights.png`: `result`'s weight per asset over time (see the module docs for how many
/// lines).
pub fn weights_png(result: &BacktestResult) -> Result<Vec<u8>, EvalError> {
    let dated = dated(std::slice::from_ref(result));
    let n = result.asset_names.len();
    let xs: Vec<f64> = result.equity.iter().map(|p| x_of(p.row, p.date)).collect();
    let series = |a: usize| -> Vec<(f64, f64)> {
        xs.iter()
            .zip(&result.equity)
            .map(|(x, p)| (*x, p.weights.get(a).copied().unwrap_or(0.0)))
            .collect()
    };
    let mut order: Vec<usize> = (0..n).collect();
    let mean_abs = |a: usize| {
        result
            .equity
            .iter()
            .map(|p| p.weights.get(a).map_or(0.0, |w| w.abs()))
            .sum::<f64>()
    };
    order.sort_by(|&a, &b| mean_abs(b).total_cmp(&mean_abs(a)).then(a.cmp(&b)));
    let shown = if n <= 8 { n } else { 7 };
    let mut lines: Vec<Line> = order[..shown]
        .iter()
        .enumerate()
        .map(|(k, &a)| Line {
            label: result.asset_names[a].clone(),
            points: series(a),
            colour: colour(k),
            width: 2,
        })
        .collect();
    if shown < n {
        let rest = &order[shown..];
        lines.push(Line {
            label: format!("other {} assets (sum)", rest.len()),
            points: xs
                .iter()
                .zip(&result.equity)
                .map(|(x, p)| {
                    (
                        *x,
                        rest.iter()
                            .map(|&a| p.weights.get(a).copied().unwrap_or(0.0))
                            .sum(),
                    )
                })
                .collect(),
            colour: RGBColor(60, 60, 60),
            width: 2,
        });
    }
    line_chart(
        "weights.png",
        &format!("Positions of {}: weight per asset", result.label),
        x_label(dated),
        "weight (fraction of NAV)",
        &lines,
        false,
    )
}

/// `walk_forward.png`: the out-of-sample NAV of every seed and baseline (log scale).
pub fn walk_forward_png(wf: &crate::WalkForwardResult) -> Result<Vec<u8>, EvalError> {
    let all = wf.out_of_sample.iter().chain(&wf.baselines_out_of_sample);
    let dated = all.clone().all(|s| s.dates.iter().all(Option::is_some));
    let lines: Vec<Line> = all
        .enumerate()
        .map(|(k, s)| {
            let nav0 = wf.runs.first().map_or(1.0, |r| r.result.initial_nav);
            Line {
                label: s.label.clone(),
                points: s
                    .rows
                    .iter()
                    .zip(&s.dates)
                    .zip(&s.nav)
                    .map(|((r, d), v)| (x_of(*r, *d), v / nav0))
                    .collect(),
                colour: colour(k),
                width: if s.seed.is_some() { 2 } else { 3 },
            }
        })
        .collect();
    line_chart(
        "walk_forward.png",
        "Walk-forward: out-of-sample NAV / initial NAV (log scale)",
        x_label(dated),
        "NAV / initial NAV",
        &lines,
        true,
    )
}

/// Every plot of `report`: `(file name, PNG bytes)`.
pub fn render_all(report: &Report) -> Result<Vec<(String, Vec<u8>)>, EvalError> {
    let mut files = vec![
        ("equity.png".to_string(), equity_png(&report.results)?),
        ("drawdown.png".to_string(), drawdown_png(&report.results)?),
    ];
    if let Some(first) = report.results.first() {
        files.push(("weights.png".to_string(), weights_png(first)?));
    }
    if let Some(wf) = &report.walk_forward {
        files.push(("walk_forward.png".to_string(), walk_forward_png(wf)?));
    }
    Ok(files)
}

/// Draw every plot of `report` and write the PNG files into `dir` (created if missing),
/// atomically and all-or-nothing; returns the paths written.
pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, EvalError> {
    let files = render_all(report).map_err(|e| match e {
        EvalError::Plot { path, message } => EvalError::Plot {
            path: dir.join(path),
            message,
        },
        other => other,
    })?;
    write_files_atomically(dir, &files)
}
