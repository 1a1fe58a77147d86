//! # quantrl-data
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
//! The market-data layer of quantrl, on plain slices and `Vec<f64>`:
//!
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
//! Bad input (non-finite or non-positive prices, misaligned series, windows longer than the
//! data, unsorted or malformed dates) is a [`DataError`], never a panic.

mod error;
pub mod indicators;
pub mod normalize;
pub mod regime;
pub mod split;
pub mod synthetic;

pub use error::DataError;
