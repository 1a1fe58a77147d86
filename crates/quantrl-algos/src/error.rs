//! Errors of the algorithms crate.

use std::path::PathBuf;

use quantrl_core::{ConfigError, EnvError};
use thiserror::Error;

/// What can go wrong while training, evaluating or checkpointing.
#[derive(Debug, Error)]
pub enum AlgoError {
    /// A bad configuration value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An environment refused an action or is misconfigured.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The algorithm does not support this action space.
    #[error("{algorithm} needs a discrete action space; the environment has {space}")]
    UnsupportedActionSpace {
        /// The algorithm.
        algorithm: &'static str,
        /// The environment's action space.
        space: String,
    },
    /// A file could not be written (metrics, reports).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An IRM penalty is configured but the environment gave no regime label.
    #[error("environment {env} gave no regime label (ppo.irm needs one for every sample)")]
    MissingRegimeLabel {
        /// The environment index in the batch.
        env: usize,
    },
    /// Training produced a non-finite loss or gradient: a silent NaN is never propagated.
    #[error("training diverged at update {update}: {what} is not finite")]
    Diverged {
        /// Update index.
        update: u64,
        /// Which quantity.
        what: String,
    },
}

/// A checkpoint directory that cannot be used.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// No checkpoint at that path.
    #[error("no checkpoint at {path}: {reason}")]
    Missing {
        /// Where one was expected.
        path: PathBuf,
        /// What was missing.
        reason: String,
    },
    /// A checkpoint file is damaged (truncated, edited, wrong content).
    #[error("checkpoint file {path} is corrupt: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint written by an incompatible version.
    #[error(
        "checkpoint {path} has format_version {found}; this build reads format_version {supported}"
    )]
    UnsupportedVersion {
        /// The manifest.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The checkpoint is valid but belongs to something else (another environment, another
    /// network shape).
    #[error("checkpoint {path} does not fit: {reason}")]
    Mismatch {
        /// The manifest.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// An I/O error while writing or reading.
    #[error("checkpoint I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
