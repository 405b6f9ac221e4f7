//! Temporary files on local disk, for data that must spill out of memory.

use crate::{Error, Result, StorageKind};

/// A file on local disk in the temporary folder (`TMPDIR`), deleted when closed, however the
/// process ends (where the file system allows, it never has a name).
///
/// # Errors
/// A storage error naming the folder, when it is missing, read-only or full.
pub fn temp_file() -> Result<std::fs::File> {
    tempfile::tempfile().map_err(temp_file_error)
}

/// The error of a temporary file that could not be created, written or read.
pub fn temp_file_error(e: std::io::Error) -> Error {
    Error::Storage {
        location: std::env::temp_dir().display().to_string(),
        kind: StorageKind::Other,
        message: format!("a temporary file failed (set TMPDIR to a writable folder): {e}"),
    }
}
