//! Reports: the metrics table, JSON and CSV files, the run manifest.
//!
//! A [`Report`] gathers the backtests of one evaluation (the agent and its baselines on the
//! same span), their [`MetricsRow`]s from [`compare`] (with the information ratio against a
//! chosen benchmark row), an optional walk-forward result and the [`RunManifest`] that says
//! how to reproduce it. [`write_all`] saves it as files in a directory:
//!
//! | file | content |
//! |---|---|
//! | `report.json` | the whole [`Report`] (read back with [`Report::read_json`]) |
//! | `manifest.json` | the [`RunManifest`] alone |
//! | `metrics.csv` | one row per backtest, one column per metric |
//! | `equity_<label>.csv` | the equity curve of each backtest |
//! | `trades_<label>.csv` | the trade log of each backtest |
//! | `walk_forward_oos.csv` | (walk-forward) every out-of-sample series, long format |
//! | `walk_forward_metrics.csv` | (walk-forward) mean and interval of each metric, overall and per window |
//!
//! Files are written atomically and all-or-nothing: every file is first written to a
//! temporary file in the directory and flushed to disk; only when all of them are complete
//! are they renamed over their final names. A failure on the way leaves every file that was
//! already there untouched (and removes the temporary files).
//!
//! [`format_table`] renders the metrics as a plain-text table for a terminal,
//! [`format_walk_forward_table`] a walk-forward's windows and aggregate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use quantrl_envs::trading::Market;
use serde::{Deserialize, Serialize};

use crate::backtest::BacktestResult;
use crate::error::EvalError;
use crate::summary::{PerformanceSummary, SummaryConfig};
use crate::walk_forward::WalkForwardResult;

/// Version of the report and manifest formats; bumped on any incompatible change.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// FNV-1a, 64 bits: a small, fast, stable (platform- and version-independent) hash for
/// fingerprinting input data in manifests. Not cryptographic.
///
/// ```
/// use std::hash::Hasher;
/// let mut h = quantrl_eval::Fnv1a64::new();
/// h.write(b"a");
/// assert_eq!(h.finish(), 0xaf63dc4c8601ec8c); // the published FNV-1a test vector
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    /// The FNV-1a offset basis.
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Hash the bit patterns of `values` (little-endian), so that any change of any value,
    /// even in the last bit, changes the hash.
    pub fn write_f64s(&mut self, values: &[f64]) {
        for v in values {
            self.write(&v.to_bits().to_le_bytes());
        }
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for Fnv1a64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The fingerprint of a market: `fnv1a64:` and 16 hex digits of the FNV-1a hash of its shape,
/// asset names, close and open prices, rolling mean volume (the form in which a market keeps
/// volume), features, first valid row and tradable flags. Dates are not part of a market;
/// hash them separately if they matter.
pub fn market_hash(market: &Market) -> String {
    let mut h = Fnv1a64::new();
    let (t, n) = (market.n_steps(), market.n_assets());
    h.write_u64(t as u64);
    h.write_u64(n as u64);
    for name in market.asset_names() {
        h.write(name.as_bytes());
        h.write_u8(0);
    }
    h.write_f64s(market.close_all());
    if market.has_open() {
        for row in 0..t {
            h.write_f64s(market.open(row));
        }
    }
    if market.has_volume() {
        // The market keeps volume only as its rolling mean, which is what trading uses.
        for row in 0..t {
            h.write_f64s(market.adv(row).unwrap_or(&[]));
        }
    }
    h.write_u64(market.n_features() as u64);
    for name in market.feature_names() {
        h.write(name.as_bytes());
        h.write_u8(0);
    }
    if market.n_features() > 0 {
        for v in market.feature_window(t - 1, t) {
            h.write(&v.to_bits().to_le_bytes());
        }
    }
    h.write_u64(market.first_valid() as u64);
    if market.has_tradable() {
        for row in 0..t {
            h.write_u8(market.tradable(row) as u8);
        }
    }
    format!("fnv1a64:{:016x}", h.finish())
}

/// The commit checked out in `dir` (`git rev-parse HEAD`), or `None` when git is not
/// installed, `dir` is not in a repository or anything else goes wrong: never an error.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let commit = text.trim();
    (commit.len() >= 40 && commit.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| commit.to_string())
}

/// How to reproduce a run: its configuration, data fingerprint, seeds, versions and commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The run's configuration, as the caller gives it.
    pub config: serde_json::Value,
    /// Fingerprint of the input data (e.g. [`market_hash`]).
    pub data_hash: String,
    /// Every seed used.
    pub seeds: Vec<u64>,
    /// Crate name to version (`quantrl-eval` at least; callers add theirs).
    pub crate_versions: BTreeMap<String, String>,
    /// The git commit of the working directory, when known.
    pub git_commit: Option<String>,
    /// Seconds since 1970-01-01 UTC when the manifest was made.
    pub created_unix_s: u64,
}

impl RunManifest {
    /// A manifest for `config`, `data_hash` and `seeds`, with this crate's version, the
    /// commit of the current directory (when git can tell) and the current time.
    pub fn new(config: serde_json::Value, data_hash: impl Into<String>, seeds: Vec<u64>) -> Self {
        let mut crate_versions = BTreeMap::new();
        crate_versions.insert(
            env!("CARGO_PKG_NAME").to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        );
        Self {
            format_version: REPORT_FORMAT_VERSION,
            config,
            data_hash: data_hash.into(),
            seeds,
            crate_versions,
            git_commit: std::env::current_dir().ok().and_then(|d| git_commit(&d)),
            created_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Record another crate's version (the CLI adds its own).
    pub fn with_crate_version(mut self, name: &str, version: &str) -> Self {
        self.crate_versions
            .insert(name.to_string(), version.to_string());
        self
    }
}

/// One row of the metrics table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// The backtest's label.
    pub label: String,
    /// What it is.
    pub description: String,
    /// Its metrics, with the information ratio against the report's benchmark.
    pub summary: PerformanceSummary,
    /// NAV at the end.
    pub final_nav: f64,
    /// All costs paid.
    pub total_costs: f64,
    /// Number of orders.
    pub n_trades: usize,
    /// Whether the run ended in ruin.
    pub ruined: bool,
}

/// The metrics of `results` side by side, with the information ratio of each against the
/// result labelled `benchmark` (when given).
///
/// The results must be comparable: distinct labels and the same market rows (the same span,
/// so the same number of returns). An error names the first that is not.
pub fn compare(
    results: &[BacktestResult],
    benchmark: Option<&str>,
    config: &SummaryConfig,
) -> Result<Vec<MetricsRow>, EvalError> {
    let Some(first) = results.first() else {
        return Err(EvalError::Incomparable("no result to compare".into()));
    };
    let rows = first.rows();
    for (k, r) in results.iter().enumerate() {
        if results[..k].iter().any(|o| o.label == r.label) {
            return Err(EvalError::Incomparable(format!(
                "two results are labelled `{}`",
                r.label
            )));
        }
        if r.rows() != rows {
            return Err(EvalError::Incomparable(format!(
                "`{}` covers market rows {}..={} ({} points) but `{}` covers {}..={} ({} \
                 points): compare results of the same span",
                r.label,
                r.equity.first().map_or(0, |p| p.row),
                r.equity.last().map_or(0, |p| p.row),
                r.equity.len(),
                first.label,
                rows.first().copied().unwrap_or(0),
                rows.last().copied().unwrap_or(0),
                rows.len()
            )));
        }
    }
    let bench = match benchmark {
        Some(label) => Some(
            results
                .iter()
                .find(|r| r.label == label)
                .ok_or_else(|| {
                    EvalError::Incomparable(format!(
                        "benchmark `{label}` is not among the results ({})",
                        results
                            .iter()
                            .map(|r| r.label.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?
                .returns(),
        ),
        None => None,
    };
    results
        .iter()
        .map(|r| {
            Ok(MetricsRow {
                label: r.label.clone(),
                description: r.description.clone(),
                summary: BacktestResult::summarize(&r.equity, bench.as_deref(), config)?,
                final_nav: r.final_nav(),
                total_costs: r.total_costs().total(),
                n_trades: r.trades.len(),
                ruined: r.ruined,
            })
        })
        .collect()
}

/// An evaluation: backtests, their metrics, an optional walk-forward, and the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// How to reproduce the run.
    pub manifest: RunManifest,
    /// The label of the row the information ratios are measured against.
    pub benchmark: Option<String>,
    /// The backtests: the agent first, then the baselines, on one span.
    pub results: Vec<BacktestResult>,
    /// Their metrics, in the same order.
    pub metrics: Vec<MetricsRow>,
    /// A walk-forward evaluation, when one was run.
    pub walk_forward: Option<WalkForwardResult>,
}

impl Report {
    /// A report of `results` (the agent first, then baselines) with the information ratio
    /// against `benchmark` (a label among them; `buy-and-hold` or the index are typical).
    pub fn new(
        manifest: RunManifest,
        results: Vec<BacktestResult>,
        benchmark: Option<&str>,
    ) -> Result<Self, EvalError> {
        let config = results
            .first()
            .map(|r| r.metrics.config.clone())
            .unwrap_or_default();
        let metrics = compare(&results, benchmark, &config)?;
        Ok(Self {
            format_version: REPORT_FORMAT_VERSION,
            manifest,
            benchmark: benchmark.map(str::to_string),
            results,
            metrics,
            walk_forward: None,
        })
    }

    /// Attach a walk-forward evaluation.
    pub fn with_walk_forward(mut self, walk_forward: WalkForwardResult) -> Self {
        self.walk_forward = Some(walk_forward);
        self
    }

    /// The report as pretty-printed JSON (NaN metrics as `null`, infinities as strings).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Read a report written by [`write_all`] (or [`Report::to_json`]); an error names the
    /// file, line and column of bad JSON, or a format version this crate does not read.
    pub fn read_json(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io("read", path, &e))?;
        let report: Self = serde_json::from_str(&text).map_err(|e| EvalError::json(path, &e))?;
        if report.format_version != REPORT_FORMAT_VERSION {
            return Err(EvalError::Json {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!(
                    "format_version {} is not {REPORT_FORMAT_VERSION}, the version this \
                     build reads",
                    report.format_version
                ),
            });
        }
        Ok(report)
    }
}

/// A file name part from a label: ASCII letters and digits kept (lower-cased), every run of
/// anything else one `_` (`S&P 500 index` -> `s_p_500_index`).
pub fn file_stem(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "result".into()
    } else {
        trimmed.into()
    }
}

/// A CSV cell: numbers in Rust's shortest round-trip form (`NaN`, `inf`, `-inf` as such);
/// text quoted when it holds a comma, quote or line break.
fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn num(v: f64) -> String {
    v.to_string()
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: &[String]| cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    out.push_str(&line(header));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The metrics table as CSV: a header and one row per [`MetricsRow`].
pub fn metrics_csv(rows: &[MetricsRow]) -> String {
    let header = strings(&[
        "label",
        "n_periods",
        "final_nav",
        "cumulative_return",
        "annual_return",
        "annual_volatility",
        "sharpe_ratio",
        "sortino_ratio",
        "max_drawdown",
        "calmar_ratio",
        "value_at_risk",
        "expected_shortfall",
        "win_rate",
        "turnover",
        "exposure",
        "information_ratio",
        "probabilistic_sharpe_ratio",
        "total_costs",
        "n_trades",
        "ruined",
        "description",
    ]);
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                r.label.clone(),
                s.n_periods.to_string(),
                num(r.final_nav),
                num(s.cumulative_return),
                num(s.annual_return),
                num(s.annual_volatility),
                num(s.sharpe_ratio),
                num(s.sortino_ratio),
                num(s.max_drawdown),
                num(s.calmar_ratio),
                num(s.value_at_risk),
                num(s.expected_shortfall),
                num(s.win_rate),
                opt(s.turnover),
                opt(s.exposure),
                opt(s.information_ratio),
                num(s.probabilistic_sharpe_ratio),
                num(r.total_costs),
                r.n_trades.to_string(),
                r.ruined.to_string(),
                r.description.clone(),
            ]
        })
        .collect();
    csv(&header, &body)
}

fn date_cell(d: Option<quantrl_data::Date>) -> String {
    crate::date_serde::fmt(d)
}

/// An equity curve as CSV: a header and one row per [`EquityPoint`](crate::EquityPoint),
/// with a weight column per asset (`w_<asset>`).
pub fn equity_csv(result: &BacktestResult) -> String {
    let mut header = strings(&[
        "row",
        "date",
        "nav",
        "cash",
        "gross_exposure",
        "drawdown",
        "step_return",
        "turnover",
        "traded_notional",
        "fee",
        "spread",
        "impact",
        "slippage",
        "borrow",
        "financing",
    ]);
    header.extend(result.asset_names.iter().map(|a| format!("w_{a}")));
    let body: Vec<Vec<String>> = result
        .equity
        .iter()
        .map(|p| {
            let c = &p.costs;
            let mut r = vec![
                p.row.to_string(),
                date_cell(p.date),
                num(p.nav),
                num(p.cash),
                num(p.gross_exposure),
                num(p.drawdown),
                num(p.step_return),
                num(p.turnover),
                num(p.traded_notional),
                num(c.fee),
                num(c.spread),
                num(c.impact),
                num(c.slippage),
                num(c.borrow),
                num(c.financing),
            ];
            r.extend(p.weights.iter().map(|w| num(*w)));
            r
        })
        .collect();
    csv(&header, &body)
}

/// A trade log as CSV: a header and one row per [`Trade`](crate::Trade).
pub fn trades_csv(result: &BacktestResult) -> String {
    let header = strings(&[
        "decision_row",
        "row",
        "date",
        "asset",
        "shares",
        "price",
        "notional",
        "fee",
        "spread",
        "impact",
        "slippage",
    ]);
    let body: Vec<Vec<String>> = result
        .trades
        .iter()
        .map(|t| {
            vec![
                t.decision_row.to_string(),
                t.row.to_string(),
                date_cell(t.date),
                t.asset.clone(),
                num(t.shares),
                num(t.price),
                num(t.notional),
                num(t.fee),
                num(t.spread),
                num(t.impact),
                num(t.slippage),
            ]
        })
        .collect();
    csv(&header, &body)
}

/// Every out-of-sample series of a walk-forward, long format: one row per series and return.
pub fn walk_forward_oos_csv(wf: &WalkForwardResult) -> String {
    let header = strings(&["series", "seed", "row", "date", "step_return", "nav"]);
    let mut body = Vec::new();
    for s in wf.out_of_sample.iter().chain(&wf.baselines_out_of_sample) {
        for k in 0..s.returns.len() {
            body.push(vec![
                s.label.clone(),
                s.seed.map(|x| x.to_string()).unwrap_or_default(),
                s.rows[k].to_string(),
                date_cell(s.dates[k]),
                num(s.returns[k]),
                num(s.nav[k]),
            ]);
        }
    }
    csv(&header, &body)
}

/// The across-seed intervals of a walk-forward: one row per scope (`overall`, `window k`) and
/// metric.
pub fn walk_forward_metrics_csv(wf: &WalkForwardResult) -> String {
    let header = strings(&[
        "scope", "metric", "n", "mean", "std", "level", "low", "high",
    ]);
    let mut body = Vec::new();
    let scopes = std::iter::once(("overall".to_string(), &wf.overall)).chain(
        wf.per_window
            .iter()
            .enumerate()
            .map(|(k, m)| (format!("window {k}"), m)),
    );
    for (scope, m) in scopes {
        for (name, i) in m.named() {
            body.push(vec![
                scope.clone(),
                name.to_string(),
                i.n.to_string(),
                num(i.mean),
                num(i.std),
                num(i.level),
                num(i.low),
                num(i.high),
            ]);
        }
    }
    csv(&header, &body)
}

/// The files [`write_all`] writes for `report`: `(file name, contents)`.
pub fn render_files(report: &Report) -> Result<Vec<(String, Vec<u8>)>, EvalError> {
    let mut files = vec![
        ("report.json".to_string(), report.to_json().into_bytes()),
        (
            "manifest.json".to_string(),
            serde_json::to_string_pretty(&report.manifest)
                .expect("a manifest always serializes")
                .into_bytes(),
        ),
        (
            "metrics.csv".to_string(),
            metrics_csv(&report.metrics).into_bytes(),
        ),
    ];
    let mut stems: Vec<String> = Vec::new();
    for r in &report.results {
        let stem = file_stem(&r.label);
        if stems.contains(&stem) {
            return Err(EvalError::Incomparable(format!(
                "two results would be saved as `equity_{stem}.csv`: give them distinct labels"
            )));
        }
        files.push((format!("equity_{stem}.csv"), equity_csv(r).into_bytes()));
        files.push((format!("trades_{stem}.csv"), trades_csv(r).into_bytes()));
        stems.push(stem);
    }
    if let Some(wf) = &report.walk_forward {
        files.push((
            "walk_forward_oos.csv".into(),
            walk_forward_oos_csv(wf).into_bytes(),
        ));
        files.push((
            "walk_forward_metrics.csv".into(),
            walk_forward_metrics_csv(wf).into_bytes(),
        ));
    }
    Ok(files)
}

/// Write every file of `report` into `dir` (created if missing), atomically and
/// all-or-nothing (see the module docs); returns the paths written.
pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, EvalError> {
    write_files_atomically(dir, &render_files(report)?)
}

/// Write `files` (name, contents) into `dir`: all to temporary files first, each flushed to
/// disk, then each renamed over its final name. On any failure before the renames, the
/// temporary files are removed and nothing in `dir` has changed.
pub fn write_files_atomically(
    dir: &Path,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io("create directory", dir, &e))?;
    // A rename can only fail for reasons found now (a directory where a file goes) or for
    // reasons outside our control: check first, so that the usual failures change nothing.
    for (name, _) in files {
        let path = dir.join(name);
        if path.is_dir() {
            return Err(EvalError::io(
                "replace",
                &path,
                &std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "a directory is in the way of the file",
                ),
            ));
        }
    }
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (name, bytes) in files {
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            cleanup(&temps);
            return Err(EvalError::io("write", &temp, &e));
        }
        temps.push(temp);
    }
    let mut paths = Vec::with_capacity(files.len());
    for (k, ((name, _), temp)) in files.iter().zip(&temps).enumerate() {
        let path = dir.join(name);
        if let Err(e) = std::fs::rename(temp, &path) {
            cleanup(&temps[k..]);
            return Err(EvalError::io("rename", &path, &e));
        }
        paths.push(path);
    }
    // Make the renames themselves durable where the platform allows syncing a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(paths)
}

fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.decimals$}")
    }
}

fn fmt_pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        fmt_num(v, 2)
    }
}

/// The metrics as a plain-text table for a terminal: one row per backtest (the agent and the
/// baselines), columns Sharpe, Sortino, max drawdown, Calmar, annual return and volatility,
/// expected shortfall (CVaR), win rate, turnover, exposure, information ratio and final NAV
/// (scientific from 1e10 on). Undefined values print as `-`.
pub fn format_table(rows: &[MetricsRow]) -> String {
    let header = [
        "", "Sharpe", "Sortino", "MaxDD", "Calmar", "AnnRet", "AnnVol", "CVaR", "Win", "Turn",
        "Expo", "IR", "FinalNAV",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                if r.ruined {
                    format!("{} (ruined)", r.label)
                } else {
                    r.label.clone()
                },
                fmt_num(s.sharpe_ratio, 2),
                fmt_num(s.sortino_ratio, 2),
                fmt_pct(s.max_drawdown),
                fmt_num(s.calmar_ratio, 2),
                fmt_pct(s.annual_return),
                fmt_pct(s.annual_volatility),
                fmt_pct(s.expected_shortfall),
                fmt_pct(s.win_rate),
                s.turnover.map_or("-".into(), |v| fmt_num(v, 3)),
                s.exposure.map_or("-".into(), |v| fmt_num(v, 2)),
                s.information_ratio.map_or("-".into(), |v| fmt_num(v, 2)),
                if r.final_nav.abs() >= 1e10 {
                    format!("{:.3e}", r.final_nav)
                } else {
                    fmt_num(r.final_nav, 0)
                },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        for (k, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if k == 0 {
                let _ = write!(out, "{c:<w$}");
            } else {
                let _ = write!(out, "  {c:>w$}");
            }
        }
        out.push('\n');
    };
    line(&header.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&rule);
    for r in &body {
        line(r);
    }
    out
}

/// A walk-forward as a plain-text table for a terminal: for every window (its training and
/// test dates), the agent's mean over seeds with its confidence interval and every baseline on
/// the same test span; then the same for the out-of-sample series stitched across all
/// windows. Columns: Sharpe, annual return, cumulative return, max drawdown. An agent cell
/// reads `mean [low, high]` (the mean alone for one seed); undefined values print as `-`.
pub fn format_walk_forward_table(wf: &WalkForwardResult) -> String {
    let n_seeds = wf.seeds.len();
    let agent_label = format!(
        "agent ({n_seeds} seed{})",
        if n_seeds == 1 { "" } else { "s" }
    );
    let interval = |i: &crate::MeanInterval, pct: bool| {
        let f = |v: f64| if pct { fmt_pct(v) } else { fmt_num(v, 2) };
        if i.low.is_finite() && i.high.is_finite() {
            format!("{} [{}, {}]", f(i.mean), f(i.low), f(i.high))
        } else {
            f(i.mean)
        }
    };
    let agent_row = |m: &crate::MetricIntervals| {
        vec![
            agent_label.clone(),
            interval(&m.sharpe_ratio, false),
            interval(&m.annual_return, true),
            interval(&m.cumulative_return, true),
            interval(&m.max_drawdown, true),
        ]
    };
    let plain_row = |label: &str, s: &PerformanceSummary| {
        vec![
            label.to_string(),
            fmt_num(s.sharpe_ratio, 2),
            fmt_pct(s.annual_return),
            fmt_pct(s.cumulative_return),
            fmt_pct(s.max_drawdown),
        ]
    };
    let date = |d: Option<quantrl_data::Date>| d.map_or("-".to_string(), |d| d.to_string());
    // Blocks of (title, rows); all rows share the column widths.
    let mut blocks: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (k, w) in wf.windows.iter().enumerate() {
        let title = match wf.window_dates.get(k) {
            Some(d) => format!(
                "window {k}: train {} .. {}, test {} .. {}",
                date(d.train_first),
                date(d.train_last),
                date(d.test_first),
                date(d.test_last)
            ),
            None => format!(
                "window {k}: train rows {:?}, test rows {:?}",
                w.train, w.test
            ),
        };
        let mut rows = Vec::new();
        if let Some(m) = wf.per_window.get(k) {
            rows.push(agent_row(m));
        }
        for r in wf.baseline_runs.iter().filter(|r| r.window == w.index) {
            rows.push(plain_row(&r.result.label, &r.result.metrics));
        }
        blocks.push((title, rows));
    }
    let first = wf.window_dates.first().and_then(|d| d.test_first);
    let last = wf.window_dates.last().and_then(|d| d.test_last);
    let mut rows = vec![agent_row(&wf.overall)];
    for b in &wf.baselines_out_of_sample {
        rows.push(plain_row(&b.label, &b.metrics));
    }
    blocks.push((
        format!(
            "out of sample, all {} windows stitched ({} .. {}):",
            wf.windows.len(),
            date(first),
            date(last)
        ),
        rows,
    ));
    let header: Vec<String> = ["", "Sharpe", "AnnRet", "CumRet", "MaxDD"]
        .map(String::from)
        .to_vec();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (_, rows) in &blocks {
        for r in rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        for (k, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if k == 0 {
                let _ = write!(out, "  {c:<w$}");
            } else {
                let _ = write!(out, "  {c:>w$}");
            }
        }
        out.push('\n');
    };
    for (title, rows) in &blocks {
        out.push_str(title);
        out.push('\n');
        line(&mut out, &header);
        for r in rows {
            line(&mut out, r);
        }
    }
    out
}
