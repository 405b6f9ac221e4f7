//! The inputs of file datasets: checked before anything runs, and fingerprinted by content so
//! that a dataset's key changes when the bytes behind its URL change.
//!
//! A file's fingerprint is the blake3 of its bytes. Hashing is paid once per version of a file:
//! the output keeps `inputs/<url hash>.json` with the size, modification time and ETag the
//! hash was taken at, and a later run whose `head` shows the same three reuses it. A folder's
//! fingerprint is the hash of its listing (every file's path, size, modification time and
//! ETag): adding, removing or rewriting any file under it gives a new key.

use object_store::ObjectMeta;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{DataSource, Plan};
use crate::data::tokenize::VocabMode;
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// One thing a dataset reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file, by URL.
    File(String),
    /// A folder, by URL: every file under it may be read.
    Folder(String),
}

impl Input {
    fn url(&self) -> &str {
        match self {
            Input::File(u) | Input::Folder(u) => u,
        }
    }
}

/// What `source` reads; empty for generated data.
pub fn of(source: &DataSource) -> Vec<Input> {
    source.inputs()
}

/// Checks that every input of `source` exists and can be read, reading only a header or a
/// footer: a Parquet file's footer and its columns, a CSV file's header row, a JSONL file's
/// first record, a folder's listing. `settings` open the inputs' stores.
///
/// # Errors
/// A data error naming the input at fault and what is wrong with it.
pub async fn check(source: &DataSource, settings: &StorageSettings) -> Result<()> {
    if let Some(tokenize) = source.tokenize()
        && matches!(tokenize.mode, VocabMode::Counted { .. })
    {
        // A counted vocabulary keeps the texts in a temporary file while it counts: an
        // unusable TMPDIR is found here rather than after a queued job starts.
        drop(crate::storage::temp_file()?);
    }
    for input in of(source) {
        match &input {
            Input::Folder(url) => {
                let store = Store::open_str(url, settings)?;
                let files = store.list("").await?;
                if files.is_empty() {
                    return Err(Error::data(
                        store.url(),
                        "no such folder, or it holds no files",
                    ));
                }
            }
            Input::File(url) => {
                let (store, rel) = Store::open_file(url, settings)?;
                let Some(meta) = store.head(&rel).await? else {
                    return Err(Error::data(store.display(&rel), "no such file"));
                };
                source.check_file(&store, &rel, &meta).await?;
            }
        }
    }
    Ok(())
}

/// Checks that `names` (a file's columns) include every one of `wanted`.
///
/// # Errors
/// A data error at `location` naming the first missing column and the columns there are.
pub(crate) fn require_columns(location: &str, names: &[String], wanted: &[&str]) -> Result<()> {
    for w in wanted {
        if !names.iter().any(|n| n == w) {
            return Err(Error::data(
                location,
                format!(
                    "no `{w}` column (columns: {}); set the column in the dataset's settings",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that the file at `rel` (whose `head` is `meta`) holds some bytes: the check of a
/// file whose format is read only when it is ingested.
///
/// # Errors
/// A data error when the file is empty.
pub(crate) fn require_bytes(store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
    if meta.size == 0 {
        return Err(Error::data(store.display(rel), "the file is empty"));
    }
    Ok(())
}

/// The schema of the Parquet file at `rel`, from its footer alone.
pub(crate) async fn parquet_schema(
    store: &Store,
    rel: &str,
    location: &str,
) -> Result<arrow::datatypes::SchemaRef> {
    ParquetRecordBatchStreamBuilder::new(store.parquet_reader(rel))
        .await
        .map(|b| std::sync::Arc::clone(b.schema()))
        .map_err(|e| crate::storage::parquet_error(location, "not a readable Parquet file", e))
}

/// The column names of `schema`.
pub(crate) fn names_of(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Checks the inputs of every dataset of `plan`, reporting every one that cannot be read.
///
/// # Errors
/// A data error (exit code 3) listing each dataset's key and its problem.
pub async fn check_all(plan: &Plan) -> Result<()> {
    let mut problems = Vec::new();
    for (i, ds) in plan.datasets.iter().enumerate() {
        if let Err(e) = check(&ds.source, &plan.storage).await {
            if !matches!(e, Error::Data { .. }) {
                return Err(e);
            }
            problems.push(format!("  - datasets[{i}] (`{}`): {e}", ds.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::data(
            &plan.source,
            format!("inputs that cannot be read:\n{}", problems.join("\n")),
        ))
    }
}

/// What the output remembers of one input: the version its fingerprint was taken at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    url: String,
    size: u64,
    modified: String,
    e_tag: Option<String>,
    fingerprint: String,
}

fn seen_rel(url: &str) -> String {
    format!(
        "inputs/{}.json",
        &blake3::hash(url.as_bytes()).to_hex()[..16]
    )
}

/// Fingerprint of one input, reusing the hash the output remembers for this exact version and
/// saying so when the input changed since it was last read.
async fn fingerprint(input: &Input, output: &Store, settings: &StorageSettings) -> Result<String> {
    let remembered: Option<Seen> = match output.get(&seen_rel(input.url())).await? {
        // A damaged record is only a cache: hashing again is always right.
        Some(bytes) => serde_json::from_slice(&bytes).ok(),
        None => None,
    };
    let (size, modified, e_tag, fingerprint) = match input {
        Input::File(url) => {
            let (store, rel) = Store::open_file(url, settings)?;
            let meta = store
                .head(&rel)
                .await?
                .ok_or_else(|| Error::data(store.display(&rel), "no such file"))?;
            let modified = meta.last_modified.to_rfc3339();
            let same =
                |s: &Seen| s.size == meta.size && s.modified == modified && s.e_tag == meta.e_tag;
            let fingerprint = match remembered.as_ref().filter(|s| same(s)) {
                Some(s) => s.fingerprint.clone(),
                None => hash_file(&store, &rel).await?,
            };
            (meta.size, modified, meta.e_tag, fingerprint)
        }
        Input::Folder(url) => {
            let store = Store::open_str(url, settings)?;
            let mut files = store.list("").await?;
            // Hidden files are never read: adding one (`.DS_Store`) changes no example.
            files.retain(|(rel, _)| !rel.split('/').any(|part| part.starts_with('.')));
            files.sort_by(|a, b| a.0.cmp(&b.0));
            let mut h = blake3::Hasher::new();
            let mut size = 0;
            for (rel, m) in &files {
                size += m.size;
                let line = serde_json::json!([rel, m.size, m.last_modified.to_rfc3339(), m.e_tag]);
                h.update(line.to_string().as_bytes());
                h.update(b"\n");
            }
            (
                size,
                format!("{} files", files.len()),
                None,
                h.finalize().to_hex().to_string(),
            )
        }
    };
    if let Some(old) = &remembered
        && old.fingerprint != fingerprint
    {
        warn!(
            input = %input.url(),
            was = format!("{} bytes, {}", old.size, old.modified),
            now = format!("{size} bytes, {modified}"),
            "the input changed since it was last read: its dataset is ingested again and its points computed anew"
        );
    }
    let seen = Seen {
        url: input.url().to_owned(),
        size,
        modified,
        e_tag,
        fingerprint: fingerprint.clone(),
    };
    if remembered.as_ref() != Some(&seen) {
        let json = serde_json::to_vec_pretty(&seen).expect("plain data serialises");
        output.put(&seen_rel(input.url()), json.into()).await?;
    }
    Ok(fingerprint)
}

/// blake3 of a file's bytes, streamed.
async fn hash_file(store: &Store, rel: &str) -> Result<String> {
    info!(input = %store.display(rel), "fingerprinting the input's content");
    let mut reader = store.reader(rel).await?;
    let location = store.display(rel);
    tokio::task::spawn_blocking(move || {
        let mut h = blake3::Hasher::new();
        h.update_reader(&mut reader)
            .map_err(|e| Error::data(location, format!("read failed: {e}")))?;
        Ok(h.finalize().to_hex().to_string())
    })
    .await
    .map_err(|e| Error::Internal(format!("fingerprinting panicked: {e}")))?
}

/// Keys every file dataset of `plan` by its inputs' content (see the module docs); pool keys
/// and point ids follow. Generated datasets keep their keys.
///
/// # Errors
/// An input that cannot be read, or the output store failing.
pub async fn key_by_content(plan: &mut Plan, output: &Store) -> Result<()> {
    let mut fingerprints = Vec::with_capacity(plan.datasets.len());
    for ds in &plan.datasets {
        let mut parts = Vec::new();
        for input in of(&ds.source) {
            parts.push(fingerprint(&input, output, &plan.storage).await?);
        }
        fingerprints.push((!parts.is_empty()).then_some(parts));
    }
    plan.rekey(&fingerprints);
    // Keyed by content, two entries at different URLs can be one dataset.
    let mut diagnostics = Vec::new();
    for (i, ds) in plan.datasets.iter().enumerate() {
        if let Some(j) = plan.datasets[..i].iter().position(|d| d.key == ds.key) {
            diagnostics.push(crate::Diagnostic {
                key: format!("datasets[{i}]"),
                origin: crate::Origin::File,
                message: format!(
                    "`{}` ({}) holds the same data, read with the same settings, as \
                     datasets[{j}] (`{}`, {}); list it once",
                    ds.name,
                    ds.source.location(),
                    plan.datasets[j].name,
                    plan.datasets[j].source.location()
                ),
            });
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(plan.invalid(diagnostics))
    }
}
