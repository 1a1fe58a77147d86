//! Errors of the data crate.

use quantrl_core::ConfigError;
use thiserror::Error;

/// What can go wrong while computing features, generating markets or splitting data.
///
/// Every variant names the series or parameter at fault and, where there is one, the index,
/// the value and what is allowed, so that bad market data is reported where it comes in.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DataError {
    /// A bad parameter (window of zero, negative band width, bad generator config, ...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two series that must be aligned have different lengths.
    #[error("series `{series}` has {len} values; expected {expected} (aligned with `{other}`)")]
    LengthMismatch {
        /// The series with the wrong length.
        series: String,
        /// Its length.
        len: usize,
        /// The series it must be aligned with.
        other: String,
        /// The length it must have.
        expected: usize,
    },
    /// A row-major table whose length is not a whole number of rows.
    #[error("series `{series}` has {len} values, not a whole number of rows of {row_len}")]
    Ragged {
        /// The table.
        series: String,
        /// Its length.
        len: usize,
        /// Values per row (number of features).
        row_len: usize,
    },
    /// A NaN or infinite value where a finite one is needed.
    #[error("series `{series}` has a non-finite value {value} at index {index}")]
    NonFinite {
        /// The series.
        series: String,
        /// Position in the series.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A price that is zero or negative where a logarithm is taken.
    #[error(
        "series `{series}` has a non-positive price {value} at index {index}; prices must be > 0"
    )]
    NonPositive {
        /// The series.
        series: String,
        /// Position in the series.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A window or span that needs more data than there is.
    #[error("{what} needs {needed} rows but the data has {available}")]
    TooShort {
        /// What needs the rows (e.g. `walk-forward train_len + embargo + test_len`).
        what: String,
        /// Rows needed.
        needed: usize,
        /// Rows available.
        available: usize,
    },
    /// A boundary index (split point, span end) outside its allowed range.
    #[error("{what} = {value} is out of range: must be {allowed}")]
    OutOfBounds {
        /// The boundary.
        what: String,
        /// Its value.
        value: usize,
        /// The allowed range in words.
        allowed: String,
    },
    /// A part of a split that would be empty.
    #[error("the {part} part of the split is empty (the data has {len} rows)")]
    EmptyPart {
        /// `train`, `validation` or `test`.
        part: &'static str,
        /// Rows in the data.
        len: usize,
    },
    /// Dates that go backwards.
    #[error("dates must be sorted: dates[{index}] = {value} comes after {previous}")]
    UnsortedDates {
        /// Position of the first date smaller than its predecessor.
        index: usize,
        /// That date, formatted.
        value: String,
        /// The date before it, formatted.
        previous: String,
    },
    /// A date string that is not a valid `YYYY-MM-DD` calendar date.
    #[error("invalid date {what} = `{value}`: {reason}")]
    InvalidDate {
        /// Which date (e.g. `dates[17]`, `test_start`).
        what: String,
        /// The text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Check that a window is at least `min`, naming the parameter.
pub(crate) fn check_window(field: &str, window: usize, min: usize) -> Result<(), DataError> {
    if window >= min {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(field, window, format!(">= {min}")).into())
    }
}

/// Check that every value of a series is finite.
pub(crate) fn check_finite(series: &str, values: &[f64]) -> Result<(), DataError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(DataError::NonFinite {
            series: series.into(),
            index,
            value: values[index],
        }),
    }
}

/// Check that every value of a price series is finite and positive.
pub(crate) fn check_prices(series: &str, prices: &[f64]) -> Result<(), DataError> {
    check_finite(series, prices)?;
    match prices.iter().position(|&v| v <= 0.0) {
        None => Ok(()),
        Some(index) => Err(DataError::NonPositive {
            series: series.into(),
            index,
            value: prices[index],
        }),
    }
}

/// Check that `series` has as many values as `other`.
pub(crate) fn check_same_len(
    series: &str,
    values: &[f64],
    other: &str,
    expected: usize,
) -> Result<(), DataError> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(DataError::LengthMismatch {
            series: series.into(),
            len: values.len(),
            other: other.into(),
            expected,
        })
    }
}
