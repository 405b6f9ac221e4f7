//! The library's one error type; `cli::exit` maps it to exit codes.

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
    /// Whether the file or a `--set` override is behind it.
    pub origin: Origin,
}

impl Diagnostic {
    /// A problem of the pipeline file as written.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            origin: Origin::File,
        }
    }
}

/// Where the value behind a [`Diagnostic`] came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// The pipeline file.
    #[default]
    File,
    /// This `--set KEY=VALUE` override (as given) set the key, or the table holding it.
    Set(String),
    /// These overrides set other keys, and the problem goes away without any one of them.
    With(Vec<String>),
    /// This override set the key, and the problem also goes away without any one of these,
    /// which set other keys.
    SetWith(String, Vec<String>),
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File => write!(f, "`{}`: {}", self.key, self.message),
            Origin::Set(arg) => write!(f, "`{}` (from --set {arg}): {}", self.key, self.message),
            Origin::With(args) => {
                write!(f, "`{}` (with {}): {}", self.key, sets(args), self.message)
            }
            Origin::SetWith(arg, args) => write!(
                f,
                "`{}` (from --set {arg}, with {}): {}",
                self.key,
                sets(args),
                self.message
            ),
        }
    }
}

/// `--set a, --set b`.
fn sets(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("--set {a}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    #[error("storage: {location}: {}{message}", kind.hint())]
    Storage {
        /// URL or path of the object.
        location: String,
        /// What kind of failure, which decides the exit code.
        kind: StorageKind,
        /// The store's message, with every credential value from the environment masked.
        message: String,
    },
    /// The command line is inconsistent (for example a bad `--shard`).
    #[error("{0}")]
    Usage(String),
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
    /// Training diverged: a non-finite or exploding loss, or representations that are not
    /// finite or collapsed to one point.
    #[error("training diverged at step {step}: {reason}")]
    Diverged {
        /// Step index at which it was seen (the step count for the final representations).
        step: usize,
        /// What was seen.
        reason: String,
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

/// Storage failures by what the user can do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// The store rejected the credentials (wrong key, no permission).
    Credentials,
    /// The bucket or container does not exist.
    MissingBucket,
    /// The endpoint could not be reached, even after retries.
    Unreachable,
    /// Anything else (a missing object, a corrupt response, ...).
    Other,
}

impl StorageKind {
    /// Classifies an object_store error.
    pub fn of(e: &object_store::Error) -> Self {
        let text = chain(e);
        match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StorageKind::Credentials,
            _ if text.contains("NoSuchBucket")
                || text.contains("ContainerNotFound")
                || text.contains("The specified bucket does not exist") =>
            {
                StorageKind::MissingBucket
            }
            _ if [
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ]
            .iter()
            .any(|m| text.contains(m)) =>
            {
                StorageKind::Credentials
            }
            object_store::Error::Generic { .. }
                if [
                    "error sending request",
                    "Connection refused",
                    "connection closed",
                    "tcp connect",
                    "dns error",
                    "timed out",
                    "operation timed out",
                ]
                .iter()
                .any(|m| text.contains(m)) =>
            {
                StorageKind::Unreachable
            }
            _ => StorageKind::Other,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            StorageKind::Credentials => {
                "the credentials were rejected (check AWS_*/GOOGLE_*/AZURE_* variables): "
            }
            StorageKind::MissingBucket => "the bucket or container does not exist: ",
            StorageKind::Unreachable => "the endpoint could not be reached after retries: ",
            StorageKind::Other => "",
        }
    }
}

/// An error and its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut at = e.source();
    while let Some(s) = at {
        text.push_str(": ");
        text.push_str(&s.to_string());
        at = s.source();
    }
    text
}

/// `text` with the value of every credential-bearing environment variable masked.
pub(crate) fn redact(text: &str) -> String {
    // Key ids (AWS_ACCESS_KEY_ID) name an identity, like a user name; they are kept.
    let secret = |k: &str| {
        let k = k.to_ascii_uppercase();
        (k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
            && !k.ends_with("_ID")
            && ["KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "SAS"]
                .iter()
                .any(|w| k.contains(w))
    };
    let mut out = text.to_owned();
    for (k, v) in std::env::vars() {
        // Short values (flags, regions) are not secrets and would mask unrelated text.
        if secret(&k) && v.len() >= 4 {
            out = out.replace(&v, "***");
        }
    }
    out
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  - {d}"))
        .collect::<Vec<_>>()
        .join("\n")
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
            location: redact(&location.to_string()),
            kind: StorageKind::of(&source),
            message: redact(&source.to_string()),
        }
    }

    /// Builds a data error that names its location.
    pub fn data(location: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Data {
            location: location.to_string(),
            message: message.to_string(),
        }
    }
}
