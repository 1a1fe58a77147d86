//! Feature normalization that never looks into the future.
//!
//! Features are a row-major table: `n_rows * n_features` values, one row per time step (a
//! single series is a table with one feature). Two ways to get the statistics:
//!
//! - [`Normalizer::fit`] on a training span only, then [`Normalizer::transform`] everything
//!   (validation and test rows are scaled with training statistics; save the normalizer with
//!   the model, it is serializable);
//! - [`expanding_zscore`]: each row scaled with the statistics of the rows at or before it.
//!
//! Standard deviations are population deviations (`ddof = 0`, as scikit-learn's
//! `StandardScaler`). A feature whose deviation is below [`MIN_STD`] is only centred (scale 1),
//! as in scikit-learn, rather than blown up. Non-finite values (an indicator's warm-up) are
//! left out of the statistics and stay `NaN` in the output.

use std::ops::Range;

use quantrl_core::ConfigError;
use serde::{Deserialize, Serialize};

use crate::DataError;

/// Deviations below this are treated as zero: the feature is centred but not scaled.
pub const MIN_STD: f64 = 1e-12;

/// Per-feature mean and scale, fitted on training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Mean of each feature over the finite training values.
    pub mean: Vec<f64>,
    /// Divisor of each feature: its population deviation, or 1 below [`MIN_STD`].
    pub scale: Vec<f64>,
}

fn check_table(data: &[f64], n_features: usize) -> Result<usize, DataError> {
    if n_features == 0 {
        return Err(ConfigError::out_of_range("n_features", 0, ">= 1").into());
    }
    if !data.len().is_multiple_of(n_features) {
        return Err(DataError::Ragged {
            series: "features".into(),
            len: data.len(),
            row_len: n_features,
        });
    }
    Ok(data.len() / n_features)
}

fn scale_of(variance: f64) -> f64 {
    let std = variance.max(0.0).sqrt();
    if std < MIN_STD { 1.0 } else { std }
}

impl Normalizer {
    /// Fit on the rows `train` of a row-major table with `n_features` columns. Only those rows
    /// are read, so nothing after `train.end` can leak into the statistics.
    pub fn fit(data: &[f64], n_features: usize, train: Range<usize>) -> Result<Self, DataError> {
        let n_rows = check_table(data, n_features)?;
        if train.end > n_rows || train.start >= train.end {
            return Err(DataError::OutOfBounds {
                what: format!("normalizer training rows {}..{}", train.start, train.end),
                value: train.end,
                allowed: format!("a non-empty range within 0..{n_rows}"),
            });
        }
        let rows = &data[train.start * n_features..train.end * n_features];
        let (mut mean, mut scale) = (
            Vec::with_capacity(n_features),
            Vec::with_capacity(n_features),
        );
        for j in 0..n_features {
            let column = rows
                .iter()
                .skip(j)
                .step_by(n_features)
                .filter(|v| v.is_finite());
            let mut stats = Welford::default();
            column.for_each(|&v| stats.push(v));
            if stats.count == 0 {
                return Err(DataError::TooShort {
                    what: format!(
                        "finite values of feature {j} in training rows {}..{}",
                        train.start, train.end
                    ),
                    needed: 1,
                    available: 0,
                });
            }
            mean.push(stats.mean);
            scale.push(scale_of(stats.variance()));
        }
        Ok(Self { mean, scale })
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// `(x - mean) / scale` for every row of a table with this normalizer's features.
    pub fn transform(&self, data: &[f64]) -> Result<Vec<f64>, DataError> {
        let mut out = data.to_vec();
        self.transform_in_place(&mut out)?;
        Ok(out)
    }

    /// [`Normalizer::transform`] in place.
    pub fn transform_in_place(&self, data: &mut [f64]) -> Result<(), DataError> {
        check_table(data, self.n_features())?;
        for row in data.chunks_exact_mut(self.n_features()) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *x = (*x - m) / s;
            }
        }
        Ok(())
    }
}

/// Z-scores with expanding statistics: row `t` of each feature is scaled by the mean and
/// population deviation of that feature's finite values in rows `0..=t` (the row itself
/// included, as pandas' `expanding()`). `NaN` until a feature has `min_periods` finite values
/// (`min_periods >= 2`). Causal by construction.
pub fn expanding_zscore(
    data: &[f64],
    n_features: usize,
    min_periods: usize,
) -> Result<Vec<f64>, DataError> {
    check_table(data, n_features)?;
    if min_periods < 2 {
        return Err(
            ConfigError::out_of_range("expanding_zscore.min_periods", min_periods, ">= 2").into(),
        );
    }
    let mut stats = vec![Welford::default(); n_features];
    let mut out = vec![f64::NAN; data.len()];
    for (row, out_row) in data
        .chunks_exact(n_features)
        .zip(out.chunks_exact_mut(n_features))
    {
        for ((&x, o), s) in row.iter().zip(out_row).zip(&mut stats) {
            if x.is_finite() {
                s.push(x);
                if s.count >= min_periods {
                    *o = (x - s.mean) / scale_of(s.variance());
                }
            }
        }
    }
    Ok(out)
}

/// Running mean and sum of squared deviations (Welford).
#[derive(Debug, Clone, Default)]
struct Welford {
    count: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Population variance.
    fn variance(&self) -> f64 {
        self.m2 / self.count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_uses_training_rows_only() {
        // Two features; the test rows are wildly different and must not matter.
        let data = [1.0, 10.0, 3.0, 10.0, f64::NAN, 10.0, 1e6, -1e6];
        let n = Normalizer::fit(&data, 2, 0..3).unwrap();
        assert_eq!(n.mean, vec![2.0, 10.0]);
        assert_eq!(n.scale, vec![1.0, 1.0]); // std 1 for feature 0, constant feature 1
        let z = n.transform(&data).unwrap();
        assert_eq!(&z[..4], &[-1.0, 0.0, 1.0, 0.0]);
        assert!(z[4].is_nan());
    }

    #[test]
    fn bad_tables_are_typed_errors() {
        assert!(matches!(
            Normalizer::fit(&[1.0; 5], 2, 0..2),
            Err(DataError::Ragged { .. })
        ));
        assert!(matches!(
            Normalizer::fit(&[1.0; 4], 2, 0..3),
            Err(DataError::OutOfBounds { .. })
        ));
        assert!(matches!(
            Normalizer::fit(&[f64::NAN, 1.0], 2, 0..1),
            Err(DataError::TooShort { .. })
        ));
        assert!(expanding_zscore(&[1.0; 4], 1, 1).is_err());
    }

    #[test]
    fn expanding_matches_direct_computation() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let z = expanding_zscore(&x, 1, 3).unwrap();
        assert!(z[1].is_nan());
        for t in 2..x.len() {
            let w = &x[..=t];
            let m = w.iter().sum::<f64>() / w.len() as f64;
            let sd = (w.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / w.len() as f64).sqrt();
            assert!((z[t] - (x[t] - m) / sd).abs() < 1e-12, "t = {t}");
        }
    }
}
