//! Feature matrices from loaded prices: causal by construction, warm-up explicit.
//!
//! [`featurize_ohlcv`] and [`featurize_panel`] turn prices into a `T x F` row-major matrix of
//! named features built from [`crate::indicators`], per asset:
//!
//! | name | feature | first defined row |
//! | --- | --- | --- |
//! | `log_return` | `ln(c_t / c_{t-1})` | 1 |
//! | `vol_{w}` | rolling volatility of log returns over `w`, scaled by `sqrt(periods_per_year)` | `w` |
//! | `rsi_{w}` | RSI in `[0, 100]` | `w - 1` |
//! | `macd`, `macd_signal` | MACD line and signal line, divided by the close | `max(fast, slow) + signal - 2` |
//! | `bb_pctb_{w}` | Bollinger %B: `(c - lower) / (upper - lower)`; 0.5 where the band is flat | `w - 1` |
//! | `bb_width_{w}` | Bollinger bandwidth: `(upper - lower) / mavg` | `w - 1` |
//! | `atr_{w}` | ATR divided by the close (needs high and low) | `w - 1` |
//! | `corr_{w}` | rolling correlation of log returns with a benchmark's; 0 where either is flat | `w` |
//!
//! Panel features are named `TICKER.name` and laid out asset by asset within each row.
//!
//! **Causal:** the row at `t` uses prices at or before `t` only (the panel's equal-weight
//! benchmark at `t` is the mean of the assets' returns at `t`); a property test perturbs the
//! prices after `t` and checks that rows `..=t` do not move.
//!
//! **Warm-up:** before its first defined row a feature is `NaN`.
//! [`FeatureMatrix::first_valid_row`] is the first row where every feature is defined (it
//! depends on the configuration only, [`FeatureConfig::warmup`]); from there on every value is
//! finite, so episodes start at or after it.
//!
//! **Normalization** uses training rows only: [`FeatureMatrix::normalized`] fits a
//! [`Normalizer`] on the training span (from `first_valid_row` on) and scales every row with
//! it.
//!
//! ```
//! use quantrl_data::features::{FeatureConfig, featurize_panel};
//! use quantrl_data::split::split_by_fraction;
//!
//! let panel = quantrl_data::embedded::sp500_panel()?;
//! let config = FeatureConfig { correlation_window: Some(63), ..FeatureConfig::default() };
//! let features = featurize_panel(&panel, &config, None)?;
//! assert_eq!(features.n_rows(), panel.n_dates());
//! assert_eq!(features.names[0], "AAPL.log_return");
//!
//! let split = split_by_fraction(features.n_rows(), 0.7, 0.15)?;
//! let (scaled, _normalizer) = features.normalized(split.train.clone())?;
//! let first = features.first_valid_row;
//! assert!(scaled.row(first).iter().all(|v| v.is_finite()));
//! # Ok::<(), quantrl_data::DataError>(())
//! ```

use std::ops::Range;

use ndarray::Array2;
use quantrl_core::{ConfigError, check_positive};

use crate::error::{check_prices, check_same_len, check_window};
use crate::indicators::{
    atr, bollinger, log_returns, macd, rolling_correlation, rolling_volatility, rsi,
};
use crate::normalize::Normalizer;
use crate::{DataError, Date, Ohlcv, PricePanel};

/// MACD spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdSpans {
    /// Fast EMA span (12).
    pub fast: usize,
    /// Slow EMA span (26).
    pub slow: usize,
    /// Signal EMA span (9).
    pub signal: usize,
}

/// Bollinger band parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerBands {
    /// Rolling window (20).
    pub window: usize,
    /// Band half-width in population standard deviations (2).
    pub k: f64,
}

/// Which features to compute. The default uses the close only, so it applies to every data
/// set: log returns, volatility over 5, 21 and 63 days, RSI(14), MACD(12, 26, 9), Bollinger
/// (20, 2); ATR and correlation are off.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// Windows of the rolling volatility features (each >= 2).
    pub volatility_windows: Vec<usize>,
    /// Annualization of the volatility (252 for daily bars, 1 for per-period).
    pub periods_per_year: f64,
    /// RSI window; `None`: no RSI.
    pub rsi_window: Option<usize>,
    /// MACD spans; `None`: no MACD.
    pub macd: Option<MacdSpans>,
    /// Bollinger bands; `None`: no %B and bandwidth.
    pub bollinger: Option<BollingerBands>,
    /// ATR window; needs high and low, so only [`featurize_ohlcv`] has it (a panel gives
    /// [`DataError::FeatureUnavailable`]).
    pub atr_window: Option<usize>,
    /// Window of the rolling correlation with a benchmark's returns (each asset against the
    /// panel's equal-weight mean, or against the benchmark passed in); `None`: none.
    pub correlation_window: Option<usize>,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            volatility_windows: vec![5, 21, 63],
            periods_per_year: 252.0,
            rsi_window: Some(14),
            macd: Some(MacdSpans {
                fast: 12,
                slow: 26,
                signal: 9,
            }),
            bollinger: Some(BollingerBands { window: 20, k: 2.0 }),
            atr_window: None,
            correlation_window: None,
        }
    }
}

impl FeatureConfig {
    /// Check windows and parameters.
    pub fn validate(&self) -> Result<(), DataError> {
        for &w in &self.volatility_windows {
            check_window("features.volatility_windows", w, 2)?;
        }
        check_positive("features.periods_per_year", self.periods_per_year)?;
        if let Some(w) = self.rsi_window {
            check_window("features.rsi_window", w, 1)?;
        }
        if let Some(m) = self.macd {
            check_window("features.macd.fast", m.fast, 1)?;
            check_window("features.macd.slow", m.slow, 1)?;
            check_window("features.macd.signal", m.signal, 1)?;
        }
        if let Some(b) = self.bollinger {
            check_window("features.bollinger.window", b.window, 1)?;
            if !(b.k.is_finite() && b.k > 0.0) {
                return Err(ConfigError::out_of_range("features.bollinger.k", b.k, "> 0").into());
            }
        }
        if let Some(w) = self.atr_window {
            check_window("features.atr_window", w, 1)?;
        }
        if let Some(w) = self.correlation_window {
            check_window("features.correlation_window", w, 2)?;
        }
        Ok(())
    }

    /// The first row at which every configured feature is defined.
    pub fn warmup(&self) -> usize {
        let mut first = 1; // log return
        first = first.max(self.volatility_windows.iter().copied().max().unwrap_or(0));
        if let Some(w) = self.rsi_window {
            first = first.max(w - 1);
        }
        if let Some(m) = self.macd {
            first = first.max(m.fast.max(m.slow) + m.signal - 2);
        }
        if let Some(b) = self.bollinger {
            first = first.max(b.window - 1);
        }
        if let Some(w) = self.atr_window {
            first = first.max(w - 1);
        }
        if let Some(w) = self.correlation_window {
            first = first.max(w);
        }
        first
    }
}

/// A `T x F` feature matrix, row-major, with named columns and the dates of its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// The date of each row.
    pub dates: Vec<Date>,
    /// The name of each column.
    pub names: Vec<String>,
    /// `T * F` values; row `t` is `values[t * F..(t + 1) * F]`.
    pub values: Vec<f64>,
    /// The first row where every feature is defined; rows before it hold `NaN`s.
    pub first_valid_row: usize,
}

impl FeatureMatrix {
    /// Number of rows `T`.
    pub fn n_rows(&self) -> usize {
        self.dates.len()
    }

    /// Number of features `F`.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Row `t`.
    ///
    /// # Panics
    ///
    /// If `t >= n_rows()`.
    pub fn row(&self, t: usize) -> &[f64] {
        let f = self.n_features();
        &self.values[t * f..(t + 1) * f]
    }

    /// The column named `name`, if there is one.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.names.iter().position(|n| n == name)?;
        Some(
            self.values
                .iter()
                .skip(j)
                .step_by(self.n_features())
                .copied()
                .collect(),
        )
    }

    /// The values as a `T x F` array.
    pub fn to_array2(&self) -> Array2<f64> {
        Array2::from_shape_vec((self.n_rows(), self.n_features()), self.values.clone())
            .expect("values hold n_rows * n_features numbers")
    }

    /// The values as `f32`, row-major (what a network eats).
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// The matrix scaled with a [`Normalizer`] fitted on the training rows `train` only
    /// (rows before [`FeatureMatrix::first_valid_row`] are left out of the fit), and the
    /// normalizer, to save with a model and apply to new data.
    pub fn normalized(
        &self,
        train: Range<usize>,
    ) -> Result<(FeatureMatrix, Normalizer), DataError> {
        let fit_rows = train.start.max(self.first_valid_row)..train.end;
        if fit_rows.start >= fit_rows.end || fit_rows.end > self.n_rows() {
            return Err(DataError::OutOfBounds {
                what: format!("training rows {}..{}", train.start, train.end),
                value: train.end,
                allowed: format!(
                    "a range within 0..{} ending after the warm-up (first valid row {})",
                    self.n_rows(),
                    self.first_valid_row
                ),
            });
        }
        let normalizer = Normalizer::fit(&self.values, self.n_features(), fit_rows)?;
        let values = normalizer.transform(&self.values)?;
        Ok((
            FeatureMatrix {
                values,
                ..self.clone()
            },
            normalizer,
        ))
    }
}

/// One asset's inputs to the feature pipeline.
struct Asset<'a> {
    prefix: String,
    close: &'a [f64],
    high_low: Option<(&'a [f64], &'a [f64])>,
}

/// Features of one series of bars. `benchmark` (closes aligned with the bars, for example
/// an index) is needed only for the correlation feature.
pub fn featurize_ohlcv(
    data: &Ohlcv,
    config: &FeatureConfig,
    benchmark: Option<&[f64]>,
) -> Result<FeatureMatrix, DataError> {
    let n = data.close.len();
    check_count("dates", data.dates.len(), "close", n)?;
    check_same_len("high", &data.high, "close", n)?;
    check_same_len("low", &data.low, "close", n)?;
    let benchmark_returns = match (config.correlation_window, benchmark) {
        (None, _) => None,
        (Some(_), Some(b)) => Some(benchmark_log_returns(b, n)?),
        (Some(_), None) => {
            return Err(DataError::FeatureUnavailable {
                feature: "correlation".into(),
                needs: "a benchmark series".into(),
                data: "a single OHLCV series without a benchmark".into(),
            });
        }
    };
    let asset = Asset {
        prefix: String::new(),
        close: &data.close,
        high_low: Some((&data.high, &data.low)),
    };
    assemble(&data.dates, &[asset], config, benchmark_returns.as_deref())
}

/// Features of every asset of a panel. The correlation feature compares each asset's
/// returns with `benchmark`'s (closes aligned with the panel's dates, for example the index
/// from [`PricePanel::align`]) or, when `None`, with the panel's equal-weight mean return.
/// ATR is not available (a panel has closes only).
pub fn featurize_panel(
    panel: &PricePanel,
    config: &FeatureConfig,
    benchmark: Option<&[f64]>,
) -> Result<FeatureMatrix, DataError> {
    if config.atr_window.is_some() {
        return Err(DataError::FeatureUnavailable {
            feature: "atr".into(),
            needs: "high and low prices".into(),
            data: "a close price panel".into(),
        });
    }
    let (n, n_assets) = panel.close.dim();
    check_count("dates", panel.dates.len(), "close rows", n)?;
    check_count("tickers", panel.tickers.len(), "close columns", n_assets)?;
    let columns: Vec<Vec<f64>> = (0..n_assets)
        .map(|j| panel.close.column(j).to_vec())
        .collect();
    let benchmark_returns = match (config.correlation_window, benchmark) {
        (None, _) => None,
        (Some(_), Some(b)) => Some(benchmark_log_returns(b, n)?),
        (Some(_), None) => {
            let mut mean = vec![0.0; n];
            for (j, column) in columns.iter().enumerate() {
                let r = log_returns(column).map_err(|e| rename(e, &panel.tickers[j]))?;
                mean.iter_mut().zip(r).for_each(|(m, r)| *m += r);
            }
            mean.iter_mut().for_each(|m| *m /= n_assets as f64);
            Some(mean)
        }
    };
    let assets: Vec<Asset> = columns
        .iter()
        .zip(&panel.tickers)
        .map(|(close, ticker)| Asset {
            prefix: format!("{ticker}."),
            close,
            high_low: None,
        })
        .collect();
    assemble(&panel.dates, &assets, config, benchmark_returns.as_deref())
}

fn check_count(series: &str, len: usize, other: &str, expected: usize) -> Result<(), DataError> {
    if len == expected {
        Ok(())
    } else {
        Err(DataError::LengthMismatch {
            series: series.into(),
            len,
            other: other.into(),
            expected,
        })
    }
}

/// Name the asset in an error about a series called `close`.
fn rename(error: DataError, ticker: &str) -> DataError {
    if ticker.is_empty() {
        return error;
    }
    match error {
        DataError::NonFinite { index, value, .. } => DataError::NonFinite {
            series: format!("{ticker} close"),
            index,
            value,
        },
        DataError::NonPositive { index, value, .. } => DataError::NonPositive {
            series: format!("{ticker} close"),
            index,
            value,
        },
        other => other,
    }
}

fn benchmark_log_returns(benchmark: &[f64], n: usize) -> Result<Vec<f64>, DataError> {
    check_same_len("benchmark", benchmark, "close", n)?;
    check_prices("benchmark", benchmark)?;
    log_returns(benchmark)
}

/// Compute every asset's features and lay them out row-major.
fn assemble(
    dates: &[Date],
    assets: &[Asset],
    config: &FeatureConfig,
    benchmark_returns: Option<&[f64]>,
) -> Result<FeatureMatrix, DataError> {
    config.validate()?;
    let n = dates.len();
    let warmup = config.warmup();
    if n <= warmup {
        return Err(DataError::TooShort {
            what: format!("features with a warm-up of {warmup} rows"),
            needed: warmup + 1,
            available: n,
        });
    }
    let mut names = Vec::new();
    let mut columns = Vec::new();
    for asset in assets {
        for (name, column) in asset_features(asset, config, benchmark_returns)
            .map_err(|e| rename(e, asset.prefix.trim_end_matches('.')))?
        {
            names.push(format!("{}{name}", asset.prefix));
            columns.push(column);
        }
    }
    let f = columns.len();
    let mut values = vec![0.0; n * f];
    for (j, column) in columns.iter().enumerate() {
        for (t, &v) in column.iter().enumerate() {
            values[t * f + j] = v;
        }
    }
    // Prices were checked finite and positive; only extreme magnitudes could overflow.
    if let Some(i) = values[warmup * f..].iter().position(|v| !v.is_finite()) {
        let (t, j) = (warmup + i / f, i % f);
        return Err(DataError::NonFinite {
            series: format!("feature {}", names[j]),
            index: t,
            value: values[t * f + j],
        });
    }
    Ok(FeatureMatrix {
        dates: dates.to_vec(),
        names,
        values,
        first_valid_row: warmup,
    })
}

/// One asset's feature columns, each as long as its closes, `NaN` before its first defined
/// row.
fn asset_features(
    asset: &Asset,
    config: &FeatureConfig,
    benchmark_returns: Option<&[f64]>,
) -> Result<Vec<(String, Vec<f64>)>, DataError> {
    let close = asset.close;
    let returns = log_returns(close)?;
    let mut out = vec![("log_return".to_string(), returns.clone())];
    for &w in &config.volatility_windows {
        out.push((
            format!("vol_{w}"),
            rolling_volatility(&returns, w, config.periods_per_year)?,
        ));
    }
    if let Some(w) = config.rsi_window {
        out.push((format!("rsi_{w}"), rsi(close, w)?));
    }
    if let Some(m) = config.macd {
        let lines = macd(close, m.fast, m.slow, m.signal)?;
        let relative =
            |line: Vec<f64>| -> Vec<f64> { line.iter().zip(close).map(|(l, c)| l / c).collect() };
        out.push(("macd".into(), relative(lines.macd)));
        out.push(("macd_signal".into(), relative(lines.signal)));
    }
    if let Some(b) = config.bollinger {
        let bands = bollinger(close, b.window, b.k)?;
        let pctb: Vec<f64> = (0..close.len())
            .map(|t| {
                let width = bands.upper[t] - bands.lower[t];
                if width > 0.0 {
                    (close[t] - bands.lower[t]) / width
                } else if width == 0.0 {
                    0.5 // a flat band: the close sits on the mean
                } else {
                    f64::NAN // the warm-up
                }
            })
            .collect();
        let bandwidth: Vec<f64> = (0..close.len())
            .map(|t| (bands.upper[t] - bands.lower[t]) / bands.mavg[t])
            .collect();
        out.push((format!("bb_pctb_{}", b.window), pctb));
        out.push((format!("bb_width_{}", b.window), bandwidth));
    }
    if let Some(w) = config.atr_window {
        let Some((high, low)) = asset.high_low else {
            return Err(DataError::FeatureUnavailable {
                feature: "atr".into(),
                needs: "high and low prices".into(),
                data: "close prices only".into(),
            });
        };
        let atr = atr(high, low, close, w)?;
        // `ta` fills the warm-up with 0; here it is NaN like every other warm-up.
        let relative: Vec<f64> = (0..close.len())
            .map(|t| {
                if t + 1 < w {
                    f64::NAN
                } else {
                    atr[t] / close[t]
                }
            })
            .collect();
        out.push((format!("atr_{w}"), relative));
    }
    if let (Some(w), Some(bench)) = (config.correlation_window, benchmark_returns) {
        let corr: Vec<f64> = rolling_correlation(&returns, bench, w)?
            .into_iter()
            .enumerate()
            // After the warm-up a NaN means a flat window: no co-movement to measure.
            .map(|(t, c)| if t >= w && c.is_nan() { 0.0 } else { c })
            .collect();
        out.push((format!("corr_{w}"), corr));
    }
    Ok(out)
}
