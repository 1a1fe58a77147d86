//! Errors shared by every quantrl crate: configuration validation and environment misuse.

use thiserror::Error;

/// A configuration value that is out of its allowed range or inconsistent with another.
///
/// Every config in quantrl validates itself with a `validate()` method that returns this
/// error, naming the field, the value and what is allowed, so that a bad TOML file or CLI flag
/// is reported before any work starts.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A numeric field outside its allowed range.
    #[error("config field `{field}` = {value} is out of range: must be {allowed}")]
    OutOfRange {
        /// Dotted path of the field, e.g. `ppo.clip_range`.
        field: String,
        /// The offending value, formatted.
        value: String,
        /// The allowed range in words, e.g. `in (0, 1)`.
        allowed: String,
    },
    /// Fields that are valid alone but inconsistent together.
    #[error("config is inconsistent: {0}")]
    Inconsistent(String),
}

impl ConfigError {
    /// Shorthand for [`ConfigError::OutOfRange`].
    pub fn out_of_range(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        allowed: impl Into<String>,
    ) -> Self {
        Self::OutOfRange {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Check `lo < value < hi` (open interval), naming the field on failure.
pub fn check_open(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > lo && value < hi {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            field,
            value,
            format!("in ({lo}, {hi})"),
        ))
    }
}

/// Check `lo <= value <= hi` (closed interval), naming the field on failure.
pub fn check_closed(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            field,
            value,
            format!("in [{lo}, {hi}]"),
        ))
    }
}

/// Check `value > 0` and finite, naming the field on failure.
pub fn check_positive(field: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(field, value, "finite and > 0"))
    }
}

/// Check `value >= 0` and finite, naming the field on failure.
pub fn check_non_negative(field: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(field, value, "finite and >= 0"))
    }
}

/// Misuse of an environment through the [`VecEnv`](crate::VecEnv) interface.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EnvError {
    /// The action buffer has the wrong kind or length.
    #[error("action buffer mismatch: expected {expected}, got {got}")]
    ActionShape {
        /// What the environment expects.
        expected: String,
        /// What it was given.
        got: String,
    },
    /// An action outside the action space.
    #[error("action {action} for env {env} is outside the action space {space}")]
    InvalidAction {
        /// The env index in the batch.
        env: usize,
        /// The action, formatted.
        action: String,
        /// The space, formatted.
        space: String,
    },
    /// `step` was called before `reset`.
    #[error("step called before reset")]
    NotReset,
    /// An environment name no registry knows.
    #[error("unknown environment `{name}`; known environments: {known}")]
    UnknownEnv {
        /// The requested name.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A saved environment state that cannot be restored.
    #[error("environment state: {0}")]
    State(String),
    /// A configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Market data handed to a trading environment that it cannot use (wrong lengths,
    /// non-finite or non-positive prices, a window longer than the data).
    #[error("market data: {field}{}: {reason}", .index.map(|i| format!(" at row {i}")).unwrap_or_default())]
    MarketData {
        /// The series or field, e.g. `close` or `features`.
        field: String,
        /// The row (time index) of the offending value, where there is one.
        index: Option<usize>,
        /// What is wrong, with the value.
        reason: String,
    },
}
