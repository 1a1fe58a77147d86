//! The error of this crate and the input checks every metric shares.

use std::path::{Path, PathBuf};

use quantrl_core::{ConfigError, EnvError};
use quantrl_data::DataError;
use thiserror::Error;

/// Everything that can go wrong in an evaluation: bad input to a metric, a policy that chose
/// a forbidden action, dates that do not line up, a report that cannot be written or read.
///
/// Every variant names what is wrong and where: the series (by role: `returns`, `benchmark`,
/// `positions`), the policy and market row of a bad action, the file, line and column of a bad
/// report. Files and operating-system errors are kept as their kind and message, so the error
/// stays `Clone` and comparable in tests.
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
    /// The trading environment refused its configuration or a step.
    #[error("trading environment: {0}")]
    Env(#[from] EnvError),
    /// Market data (an embedded series, a date) could not be loaded or read.
    #[error("market data: {0}")]
    Data(#[from] DataError),
    /// A policy filled [`PolicyActions`](crate::PolicyActions) of the wrong kind or length.
    #[error("policy `{policy}` at market row {row}: wrong actions: expected {expected}, got {got}")]
    ActionShape {
        /// The policy's label.
        policy: String,
        /// Market row of the decision.
        row: usize,
        /// What the environment's action space needs.
        expected: String,
        /// What the policy wrote.
        got: String,
    },
    /// A policy chose an action its action mask forbids at this bar.
    #[error(
        "policy `{policy}` chose masked action {action} at market row {row}{date}: allowed \
         actions are {allowed:?}",
        date = fmt_date(date)
    )]
    MaskedAction {
        /// The policy's label.
        policy: String,
        /// Market row of the decision.
        row: usize,
        /// Date of that row, when the backtest has dates (`YYYY-MM-DD`).
        date: Option<String>,
        /// The forbidden action.
        action: u32,
        /// The actions the mask allowed.
        allowed: Vec<u32>,
    },
    /// A policy chose an action outside the action space (a discrete index out of range, a
    /// NaN or infinite continuous value).
    #[error(
        "policy `{policy}` chose action {action} at market row {row}{date}, outside the action \
         space {space}",
        date = fmt_date(date)
    )]
    InvalidAction {
        /// The policy's label.
        policy: String,
        /// Market row of the decision.
        row: usize,
        /// Date of that row, when known.
        date: Option<String>,
        /// The action, formatted.
        action: String,
        /// The action space, formatted.
        space: String,
    },
    /// A policy that cannot act in the environment's action space (a discrete policy on
    /// continuous actions, or the reverse).
    #[error("policy `{policy}` cannot act in {space}")]
    UnsupportedSpace {
        /// The policy's label.
        policy: String,
        /// The action space, in words.
        space: String,
    },
    /// Dates that do not fit the market or the series they label.
    #[error("dates of `{series}`: {reason}")]
    Dates {
        /// Which series the dates belong to (`market`, `sp500_index`, ...).
        series: String,
        /// What is wrong (length, order, a missing date).
        reason: String,
    },
    /// Walk-forward windows that cannot be used as given.
    #[error("walk-forward window {window}: {reason}")]
    Window {
        /// Index of the window.
        window: usize,
        /// What is wrong.
        reason: String,
    },
    /// The caller's training function failed for one window and seed.
    #[error("training for walk-forward window {window}, seed {seed} failed: {message}")]
    Training {
        /// Index of the window.
        window: usize,
        /// The seed.
        seed: u64,
        /// The training error, formatted.
        message: String,
    },
    /// Results that cannot be put side by side (different spans, duplicate labels).
    #[error("results cannot be compared: {0}")]
    Incomparable(String),
    /// A file or directory could not be read or written.
    #[error("cannot {action} `{path}`: {message}")]
    Io {
        /// What was being done (`create directory`, `write`, `rename`, `read`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A report file that is not valid JSON for its type.
    #[error("`{path}` line {line}, column {column}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Line of the error (1-based; 0 when not known).
        line: usize,
        /// Column of the error (1-based; 0 when not known).
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A plot could not be drawn.
    #[error("plot `{path}`: {message}")]
    Plot {
        /// The PNG file being drawn.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn fmt_date(date: &Option<String>) -> String {
    match date {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl EvalError {
    /// An [`EvalError::Io`] for `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &Path, e: &std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// An [`EvalError::Json`] for `path` from a serde_json error.
    pub(crate) fn json(path: &Path, e: &serde_json::Error) -> Self {
        Self::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
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
