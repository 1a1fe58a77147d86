//! PNG plots of a [`Report`]: equity, drawdown, positions, walk-forward equity.
//!
//! Drawn with `plotters` on an in-memory RGB bitmap, encoded with `png` and written like the
//! other report files (atomically, all-or-nothing: [`write_files_atomically`]). Text uses
//! DejaVu Sans, a 22 kB subset compiled into the crate (`assets/`; Bitstream Vera licence),
//! so plots need no system font and look the same everywhere.
//!
//! | file | what it shows |
//! |---|---|
//! | `equity.png` | NAV over initial NAV of every backtest (agent and baselines); log scale where the values span more than a factor of 4 |
//! | `drawdown.png` | drawdown from the running peak of every backtest, in percent |
//! | `weights.png` | the first backtest's (the agent's) weight per asset over time: one line per asset up to 8 assets, else the 7 largest by mean absolute weight and the sum of the others |
//! | `walk_forward.png` | (walk-forward) out-of-sample NAV of every seed and baseline (log scale as above), grey verticals where test windows start |
//!
//! The x axis shows dates (`YYYY-MM`) when the backtests have them, else market rows. The
//! oracle is drawn but does not set the y range of the equity plots (its growth would
//! flatten every other line): where it leaves the plot it is clipped at the edge and its
//! legend entry says the value it ends at.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use quantrl_data::Date;

use crate::backtest::{BacktestResult, EquityPoint};
use crate::baselines::ORACLE_LABEL;
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
    /// Legend entry (`None`: no entry, e.g. a window boundary).
    label: Option<String>,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    width: u32,
    /// Whether the line sets the y range. The oracle does not: its growth would flatten
    /// every other line; it is drawn, clipped at the top, and its legend says where it ends.
    sets_range: bool,
}

/// What a chart shows.
struct Chart<'a> {
    name: &'a str,
    title: &'a str,
    dated: bool,
    y_desc: &'a str,
    log_y: bool,
    legend: SeriesLabelPosition,
}

/// The x value of a point: its decimal year when dated, else its row.
fn x_of(row: usize, date: Option<Date>) -> f64 {
    date.map_or(row as f64, decimal_year)
}

/// `YYYY-MM` of the date at decimal year `x` (the inverse of [`decimal_year`]).
fn year_month(x: f64) -> String {
    let year = x.floor() as i32;
    let (Ok(start), Ok(end)) = (Date::from_ymd(year, 1, 1), Date::from_ymd(year + 1, 1, 1)) else {
        return format!("{x:.1}");
    };
    let length = (end.days_since_epoch() - start.days_since_epoch()) as f64;
    let day = start.days_since_epoch() + ((x - year as f64) * length + 1e-9).floor() as i32;
    let (y, m, _) = Date::from_days_since_epoch(day).ymd();
    format!("{y}-{m:02}")
}

/// A number with at most three significant digits and no trailing zeros (scientific
/// notation from 100 000 on); `0` for anything within `1e-9` of zero.
fn short_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 1e-9 {
        return "0".into();
    }
    if v.abs() >= 1e5 {
        return format!("{v:.2e}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> Option<(f64, f64, f64, f64)> {
    let mut b = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            b = (b.0.min(*x), b.1.max(*x), b.2.min(*y), b.3.max(*y));
        }
    }
    (b.0 <= b.1).then_some(b)
}

/// The parts of a polyline inside `lo <= y <= hi` (in log space when `log`), cut exactly at
/// the bounds: plotters does not clip lines to the plotting area. A part that stays inside
/// keeps the original points, so a line that never leaves the range is one polyline.
fn clip_runs(points: &[(f64, f64)], lo: f64, hi: f64, log: bool) -> Vec<Vec<(f64, f64)>> {
    let f = |y: f64| if log { y.ln() } else { y };
    let g = |y: f64| if log { y.exp() } else { y };
    let (lo, hi) = (f(lo), f(hi));
    let inside = |y: f64| y >= lo && y <= hi;
    if points.len() == 1 {
        return if inside(f(points[0].1)) {
            vec![points.to_vec()]
        } else {
            Vec::new()
        };
    }
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut flush = |current: &mut Vec<(f64, f64)>| {
        if current.len() > 1 {
            runs.push(std::mem::take(current));
        }
        current.clear();
    };
    for w in points.windows(2) {
        let (x0, y0, x1, y1) = (w[0].0, f(w[0].1), w[1].0, f(w[1].1));
        if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
            flush(&mut current);
            continue;
        }
        let dy = y1 - y0;
        let (t0, t1) = if dy == 0.0 {
            if inside(y0) { (0.0, 1.0) } else { (1.0, 0.0) }
        } else {
            let (a, b) = ((lo - y0) / dy, (hi - y0) / dy);
            (a.min(b).max(0.0), a.max(b).min(1.0))
        };
        if t0 > t1 {
            flush(&mut current);
            continue;
        }
        let at = |t: f64| (x0 + t * (x1 - x0), g(y0 + t * dy));
        let p0 = if t0 == 0.0 { w[0] } else { at(t0) };
        let p1 = if t1 == 1.0 { w[1] } else { at(t1) };
        if current.last() != Some(&p0) {
            flush(&mut current);
            current.push(p0);
        }
        current.push(p1);
    }
    flush(&mut current);
    runs
}

/// Draw `lines` into a PNG: title, axis labels, legend; a logarithmic y axis when
/// `chart.log_y` and the values span more than a factor of 4.
fn line_chart(chart: &Chart<'_>, lines: &mut [Line]) -> Result<Vec<u8>, EvalError> {
    let fail = |message: String| EvalError::Plot {
        path: PathBuf::from(chart.name),
        message,
    };
    ensure_font().map_err(&fail)?;
    let all = bounds(lines.iter().flat_map(|l| &l.points)).unwrap_or((0.0, 1.0, 0.0, 1.0));
    let scaled = bounds(
        lines
            .iter()
            .filter(|l| l.sets_range)
            .flat_map(|l| &l.points),
    )
    .unwrap_or(all);
    let (x0, x1) = (all.0, if all.1 > all.0 { all.1 } else { all.0 + 1.0 });
    let (y0, y1) = (scaled.2, scaled.3);
    // A log scale only where the values span more than a factor of 4: over a narrower range
    // it would have no tick labels to read.
    let log_y = chart.log_y && y0 > 0.0 && y1 / y0 > 4.0;
    let (lo, hi) = if log_y {
        (y0 / 1.02, y1 * 1.02)
    } else {
        let pad = if y1 > y0 { 0.05 * (y1 - y0) } else { 0.5 };
        (y0 - pad, y1 + pad)
    };
    // A line that leaves the plot says where it ends.
    for l in lines.iter_mut() {
        if let (Some(label), Some(&(_, end))) = (l.label.as_mut(), l.points.last())
            && l.points.iter().any(|p| p.1 > hi || p.1 < lo)
        {
            label.push_str(&format!(" (off scale; ends at {})", short_number(end)));
        }
    }
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let title = if log_y {
            format!("{} (log scale)", chart.title)
        } else {
            chart.title.to_string()
        };
        if log_y {
            let y = (lo..hi).log_scale();
            draw(&root, chart, &title, lines, x0..x1, y, (lo, hi), true).map_err(&fail)?;
        } else {
            draw(&root, chart, &title, lines, x0..x1, lo..hi, (lo, hi), false).map_err(&fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    encode_png(&buffer).map_err(fail)
}

fn draw<Y>(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    chart: &Chart<'_>,
    title: &str,
    lines: &[Line],
    x: std::ops::Range<f64>,
    y: Y,
    (lo, hi): (f64, f64),
    log_y: bool,
) -> Result<(), String>
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut ctx = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(85)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(&e))?;
    let x_format = |v: &f64| {
        if chart.dated {
            year_month(*v)
        } else {
            format!("{}", v.round() as i64)
        }
    };
    let y_format = |v: &f64| short_number(*v);
    ctx.configure_mesh()
        .x_desc(if chart.dated {
            "date"
        } else {
            "market row (bar)"
        })
        .y_desc(chart.y_desc)
        .x_labels(10)
        .y_labels(10)
        .max_light_lines(2)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()
        .map_err(|e| err(&e))?;
    // Lines are drawn as 1-pixel polylines in pixel space, thickened by drawing them again
    // one pixel over: plotters fills a thick polyline as one polygon with mitred joins,
    // which on jagged daily series throws spikes far outside the plot.
    for l in lines {
        let offsets: &[(i32, i32)] = match l.width {
            0 | 1 => &[(0, 0)],
            2 => &[(0, 0), (1, 0), (0, 1)],
            _ => &[(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)],
        };
        for run in clip_runs(&l.points, lo, hi, log_y) {
            let pixels: Vec<(i32, i32)> = run.iter().map(|p| ctx.backend_coord(p)).collect();
            for (dx, dy) in offsets {
                let shifted: Vec<(i32, i32)> =
                    pixels.iter().map(|(x, y)| (x + dx, y + dy)).collect();
                root.draw(&PathElement::new(shifted, l.colour.stroke_width(1)))
                    .map_err(|e| err(&e))?;
            }
        }
        if let Some(label) = &l.label {
            let style = l.colour.stroke_width(l.width.max(2));
            ctx.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
    }
    ctx.configure_series_labels()
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(chart.legend.clone())
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

/// One line per result (the first, the agent, drawn thicker): `value` of each equity point,
/// `sets_range` whether the line may widen the y range.
fn result_lines(
    results: &[BacktestResult],
    value: impl Fn(&BacktestResult, &EquityPoint) -> f64,
    sets_range: impl Fn(&BacktestResult) -> bool,
) -> Vec<Line> {
    results
        .iter()
        .enumerate()
        .map(|(k, r)| Line {
            label: Some(r.label.clone()),
            points: r
                .equity
                .iter()
                .map(|p| (x_of(p.row, p.date), value(r, p)))
                .collect(),
            colour: colour(k),
            width: if k == 0 { 3 } else { 2 },
            sets_range: sets_range(r),
        })
        .collect()
}

/// `equity.png`: NAV over initial NAV of every result (log scale where it spans more than a
/// factor of 4).
pub fn equity_png(results: &[BacktestResult]) -> Result<Vec<u8>, EvalError> {
    let mut lines = result_lines(
        results,
        |r, p| p.nav / r.initial_nav,
        |r| r.label != ORACLE_LABEL,
    );
    let chart = Chart {
        name: "equity.png",
        title: "Equity: NAV / initial NAV",
        dated: dated(results),
        y_desc: "NAV / initial NAV",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_chart(&chart, &mut lines)
}

/// `drawdown.png`: drawdown from the running peak of every result, in percent (negative).
pub fn drawdown_png(results: &[BacktestResult]) -> Result<Vec<u8>, EvalError> {
    let mut lines = result_lines(results, |_, p| -100.0 * p.drawdown, |_| true);
    let chart = Chart {
        name: "drawdown.png",
        title: "Drawdown from peak NAV",
        dated: dated(results),
        y_desc: "drawdown (%)",
        log_y: false,
        legend: SeriesLabelPosition::LowerLeft,
    };
    line_chart(&chart, &mut lines)
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
            label: Some(result.asset_names[a].clone()),
            points: series(a),
            colour: colour(k),
            width: 2,
            sets_range: true,
        })
        .collect();
    if shown < n {
        let rest = &order[shown..];
        lines.push(Line {
            label: Some(format!("other {} assets (sum)", rest.len())),
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
            sets_range: true,
        });
    }
    let title = format!("Positions of {}: weight per asset", result.label);
    let chart = Chart {
        name: "weights.png",
        title: &title,
        dated,
        y_desc: "weight (fraction of NAV)",
        log_y: false,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_chart(&chart, &mut lines)
}

/// `walk_forward.png`: the out-of-sample NAV of every seed and baseline (log scale where it
/// spans more than a factor of 4), with the starts of the test windows.
pub fn walk_forward_png(wf: &crate::WalkForwardResult) -> Result<Vec<u8>, EvalError> {
    let all = wf.out_of_sample.iter().chain(&wf.baselines_out_of_sample);
    let dated = all.clone().all(|s| s.dates.iter().all(Option::is_some));
    let nav0 = wf.runs.first().map_or(1.0, |r| r.result.initial_nav);
    let mut lines: Vec<Line> = all
        .enumerate()
        .map(|(k, s)| Line {
            label: Some(s.label.clone()),
            points: s
                .rows
                .iter()
                .zip(&s.dates)
                .zip(&s.nav)
                .map(|((r, d), v)| (x_of(*r, *d), v / nav0))
                .collect(),
            colour: colour(k),
            width: if s.seed.is_some() { 2 } else { 3 },
            sets_range: s.label != ORACLE_LABEL,
        })
        .collect();
    // Thin grey verticals where each later test window starts.
    if let Some(b) = bounds(
        lines
            .iter()
            .filter(|l| l.sets_range)
            .flat_map(|l| &l.points),
    ) {
        for (k, (w, d)) in wf.windows.iter().zip(&wf.window_dates).enumerate().skip(1) {
            let x = x_of(w.test.start, d.test_first.filter(|_| dated));
            lines.push(Line {
                label: (k == 1).then(|| "start of a test window".to_string()),
                points: vec![(x, b.2), (x, b.3)],
                colour: RGBColor(150, 150, 150),
                width: 1,
                sets_range: true,
            });
        }
    }
    let chart = Chart {
        name: "walk_forward.png",
        title: "Walk-forward: out-of-sample NAV / initial NAV",
        dated,
        y_desc: "NAV / initial NAV",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_chart(&chart, &mut lines)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_cuts_lines_exactly_at_the_bounds() {
        // Inside, out above 2, back in: two runs cut at y = 2.
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 1.0), (3.0, 1.5)];
        let runs = clip_runs(&points, 0.0, 2.0, false);
        assert_eq!(
            runs,
            vec![
                vec![(0.0, 1.0), (0.5, 2.0)],
                vec![(1.5, 2.0), (2.0, 1.0), (3.0, 1.5)]
            ]
        );
        // A line that stays inside is one polyline with its own points.
        assert_eq!(
            clip_runs(&points[2..], 0.0, 2.0, false),
            vec![points[2..].to_vec()]
        );
        // In log space the cut is where the log crosses: from 1 to 100, ln 10 is half-way.
        let runs = clip_runs(&[(0.0, 1.0), (1.0, 100.0)], 0.5, 10.0, true);
        assert_eq!(runs.len(), 1);
        assert!((runs[0][1].0 - 0.5).abs() < 1e-12 && (runs[0][1].1 - 10.0).abs() < 1e-9);
        // Entirely outside: nothing.
        assert!(clip_runs(&[(0.0, 5.0), (1.0, 6.0)], 0.0, 2.0, false).is_empty());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(1.0), "1");
        assert_eq!(short_number(1.25), "1.25");
        assert_eq!(short_number(0.0500000001), "0.05");
        assert_eq!(short_number(-5.55e-12), "0");
        assert_eq!(short_number(232_298_633.0), "2.32e8");
        assert_eq!(year_month(2020.0), "2020-01");
        assert_eq!(
            year_month(decimal_year(Date::from_ymd(2021, 7, 1).unwrap())),
            "2021-07"
        );
        assert_eq!(year_month(2020.9999), "2020-12");
    }
}
