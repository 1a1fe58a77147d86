//! Walk-forward evaluation: train on a window, test on the next, roll; several seeds.
//!
//! [`Window`]s pair a training span with the test span after it (market rows, half-open).
//! Build them from dates with [`calendar_windows`] ("train on months `k..k+a`, test on the
//! `b` months after, roll by `b`"), from row counts with [`row_windows`] (the folds of
//! `quantrl_data::split::WalkForwardConfig`), or by hand and check them with
//! [`check_windows`].
//!
//! [`WalkForward::run`] calls the caller's `train(window, seed)` for every window and seed,
//! backtests the policy it returns on the window's test span, runs the baselines on the very
//! same test spans, and aggregates:
//!
//! - per window and seed, the test backtest and its metrics;
//! - per seed, the out-of-sample equity: the test returns of all windows concatenated in time
//!   order and compounded from the initial NAV, and the metrics of that series;
//! - across seeds, the mean of each metric with a 95% Student-t confidence interval
//!   ([`MeanInterval`]), overall and per window.
//!
//! **Test spans.** A test window of rows `a..b` is backtested from a decision on row `a - 1`
//! (the last row before the test; the policy sees no test data) so that its `b - a` returns
//! are exactly the returns realized on the test rows and consecutive windows tile the
//! out-of-sample period without a gap. Every window starts flat with the initial NAV and pays
//! its own entry costs, as a fresh deployment would.

use std::fmt::Display;
use std::ops::Range;

use quantrl_core::ConfigError;
use quantrl_data::Date;
use quantrl_data::split::{Fold, WalkForwardConfig};
use serde::{Deserialize, Serialize};

use crate::backtest::{BacktestPolicy, BacktestResult, Backtester};
use crate::baselines::{BaselineConfig, standard_set};
use crate::error::EvalError;
use crate::interval::{MeanInterval, check_level};
use crate::summary::{PerformanceSummary, SummaryConfig};

/// One walk-forward window: train on `train`, test on `test` (market rows, half-open,
/// `train.end <= test.start`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Window number, from 0, in time order.
    pub index: usize,
    /// Rows to train on.
    pub train: Range<usize>,
    /// Rows to test on.
    pub test: Range<usize>,
}

/// The windows of `quantrl_data`'s walk-forward folds over `n_rows` rows: train
/// `config.train_len` rows, skip `config.embargo`, test `config.test_len`, roll by
/// `config.test_len` (rolling or expanding training window).
pub fn row_windows(config: &WalkForwardConfig, n_rows: usize) -> Result<Vec<Window>, EvalError> {
    Ok(config
        .folds(n_rows)?
        .into_iter()
        .map(|Fold { index, train, test }| Window { index, train, test })
        .collect())
}

/// The first day of the month `months` months after `(year, month)`.
fn month_start(year: i32, month: u32, months: u32) -> Result<Date, EvalError> {
    let m0 = year as i64 * 12 + (month as i64 - 1) + months as i64;
    Ok(Date::from_ymd(
        (m0.div_euclid(12)) as i32,
        (m0.rem_euclid(12) + 1) as u32,
        1,
    )?)
}

/// Rolling calendar windows over `dates` (one per market row, strictly increasing): window
/// `k` trains on the `train_months` calendar months starting `k * test_months` months after
/// the month of the first date, and tests on the `test_months` months right after. With
/// `train_months == test_months` this is "train on block `k`, test on block `k + 1`".
///
/// Windows whose test block holds no row are dropped; the last test block may be cut short
/// by the end of the data. An error if no window fits or a month count is zero.
///
/// ```
/// use quantrl_data::Date;
/// use quantrl_eval::calendar_windows;
/// // Business-day-like dates over three years.
/// let start = Date::from_ymd(2020, 1, 1)?.days_since_epoch();
/// let dates: Vec<Date> = (0..3 * 365).map(|d| Date::from_days_since_epoch(start + d)).collect();
/// let windows = calendar_windows(&dates, 12, 12)?;
/// assert_eq!(windows.len(), 2); // train 2020 / test 2021, train 2021 / test 2022
/// assert_eq!(windows[0].test, windows[1].train);
/// # Ok::<(), quantrl_eval::EvalError>(())
/// ```
pub fn calendar_windows(
    dates: &[Date],
    train_months: u32,
    test_months: u32,
) -> Result<Vec<Window>, EvalError> {
    if train_months == 0 {
        return Err(ConfigError::out_of_range("walk_forward.train_months", 0, ">= 1").into());
    }
    if test_months == 0 {
        return Err(ConfigError::out_of_range("walk_forward.test_months", 0, ">= 1").into());
    }
    if let Some(k) = dates.windows(2).position(|w| w[0] >= w[1]) {
        return Err(EvalError::Dates {
            series: "market".into(),
            reason: format!(
                "row {} ({}) is not after row {k} ({})",
                k + 1,
                dates[k + 1],
                dates[k]
            ),
        });
    }
    let (Some(first), Some(last)) = (dates.first(), dates.last()) else {
        return Err(EvalError::EmptySeries { series: "dates" });
    };
    let (y, m, _) = first.ymd();
    let row = |d: Date| dates.partition_point(|x| *x < d);
    let mut windows = Vec::new();
    for k in 0.. {
        let train_start = month_start(y, m, k * test_months)?;
        let test_start = month_start(y, m, k * test_months + train_months)?;
        let test_end = month_start(y, m, (k + 1) * test_months + train_months)?;
        if test_start > *last {
            break;
        }
        let test = row(test_start)..row(test_end);
        if test.is_empty() {
            continue;
        }
        windows.push(Window {
            index: windows.len(),
            train: row(train_start)..row(test_start),
            test,
        });
    }
    check_windows(&windows, dates.len())?;
    Ok(windows)
}

/// `windows` with the last `embargo_rows` rows of every training span dropped, so that
/// `embargo_rows` rows separate each training span from its test span (labels that look a few
/// bars ahead cannot reach into the test). Checked with [`check_windows`] over `n_rows`; an
/// error names the first window whose training span the embargo empties.
pub fn with_embargo(
    mut windows: Vec<Window>,
    embargo_rows: usize,
    n_rows: usize,
) -> Result<Vec<Window>, EvalError> {
    for w in &mut windows {
        if w.train.len() <= embargo_rows {
            return Err(EvalError::Window {
                window: w.index,
                reason: format!(
                    "an embargo of {embargo_rows} rows leaves nothing of the training span {:?}",
                    w.train
                ),
            });
        }
        w.train.end -= embargo_rows;
    }
    check_windows(&windows, n_rows)?;
    Ok(windows)
}

/// Check windows for a walk-forward over `n_rows` market rows: at least one; each with a
/// non-empty training and test span inside the data, the test after the training
/// (`train.end <= test.start`, so they never overlap); test spans in time order without
/// overlap; windows numbered `0, 1, ...`.
pub fn check_windows(windows: &[Window], n_rows: usize) -> Result<(), EvalError> {
    if windows.is_empty() {
        return Err(EvalError::Window {
            window: 0,
            reason: "no walk-forward window fits the data".into(),
        });
    }
    let mut previous_test_end = 0;
    for (k, w) in windows.iter().enumerate() {
        let bad = |reason: String| EvalError::Window { window: k, reason };
        if w.index != k {
            return Err(bad(format!("is numbered {} (expected {k})", w.index)));
        }
        if w.train.is_empty() || w.test.is_empty() {
            return Err(bad(format!(
                "train {:?} and test {:?} must both be non-empty",
                w.train, w.test
            )));
        }
        if w.train.end > w.test.start {
            return Err(bad(format!(
                "train {:?} overlaps or follows test {:?}",
                w.train, w.test
            )));
        }
        if w.test.end > n_rows {
            return Err(bad(format!(
                "test {:?} goes past the data ({n_rows} rows)",
                w.test
            )));
        }
        if w.test.start < previous_test_end {
            return Err(bad(format!(
                "test {:?} overlaps the previous test window (ending at row {previous_test_end})",
                w.test
            )));
        }
        previous_test_end = w.test.end;
    }
    Ok(())
}

/// The settings of a walk-forward evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkForward {
    /// The windows, checked by [`check_windows`] when run.
    pub windows: Vec<Window>,
    /// Seeds: every window is trained and tested once per seed.
    pub seeds: Vec<u64>,
    /// Baselines to run on every test span (`None`: none).
    pub baselines: Option<BaselineConfig>,
    /// Confidence level of the intervals across seeds (default 0.95).
    pub confidence: f64,
}

impl WalkForward {
    /// Walk-forward over `windows` with `seeds`, the standard baselines and 95% intervals.
    pub fn new(windows: Vec<Window>, seeds: Vec<u64>) -> Self {
        Self {
            windows,
            seeds,
            baselines: Some(BaselineConfig::default()),
            confidence: 0.95,
        }
    }

    /// Train and test every window with every seed, then aggregate (see the module docs).
    ///
    /// `train(window, seed)` returns the policy to test on `window.test` (trained on
    /// `window.train` only, which is the caller's promise); its error becomes
    /// [`EvalError::Training`] naming the window and seed. The backtests use `backtester`'s
    /// market, environment settings and dates, with the slippage seed set to each seed.
    pub fn run<P, E, F>(
        &self,
        backtester: &Backtester,
        mut train: F,
    ) -> Result<WalkForwardResult, EvalError>
    where
        P: BacktestPolicy,
        E: Display,
        F: FnMut(&Window, u64) -> Result<P, E>,
    {
        check_windows(&self.windows, backtester.market().n_steps())?;
        check_level("walk_forward.confidence", self.confidence)?;
        if self.seeds.is_empty() {
            return Err(
                ConfigError::out_of_range("walk_forward.seeds", "[]", "at least one seed").into(),
            );
        }
        let mut runs = Vec::with_capacity(self.windows.len() * self.seeds.len());
        let mut baseline_runs = Vec::new();
        for w in &self.windows {
            let span = w.test.start.saturating_sub(1)..w.test.end;
            let tester = backtester.with_span(span).map_err(|e| EvalError::Window {
                window: w.index,
                reason: format!("test span {:?} cannot be backtested: {e}", w.test),
            })?;
            for &seed in &self.seeds {
                let mut policy = train(w, seed).map_err(|e| EvalError::Training {
                    window: w.index,
                    seed,
                    message: e.to_string(),
                })?;
                let result = tester.clone().with_seed(seed).run(&mut policy)?;
                runs.push(WindowRun {
                    window: w.index,
                    seed,
                    result,
                });
            }
            if let Some(config) = &self.baselines {
                for result in standard_set(&tester, config)? {
                    baseline_runs.push(WindowRun {
                        window: w.index,
                        seed: tester.seed(),
                        result,
                    });
                }
            }
        }
        let summary = backtester.summary_config();
        let mut out_of_sample = Vec::new();
        for &seed in &self.seeds {
            let parts: Vec<&WindowRun> = runs.iter().filter(|r| r.seed == seed).collect();
            out_of_sample.push(OutOfSample::concatenate(
                &format!("agent (seed {seed})"),
                Some(seed),
                &parts,
                summary,
            )?);
        }
        let mut baselines_oos = Vec::new();
        let mut labels: Vec<&str> = Vec::new();
        for r in &baseline_runs {
            if !labels.contains(&r.result.label.as_str()) {
                labels.push(&r.result.label);
            }
        }
        for label in labels {
            let parts: Vec<&WindowRun> = baseline_runs
                .iter()
                .filter(|r| r.result.label == label)
                .collect();
            baselines_oos.push(OutOfSample::concatenate(label, None, &parts, summary)?);
        }
        let overall = MetricIntervals::across(
            &out_of_sample.iter().map(|o| &o.metrics).collect::<Vec<_>>(),
            self.confidence,
        )?;
        let per_window = self
            .windows
            .iter()
            .map(|w| {
                let metrics: Vec<&PerformanceSummary> = runs
                    .iter()
                    .filter(|r| r.window == w.index)
                    .map(|r| &r.result.metrics)
                    .collect();
                MetricIntervals::across(&metrics, self.confidence)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WalkForwardResult {
            windows: self.windows.clone(),
            window_dates: self
                .windows
                .iter()
                .map(|w| WindowDates::of(w, backtester.dates()))
                .collect(),
            seeds: self.seeds.clone(),
            runs,
            baseline_runs,
            out_of_sample,
            baselines_out_of_sample: baselines_oos,
            overall,
            per_window,
        })
    }
}

/// First and last dates of a window's spans (inclusive), when the market has dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowDates {
    /// First training date.
    #[serde(with = "crate::date_serde")]
    pub train_first: Option<Date>,
    /// Last training date.
    #[serde(with = "crate::date_serde")]
    pub train_last: Option<Date>,
    /// First test date.
    #[serde(with = "crate::date_serde")]
    pub test_first: Option<Date>,
    /// Last test date.
    #[serde(with = "crate::date_serde")]
    pub test_last: Option<Date>,
}

impl WindowDates {
    fn of(w: &Window, dates: Option<&[Date]>) -> Self {
        let at = |row: usize| dates.map(|d| d[row]);
        Self {
            train_first: at(w.train.start),
            train_last: at(w.train.end - 1),
            test_first: at(w.test.start),
            test_last: at(w.test.end - 1),
        }
    }
}

/// The test backtest of one window and seed (or of a baseline on one window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRun {
    /// Window index.
    pub window: usize,
    /// Seed (for baselines: the backtester's slippage seed).
    pub seed: u64,
    /// The backtest of the test span.
    pub result: BacktestResult,
}

/// An out-of-sample series: the test returns of every window, concatenated in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfSample {
    /// `agent (seed s)` or a baseline's label.
    pub label: String,
    /// The seed, for the agent.
    pub seed: Option<u64>,
    /// Market row of each return.
    pub rows: Vec<usize>,
    /// Date of each return, when known.
    #[serde(with = "dates_serde")]
    pub dates: Vec<Option<Date>>,
    /// The returns.
    pub returns: Vec<f64>,
    /// `initial_nav * prod(1 + r)` up to each return.
    pub nav: Vec<f64>,
    /// Metrics of the concatenated returns (turnover and exposure: means over all steps).
    pub metrics: PerformanceSummary,
}

impl OutOfSample {
    fn concatenate(
        label: &str,
        seed: Option<u64>,
        parts: &[&WindowRun],
        config: &SummaryConfig,
    ) -> Result<Self, EvalError> {
        let mut parts = parts.to_vec();
        parts.sort_by_key(|r| r.window);
        let nav0 = parts.first().map_or(1.0, |r| r.result.initial_nav);
        let (mut rows, mut dates, mut returns, mut nav) = (vec![], vec![], vec![], vec![]);
        let (mut turnover, mut exposure) = (0.0, 0.0);
        let mut level = nav0;
        for r in &parts {
            for p in r.result.equity.iter().skip(1) {
                rows.push(p.row);
                dates.push(p.date);
                returns.push(p.step_return);
                level *= 1.0 + p.step_return;
                nav.push(level);
                turnover += p.turnover;
                exposure += p.gross_exposure;
            }
        }
        let mut metrics = PerformanceSummary::compute(&returns, None, None, config)?;
        let n = returns.len() as f64;
        metrics.turnover = Some(turnover / n);
        metrics.exposure = Some(exposure / n);
        Ok(Self {
            label: label.into(),
            seed,
            rows,
            dates,
            returns,
            nav,
            metrics,
        })
    }
}

mod dates_serde {
    use quantrl_data::Date;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &[Option<Date>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(d.len()))?;
        for x in d {
            seq.serialize_element(&x.map(|d| d.to_string()))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Option<Date>>, D::Error> {
        Vec::<Option<String>>::deserialize(d)?
            .into_iter()
            .map(|x| {
                x.map(|t| t.parse().map_err(serde::de::Error::custom))
                    .transpose()
            })
            .collect()
    }
}

/// Mean and confidence interval across seeds of the key metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricIntervals {
    /// Annualized Sharpe ratio.
    pub sharpe_ratio: MeanInterval,
    /// Annualized Sortino ratio.
    pub sortino_ratio: MeanInterval,
    /// Compound annual return.
    pub annual_return: MeanInterval,
    /// Annualized volatility.
    pub annual_volatility: MeanInterval,
    /// Maximum drawdown (negative).
    pub max_drawdown: MeanInterval,
    /// Calmar ratio.
    pub calmar_ratio: MeanInterval,
    /// Cumulative return.
    pub cumulative_return: MeanInterval,
    /// Expected shortfall (CVaR) at the summary's alpha.
    pub expected_shortfall: MeanInterval,
    /// Win rate.
    pub win_rate: MeanInterval,
    /// Mean turnover per step.
    pub turnover: MeanInterval,
    /// Mean gross exposure.
    pub exposure: MeanInterval,
}

impl MetricIntervals {
    /// The intervals of `summaries` (one per seed) at `level`, each truncated to the range
    /// its metric can take ([`MeanInterval::clamped`]: returns and expected shortfall at
    /// least -100%, drawdown in `[-100%, 0]`, volatility and turnover non-negative, win rate
    /// in `[0, 1]`).
    pub fn across(summaries: &[&PerformanceSummary], level: f64) -> Result<Self, EvalError> {
        let of = |f: &dyn Fn(&PerformanceSummary) -> f64, lo: f64, hi: f64| {
            let v: Vec<f64> = summaries.iter().map(|s| f(s)).collect();
            MeanInterval::of(&v, level).map(|i| i.clamped(lo, hi))
        };
        let inf = f64::INFINITY;
        Ok(Self {
            sharpe_ratio: of(&|s| s.sharpe_ratio, -inf, inf)?,
            sortino_ratio: of(&|s| s.sortino_ratio, -inf, inf)?,
            annual_return: of(&|s| s.annual_return, -1.0, inf)?,
            annual_volatility: of(&|s| s.annual_volatility, 0.0, inf)?,
            max_drawdown: of(&|s| s.max_drawdown, -1.0, 0.0)?,
            calmar_ratio: of(&|s| s.calmar_ratio, -inf, inf)?,
            cumulative_return: of(&|s| s.cumulative_return, -1.0, inf)?,
            expected_shortfall: of(&|s| s.expected_shortfall, -1.0, inf)?,
            win_rate: of(&|s| s.win_rate, 0.0, 1.0)?,
            turnover: of(&|s| s.turnover.unwrap_or(f64::NAN), 0.0, inf)?,
            exposure: of(&|s| s.exposure.unwrap_or(f64::NAN), -inf, inf)?,
        })
    }

    /// `(name, interval)` pairs in a fixed order, for tables and CSV.
    pub fn named(&self) -> [(&'static str, &MeanInterval); 11] {
        [
            ("sharpe_ratio", &self.sharpe_ratio),
            ("sortino_ratio", &self.sortino_ratio),
            ("annual_return", &self.annual_return),
            ("annual_volatility", &self.annual_volatility),
            ("max_drawdown", &self.max_drawdown),
            ("calmar_ratio", &self.calmar_ratio),
            ("cumulative_return", &self.cumulative_return),
            ("expected_shortfall", &self.expected_shortfall),
            ("win_rate", &self.win_rate),
            ("turnover", &self.turnover),
            ("exposure", &self.exposure),
        ]
    }
}

/// Everything a walk-forward evaluation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkForwardResult {
    /// The windows.
    pub windows: Vec<Window>,
    /// Their dates, when the market has dates.
    pub window_dates: Vec<WindowDates>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The agent's test backtest of every window and seed (window-major).
    pub runs: Vec<WindowRun>,
    /// Every baseline's test backtest of every window.
    pub baseline_runs: Vec<WindowRun>,
    /// Per seed, the agent's out-of-sample series.
    pub out_of_sample: Vec<OutOfSample>,
    /// Per baseline, its out-of-sample series over the same test spans.
    pub baselines_out_of_sample: Vec<OutOfSample>,
    /// Across seeds: mean and interval of the out-of-sample metrics.
    pub overall: MetricIntervals,
    /// Across seeds, per window: mean and interval of the window's test metrics.
    pub per_window: Vec<MetricIntervals>,
}
