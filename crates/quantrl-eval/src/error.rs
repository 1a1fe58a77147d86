//! The error of this crate and the input checks every metric shares.

use quantrl_core::ConfigError;
use thiserror::Error;

/// Bad input to a metric: a series that cannot be evaluated or a parameter out of range.
///
/// Series are named by their role (`returns`, `benchmark`, `positions`) so that the message
/// says which argument to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// A series with no values.
    #[error("`{series}` is empty: at least one value is needed")]
    EmptySeries {
        /// Which series (`returns`, `benchmark`, `positions`).
        series: &'static str,
    },
    /// A NaN or infinite value in a series.
    #[error("`{series}`[{index}] = {value} is not finite: series must hold no NaN or infinity")]
    NonFinite {
        /// Which series.
        series: &'static str,
        /// Index of the first bad value.
        index: usize,
        /// The bad value.
        value: f64,
    },
    /// Two series that must be aligned period by period have different lengths.
    #[error("`{series}` has {len} values but `returns` has {returns_len}: they must be aligned")]
    LengthMismatch {
        /// The series compared with `returns`.
        series: &'static str,
        /// Its length.
        len: usize,
        /// The length of `returns`.
        returns_len: usize,
    },
    /// A parameter out of its allowed range (`alpha` outside (0, 1), `annualization <= 0`, ...).
    #[error(transparent)]
    Parameter(#[from] ConfigError),
}

/// Check that `values` is non-empty and finite, naming the series on failure.
pub(crate) fn check_series(series: &'static str, values: &[f64]) -> Result<(), EvalError> {
    if values.is_empty() {
        return Err(EvalError::EmptySeries { series });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFinite {
            series,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Check `series` like [`check_series`] and that it is as long as `returns`.
pub(crate) fn check_aligned(
    series: &'static str,
    values: &[f64],
    returns_len: usize,
) -> Result<(), EvalError> {
    check_series(series, values)?;
    if values.len() == returns_len {
        Ok(())
    } else {
        Err(EvalError::LengthMismatch {
            series,
            len: values.len(),
            returns_len,
        })
    }
}

/// Check that a parameter (a risk-free or required return per period, ...) is finite.
pub(crate) fn check_finite(field: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(field, value, "finite"))
    }
}
