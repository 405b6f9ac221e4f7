//! The library's one error type and its exit-code mapping.

use std::fmt;

/// Result alias used throughout negsweep.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found while resolving a pipeline, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Dotted key path in the pipeline file, for example `sweep.k`.
    pub key: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// Every failure negsweep reports. Variants are named by phase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pipeline file could not be read or parsed (syntax, unknown key, wrong type).
    #[error("{path}: {message}")]
    Spec {
        /// File the text came from.
        path: String,
        /// Parser message, with line and column.
        message: String,
    },
    /// The pipeline parsed but describes something impossible.
    #[error("{path}: invalid pipeline:\n{}", list(.diagnostics))]
    InvalidPipeline {
        /// File the pipeline came from.
        path: String,
        /// Every problem found, not just the first.
        diagnostics: Vec<Diagnostic>,
    },
    /// A `--set KEY=VALUE` override is malformed.
    #[error("--set {arg}: {message}")]
    Override {
        /// The override as given.
        arg: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing an object failed.
    #[error("storage: {location}: {source}")]
    Storage {
        /// URL or path of the object.
        location: String,
        /// Underlying store error.
        #[source]
        source: object_store::Error,
    },
    /// An input or intermediate file is missing, corrupt or inconsistent.
    #[error("data: {location}: {message}")]
    Data {
        /// File (and record, where known) at fault.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Arrow failure.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet failure.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Candle (tensor) failure.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Polars failure while summarising.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// Training produced a non-finite loss.
    #[error("training diverged at step {step}: loss is {loss}")]
    Diverged {
        /// Step index at which the loss became non-finite.
        step: usize,
        /// The offending loss value.
        loss: f32,
    },
    /// A stage failed; `point` names the sweep point where there is one.
    #[error("stage `{stage}`{} failed: {source}", point.as_ref().map(|p| format!(" (point {p})")).unwrap_or_default())]
    Stage {
        /// Stage name.
        stage: &'static str,
        /// Sweep point id, if the stage runs per point.
        point: Option<String>,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// One or more sweep points failed; the others finished.
    #[error("{failed} of {total} sweep points failed (re-run to retry them)")]
    PointsFailed {
        /// Number of failed points.
        failed: usize,
        /// Number of points attempted.
        total: usize,
    },
    /// A broken invariant inside negsweep.
    #[error("internal error (this is a bug in negsweep): {0}")]
    Internal(String),
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  - {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Process exit codes; documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// One or more sweep points failed; the rest were written. Re-running retries only those.
    pub const POINTS_FAILED: u8 = 1;
    /// Usage or pipeline error: fix the command line or the file. Retrying will not help.
    pub const CONFIG: u8 = 2;
    /// Input data or storage error (missing, corrupt or unreachable). May be retried.
    pub const DATA: u8 = 3;
    /// Internal error: a bug in negsweep.
    pub const INTERNAL: u8 = 70;
}

impl Error {
    /// Wraps `self` as a failure of `stage`, optionally at a sweep point.
    pub fn in_stage(self, stage: &'static str, point: Option<&str>) -> Self {
        Error::Stage {
            stage,
            point: point.map(str::to_owned),
            source: Box::new(self),
        }
    }

    /// Builds a storage error that names its location.
    pub fn storage(location: impl fmt::Display, source: object_store::Error) -> Self {
        Error::Storage {
            location: location.to_string(),
            source,
        }
    }

    /// Builds a data error that names its location.
    pub fn data(location: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Data {
            location: location.to_string(),
            message: message.to_string(),
        }
    }

    /// The process exit code this error maps to (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Spec { .. } | Error::InvalidPipeline { .. } | Error::Override { .. } => {
                exit::CONFIG
            }
            Error::PointsFailed { .. } => exit::POINTS_FAILED,
            Error::Stage { source, .. } => source.exit_code(),
            Error::Internal(_) => exit::INTERNAL,
            Error::Storage { .. }
            | Error::Data { .. }
            | Error::Arrow(_)
            | Error::Parquet(_)
            | Error::Candle(_)
            | Error::Polars(_)
            | Error::Diverged { .. } => exit::DATA,
        }
    }
}
