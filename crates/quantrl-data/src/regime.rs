//! Volatility regimes: label each step calm, normal or turbulent (or any number of levels) by
//! where its rolling volatility falls among quantiles of past volatility.
//!
//! The labels split one market into *environments* in the sense of invariant risk
//! minimization (Arjovsky et al. 2019): a policy trained across them should rely on what
//! holds in every volatility regime.
//!
//! Causality depends on where the quantile thresholds come from ([`ThresholdSource`]):
//!
//! - [`ThresholdSource::Expanding`] and [`ThresholdSource::Rolling`] are causal: the label at
//!   `t` uses returns at or before `t` only, so they can be observed online (as a feature).
//! - [`ThresholdSource::TrainSpan`] fixes the thresholds from the volatility at indices
//!   `0..end` (the training span). Labels at `t >= end` are causal; labels inside the span
//!   use the whole span's thresholds, which is look-ahead *within* the training data and fine
//!   for grouping training samples into environments, but not for a feature a policy sees.

use quantrl_core::{ConfigError, check_open};
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::indicators::rolling_std;

/// Where the volatility quantiles that separate regimes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// Quantiles of every volatility value at or before `t`; no label until `min_history`
    /// values have been seen.
    Expanding {
        /// Volatility values needed before the first label.
        min_history: usize,
    },
    /// Quantiles of the last `lookback` volatility values (`t - lookback + 1 ..= t`); no label
    /// until that window is full.
    Rolling {
        /// Volatility values in the window (>= 2).
        lookback: usize,
    },
    /// Quantiles of the volatility values at indices `0..end`, fixed for all `t` (see the
    /// module docs for what this means for causality).
    TrainSpan {
        /// End (exclusive) of the training span.
        end: usize,
    },
}

/// How to label volatility regimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolRegimeConfig {
    /// Returns in the rolling volatility window (sample standard deviation, >= 2).
    pub vol_window: usize,
    /// Quantile levels that cut volatility into regimes, strictly increasing in (0, 1):
    /// `[1/3, 2/3]` gives three regimes, `[0.5]` two.
    pub cut_quantiles: Vec<f64>,
    /// Where the thresholds come from.
    pub thresholds: ThresholdSource,
}

impl Default for VolRegimeConfig {
    /// Terciles of 20-step volatility, thresholds from an expanding window of at least 60.
    fn default() -> Self {
        Self {
            vol_window: 20,
            cut_quantiles: vec![1.0 / 3.0, 2.0 / 3.0],
            thresholds: ThresholdSource::Expanding { min_history: 60 },
        }
    }
}

/// Volatility and regime labels, one per return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolRegimes {
    /// Rolling volatility (per step, not annualized); `NaN` during the warm-up.
    pub volatility: Vec<f64>,
    /// Regime of each step, `0` the calmest, `n_regimes - 1` the most turbulent; `None`
    /// where there is not yet enough history.
    pub labels: Vec<Option<usize>>,
    /// Number of regimes (`cut_quantiles.len() + 1`).
    pub n_regimes: usize,
}

impl VolRegimes {
    /// Indices labelled `regime` (one environment's rows).
    pub fn indices(&self, regime: usize) -> Vec<usize> {
        (0..self.labels.len())
            .filter(|&t| self.labels[t] == Some(regime))
            .collect()
    }

    /// Number of steps in each regime.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_regimes];
        for label in self.labels.iter().flatten() {
            counts[*label] += 1;
        }
        counts
    }
}

impl VolRegimeConfig {
    /// Check the window, the quantile levels and the threshold source.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vol_window < 2 {
            return Err(ConfigError::out_of_range(
                "vol_regime.vol_window",
                self.vol_window,
                ">= 2",
            ));
        }
        if self.cut_quantiles.is_empty() {
            return Err(ConfigError::out_of_range(
                "vol_regime.cut_quantiles",
                "[]",
                "at least one level in (0, 1)",
            ));
        }
        for (i, &q) in self.cut_quantiles.iter().enumerate() {
            check_open(&format!("vol_regime.cut_quantiles[{i}]"), q, 0.0, 1.0)?;
            if i > 0 && q <= self.cut_quantiles[i - 1] {
                return Err(ConfigError::Inconsistent(
                    "vol_regime.cut_quantiles must be strictly increasing".into(),
                ));
            }
        }
        match self.thresholds {
            ThresholdSource::Expanding { min_history: 0 } => Err(ConfigError::out_of_range(
                "vol_regime.thresholds.min_history",
                0,
                ">= 1",
            )),
            ThresholdSource::Rolling { lookback } if lookback < 2 => Err(
                ConfigError::out_of_range("vol_regime.thresholds.lookback", lookback, ">= 2"),
            ),
            _ => Ok(()),
        }
    }

    /// Number of regimes.
    pub fn n_regimes(&self) -> usize {
        self.cut_quantiles.len() + 1
    }

    /// Label every step of a return series (non-finite returns count as missing: windows
    /// holding one have no volatility and no label).
    pub fn label(&self, returns: &[f64]) -> Result<VolRegimes, DataError> {
        self.validate()?;
        let volatility = rolling_std(returns, self.vol_window, 1)?;
        let n = volatility.len();
        let mut labels = vec![None; n];
        let mut history = SortedValues::default();
        match self.thresholds {
            ThresholdSource::Expanding { min_history } => {
                for t in 0..n {
                    history.insert(volatility[t]);
                    if history.len() >= min_history {
                        labels[t] = self.classify(volatility[t], &history.values);
                    }
                }
            }
            ThresholdSource::Rolling { lookback } => {
                for t in 0..n {
                    history.insert(volatility[t]);
                    if t >= lookback {
                        history.remove(volatility[t - lookback]);
                    }
                    let window_full = t + 1 >= lookback
                        && volatility[t + 1 - lookback..=t]
                            .iter()
                            .all(|v| v.is_finite());
                    if window_full {
                        labels[t] = self.classify(volatility[t], &history.values);
                    }
                }
            }
            ThresholdSource::TrainSpan { end } => {
                if end > n {
                    return Err(DataError::OutOfBounds {
                        what: "vol_regime.thresholds.end".into(),
                        value: end,
                        allowed: format!("<= the number of returns ({n})"),
                    });
                }
                volatility[..end].iter().for_each(|&v| history.insert(v));
                if history.len() < 2 {
                    return Err(DataError::TooShort {
                        what: "finite volatility values in the regime training span".into(),
                        needed: 2,
                        available: history.len(),
                    });
                }
                for t in 0..n {
                    labels[t] = self.classify(volatility[t], &history.values);
                }
            }
        }
        Ok(VolRegimes {
            volatility,
            labels,
            n_regimes: self.n_regimes(),
        })
    }

    /// Number of thresholds `vol` exceeds; `None` for a missing volatility.
    fn classify(&self, vol: f64, sorted: &[f64]) -> Option<usize> {
        if !vol.is_finite() || sorted.is_empty() {
            return None;
        }
        Some(
            self.cut_quantiles
                .iter()
                .filter(|&&q| vol > quantile(sorted, q))
                .count(),
        )
    }
}

/// Quantile of sorted values with linear interpolation between order statistics (numpy's
/// default); `NaN` for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The finite values seen, kept sorted (insertion and removal by binary search).
#[derive(Default)]
struct SortedValues {
    values: Vec<f64>,
}

impl SortedValues {
    fn len(&self) -> usize {
        self.values.len()
    }

    fn insert(&mut self, v: f64) {
        if v.is_finite() {
            let at = self.values.partition_point(|&x| x < v);
            self.values.insert(at, v);
        }
    }

    fn remove(&mut self, v: f64) {
        if v.is_finite() {
            let at = self.values.partition_point(|&x| x < v);
            debug_assert_eq!(
                self.values.get(at),
                Some(&v),
                "removing a value never inserted"
            );
            self.values.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns that are flat (volatility exactly 0), then wild from 100 to 200, then flat.
    fn stepped_returns() -> Vec<f64> {
        (0..300)
            .map(|t| {
                let scale = if (100..200).contains(&t) { 0.05 } else { 0.0 };
                scale * if t % 2 == 0 { 1.0 } else { -1.0 }
            })
            .collect()
    }

    #[test]
    fn train_span_thresholds_separate_calm_and_wild() {
        let config = VolRegimeConfig {
            vol_window: 10,
            cut_quantiles: vec![0.5],
            thresholds: ThresholdSource::TrainSpan { end: 150 },
        };
        let r = config.label(&stepped_returns()).unwrap();
        assert_eq!(r.labels[50], Some(0));
        assert_eq!(r.labels[150], Some(1));
        assert_eq!(r.labels[250], Some(0));
        assert_eq!(r.labels[5], None);
        assert_eq!(r.counts().iter().sum::<usize>(), 300 - 9);
        assert!(r.indices(1).iter().all(|&t| (100..210).contains(&t)));
    }

    #[test]
    fn expanding_and_rolling_label_only_with_history() {
        let returns = stepped_returns();
        let expanding = VolRegimeConfig {
            vol_window: 10,
            thresholds: ThresholdSource::Expanding { min_history: 30 },
            ..Default::default()
        };
        let e = expanding.label(&returns).unwrap();
        assert!(e.labels[..38].iter().all(Option::is_none));
        assert!(e.labels[38].is_some());
        assert_eq!(e.labels[120], Some(2));
        let rolling = VolRegimeConfig {
            thresholds: ThresholdSource::Rolling { lookback: 50 },
            ..expanding
        };
        let r = rolling.label(&returns).unwrap();
        assert!(r.labels[..58].iter().all(Option::is_none));
        assert!(r.labels[58].is_some());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let bad = VolRegimeConfig {
            cut_quantiles: vec![0.6, 0.4],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let span = VolRegimeConfig {
            thresholds: ThresholdSource::TrainSpan { end: 500 },
            ..Default::default()
        };
        assert!(matches!(
            span.label(&[0.0; 100]),
            Err(DataError::OutOfBounds { value: 500, .. })
        ));
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.5), 2.5);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 4.0);
        assert!((quantile(&s, 1.0 / 3.0) - 2.0).abs() < 1e-15);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
