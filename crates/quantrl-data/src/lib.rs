//! # quantrl-data
//!
//! ```
//! use quantrl_data::features::{FeatureConfig, featurize_panel};
//! use quantrl_data::split::split_by_date;
//! use quantrl_data::{Date, embedded};
//!
//! // Real data shipped with the crate: 20 S&P 500 stocks and the index, 1990-2022.
//! let (panel, index) = embedded::sp500_panel()?.align(&embedded::sp500_index()?)?;
//!
//! // Causal features; the correlation is each stock's against the index.
//! let config = FeatureConfig { correlation_window: Some(63), ..FeatureConfig::default() };
//! let benchmark = index.column("SP500")?.to_vec();
//! let features = featurize_panel(&panel, &config, Some(&benchmark))?;
//! assert_eq!(features.n_features(), 20 * 10); // 10 features per stock
//!
//! // Split by date; episodes start after the warm-up; statistics from training rows only.
//! let split = split_by_date(&features.dates, &"2015-01-01".parse::<Date>()?, &"2019-01-01".parse()?)?;
//! let (scaled, _normalizer) = features.normalized(split.train.clone())?;
//! let start = split.train.start.max(features.first_valid_row);
//! assert!(scaled.row(start).iter().all(|v| v.is_finite()));
//!
//! // Files on disk load the same way (CSV, .csv.gz, Parquet), with errors that name the
//! // file, column, row and value:
//! let err = quantrl_data::load_panel("missing.csv", &Default::default()).unwrap_err();
//! assert!(err.to_string().contains("missing.csv"));
//! # Ok::<(), quantrl_data::DataError>(())
//! ```
//!
//! On synthetic markets, with the lower-level pieces:
//!
//! ```
//! use quantrl_data::indicators::{log_returns, rsi, rolling_volatility};
//! use quantrl_data::normalize::Normalizer;
//! use quantrl_data::split::{WalkForwardConfig, WindowMode, split_by_fraction};
//! use quantrl_data::synthetic::GbmConfig;
//!
//! // A seeded synthetic market: the same seed gives the same prices everywhere.
//! let market = GbmConfig { n_steps: 500, ..Default::default() }.generate(7)?;
//! let close = &market.prices;
//!
//! // Causal features: the value at t uses prices at or before t.
//! let rsi14 = rsi(close, 14)?;
//! let vol20 = rolling_volatility(&log_returns(close)?, 20, 252.0)?;
//! let features: Vec<f64> = rsi14.iter().zip(&vol20).flat_map(|(a, b)| [*a, *b]).collect();
//!
//! // Chronological split; normalization statistics from the training rows only.
//! let split = split_by_fraction(close.len(), 0.6, 0.2)?.with_embargo(20)?;
//! let normalizer = Normalizer::fit(&features, 2, split.train.clone())?;
//! let scaled = normalizer.transform(&features)?;
//! assert_eq!(scaled.len(), features.len());
//!
//! // Walk-forward folds never overlap their test windows.
//! let walk = WalkForwardConfig { train_len: 200, test_len: 50, embargo: 5, mode: WindowMode::Rolling };
//! let folds = walk.folds(close.len())?;
//! assert!(folds.windows(2).all(|f| f[0].test.end <= f[1].test.start));
//! # Ok::<(), quantrl_data::DataError>(())
//! ```
//!
//! The market-data layer of quantrl, on plain slices, `Vec<f64>` and `ndarray` arrays:
//!
//! - [`load`]: daily OHLCV bars ([`Ohlcv`]) and wide close panels ([`PricePanel`]) from CSV,
//!   gzip'd CSV and Parquet files or bytes, validated on the way in. This is the only crate
//!   of quantrl that uses polars, and no polars type appears in its API;
//! - [`embedded`]: real data sets compiled into the crate (GOOGL bars, 20 S&P 500 stocks,
//!   the S&P 500 index), one call each;
//! - [`features`]: feature matrices with named columns from bars or panels, with an explicit
//!   warm-up and normalization fitted on training rows;
//! - [`date`]: the [`Date`] of loaded rows (a day number, usable with [`split`]);
//! - [`indicators`]: causal technical indicators (RSI, MACD, Bollinger, ATR, log returns,
//!   rolling volatility and correlation) matching the Python `ta` package;
//! - [`synthetic`]: seeded market generators (GBM, regime switching, jump diffusion with a
//!   rare-crash preset, GARCH(1,1), a planted signal with a closed-form optimal Sharpe ratio);
//! - [`split`]: chronological train/validation/test splits by index or date, and walk-forward
//!   folds with an embargo;
//! - [`regime`]: volatility regime labels from rolling quantiles (environments for IRM);
//! - [`normalize`]: feature normalization fitted on a training span or an expanding window.
//!
//! Architecture invariant: every feature at index `t` depends only on data at or before `t`
//! (property tests perturb the data after `t` and check that nothing at `t` moves). Where a
//! function deliberately uses a whole training span (regime thresholds, normalizer fit), its
//! docs say so and it reads nothing past the span.
//!
//! Bad input (missing files or columns, ragged rows, missing cells, non-finite or
//! non-positive prices, misaligned series, windows longer than the data, unsorted, duplicate
//! or malformed dates) is a [`DataError`] naming the file, column, row and value where there
//! are such, never a panic.

pub mod date;
pub mod embedded;
mod error;
pub mod features;
pub mod indicators;
pub mod load;
pub mod normalize;
pub mod regime;
pub mod split;
pub mod synthetic;
mod table;

pub use date::Date;
pub use error::DataError;
pub use features::{FeatureConfig, FeatureMatrix, featurize_ohlcv, featurize_panel};
pub use load::{
    FileFormat, LoadOptions, Ohlcv, PricePanel, load_ohlcv, load_ohlcv_from_bytes, load_panel,
    load_panel_from_bytes,
};
