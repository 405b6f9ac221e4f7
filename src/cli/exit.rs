//! Process exit codes, documented in the README's "Exit codes": what a failure means to the
//! scheduler or script that ran the command.

use crate::{Error, StorageKind};

/// Success.
pub const OK: u8 = 0;
/// One or more sweep points failed; the rest were written. Re-running retries only those.
pub const POINTS_FAILED: u8 = 1;
/// Usage or pipeline error: fix the command line or the file. Retrying will not help.
pub const CONFIG: u8 = 2;
/// Input data or storage error (missing or corrupt). May be retried once the cause is fixed.
pub const DATA: u8 = 3;
/// The object store rejected the credentials. Fix them; retrying as is will not help.
pub const CREDENTIALS: u8 = 4;
/// The bucket or container does not exist. Create it (or fix the URL), then re-run.
pub const MISSING_BUCKET: u8 = 5;
/// The object store could not be reached, even after retries. Safe to retry later.
pub const UNREACHABLE: u8 = 6;
/// Internal error: a bug in negsweep.
pub const INTERNAL: u8 = 70;

/// The process exit code `e` maps to.
pub fn of(e: &Error) -> u8 {
    match e {
        Error::Spec { .. }
        | Error::InvalidPipeline { .. }
        | Error::Override { .. }
        | Error::Usage(_) => CONFIG,
        Error::Storage { kind, .. } => match kind {
            StorageKind::Credentials => CREDENTIALS,
            StorageKind::MissingBucket => MISSING_BUCKET,
            StorageKind::Unreachable => UNREACHABLE,
            StorageKind::Other => DATA,
        },
        Error::PointsFailed { .. } => POINTS_FAILED,
        Error::Stage { source, .. } => of(source),
        Error::Internal(_) => INTERNAL,
        Error::Data { .. }
        | Error::Arrow(_)
        | Error::Parquet(_)
        | Error::Candle(_)
        | Error::Polars(_)
        | Error::Diverged { .. } => DATA,
    }
}
