//! Errors of the data crate.

use quantrl_core::ConfigError;
use thiserror::Error;

/// What can go wrong while loading market data, computing features, generating markets or
/// splitting data.
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
    /// A file that does not exist.
    #[error("file `{file}` not found")]
    FileNotFound {
        /// The path.
        file: String,
    },
    /// A file that exists but cannot be read.
    #[error("cannot read `{file}`: {message}")]
    Io {
        /// The path.
        file: String,
        /// The operating system's message.
        message: String,
    },
    /// A file name whose extension names no format this crate reads.
    #[error(
        "cannot tell the format of `{file}` from its name: expected .csv, .csv.gz or .parquet \
         (or pass the format explicitly)"
    )]
    UnknownFormat {
        /// The file name.
        file: String,
    },
    /// Bytes that are not valid CSV, gzip or Parquet.
    #[error("`{file}` is not valid {format}: {reason}")]
    Malformed {
        /// The file (or the name given to in-memory bytes).
        file: String,
        /// The format it was read as (`CSV`, `gzip'd CSV`, `Parquet`).
        format: String,
        /// What the reader said.
        reason: String,
    },
    /// A CSV row with more or fewer fields than the header.
    #[error("`{file}` line {line} (data row {row}) has {fields} fields; the header has {expected}")]
    RaggedRow {
        /// The file.
        file: String,
        /// Line number in the (decompressed) file, 1-based, header included.
        line: usize,
        /// Data row, 0-based, header not counted.
        row: usize,
        /// Fields in that row.
        fields: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A column that is needed but not in the file.
    #[error("`{file}` has no column `{column}` (columns: {available})")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column looked for.
        column: String,
        /// The columns there are, comma separated.
        available: String,
    },
    /// A file (or a selection of it) without data rows or without price columns.
    #[error("`{file}` has no data: {reason}")]
    EmptyData {
        /// The file.
        file: String,
        /// What is missing (rows, price columns, common dates).
        reason: String,
    },
    /// A column whose type cannot be read as dates or numbers.
    #[error("`{file}` column `{column}` has type {dtype}, which cannot be read as {expected}")]
    UnsupportedColumnType {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Its type as the reader names it.
        dtype: String,
        /// `dates` or `numbers`.
        expected: String,
    },
    /// A date that cannot be parsed (or a date column whose format cannot be found).
    #[error("`{file}` column `{column}` row {row}: bad date `{value}`: {reason}")]
    BadDate {
        /// The file.
        file: String,
        /// The date column.
        column: String,
        /// Data row, 0-based, header not counted.
        row: usize,
        /// The text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Several date formats read a whole date column, differently.
    #[error(
        "`{file}` column `{column}`: the dates fit several formats ({formats}); \
         pass LoadOptions::date_format"
    )]
    AmbiguousDateFormat {
        /// The file.
        file: String,
        /// The date column.
        column: String,
        /// The formats that fit, comma separated.
        formats: String,
    },
    /// A date that is not after the date before it (a duplicate or a step back in time).
    #[error(
        "`{file}` column `{column}` row {row}: date {value} is not after {previous} (row {}); \
         dates must strictly increase",
        row.saturating_sub(1)
    )]
    NonIncreasingDate {
        /// The file.
        file: String,
        /// The date column.
        column: String,
        /// Data row of the offending date, 0-based.
        row: usize,
        /// The offending date.
        value: String,
        /// The date in the row before.
        previous: String,
    },
    /// A cell with no value (empty, `NA`, null).
    #[error("`{file}` column `{column}` row {row}: missing value")]
    MissingValue {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Data row, 0-based, header not counted.
        row: usize,
    },
    /// A cell that is not a number.
    #[error("`{file}` column `{column}` row {row}: `{value}` is not a number")]
    InvalidNumber {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Data row, 0-based, header not counted.
        row: usize,
        /// The text.
        value: String,
    },
    /// A number outside what its column allows (a NaN, infinite, zero or negative price; a
    /// negative volume; a high below the low).
    #[error(
        "`{file}` column `{column}` row {row}: value {value} is not allowed: must be {allowed}"
    )]
    InvalidValue {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Data row, 0-based, header not counted.
        row: usize,
        /// The value.
        value: f64,
        /// What is allowed, in words.
        allowed: String,
    },
    /// A feature that needs columns the data does not have (ATR without high and low, a
    /// correlation without a second series).
    #[error("feature `{feature}` needs {needs}, which `{data}` does not have")]
    FeatureUnavailable {
        /// The feature requested.
        feature: String,
        /// What it needs.
        needs: String,
        /// The data it was requested on.
        data: String,
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
