//! The inputs of file datasets: checked before anything runs, and fingerprinted by content so
//! that a dataset's key changes when the bytes behind its URL change.
//!
//! A file's fingerprint is the blake3 of its bytes. Hashing is paid once per version of a file:
//! the output keeps `inputs/<url hash>.json` with the size, modification time and ETag the
//! hash was taken at, and a later run whose `head` shows the same three reuses it. A folder's
//! fingerprint is the hash of its listing (every file's path, size, modification time and
//! ETag): adding, removing or rewriting any file under it gives a new key.

use futures::TryStreamExt;
use object_store::ObjectMeta;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{DataSource, Plan};
use crate::data::sources::TableFormat;
use crate::data::tokenize::VocabMode;
use crate::storage::Store;
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
    match source {
        DataSource::SyntheticText { .. } | DataSource::SyntheticImage { .. } => Vec::new(),
        DataSource::Table { url, .. }
        | DataSource::Digits { url }
        | DataSource::HfImages { url, .. } => vec![Input::File(url.clone())],
        DataSource::TextFolder { url, .. }
        | DataSource::ImageFolder { url, .. }
        | DataSource::Glyphs { url, .. } => vec![Input::Folder(url.clone())],
        DataSource::Idx { images, labels, .. } => {
            vec![Input::File(images.clone()), Input::File(labels.clone())]
        }
        DataSource::Cifar { files, .. } => files.iter().cloned().map(Input::File).collect(),
        DataSource::Wordnet { wordnet, .. } => vec![Input::File(format!(
            "{}/{}",
            wordnet.url.trim_end_matches('/'),
            crate::data::wordnet::data_file(wordnet.pos)
        ))],
    }
}

/// Checks that every input of `source` exists and can be read, reading only a header or a
/// footer: a Parquet file's footer and its columns, a CSV file's header row, a JSONL file's
/// first record, a folder's listing.
///
/// # Errors
/// A data error naming the input at fault and what is wrong with it.
pub async fn check(source: &DataSource) -> Result<()> {
    if let DataSource::Table { tokenize, .. }
    | DataSource::TextFolder { tokenize, .. }
    | DataSource::Wordnet { tokenize, .. } = source
        && matches!(tokenize.mode, VocabMode::Counted { .. })
    {
        // A counted vocabulary keeps the texts in a temporary file while it counts: an
        // unusable TMPDIR is found here rather than after a queued job starts.
        drop(crate::storage::temp_file()?);
    }
    for input in of(source) {
        match &input {
            Input::Folder(url) => {
                let store = Store::open_str(url)?;
                let files = store.list("").await?;
                if files.is_empty() {
                    return Err(Error::data(
                        store.url(),
                        "no such folder, or it holds no files",
                    ));
                }
            }
            Input::File(url) => {
                let (store, rel) = Store::open_file(url)?;
                let Some(meta) = store.head(&rel).await? else {
                    return Err(Error::data(store.display(&rel), "no such file"));
                };
                check_file(source, &store, &rel, &meta).await?;
            }
        }
    }
    Ok(())
}

/// Reads the header or footer of one input file.
async fn check_file(
    source: &DataSource,
    store: &Store,
    rel: &str,
    meta: &ObjectMeta,
) -> Result<()> {
    let location = store.display(rel);
    let columns = |names: &[String], wanted: &[&str]| -> Result<()> {
        for w in wanted {
            if !names.iter().any(|n| n == w) {
                return Err(Error::data(
                    &location,
                    format!(
                        "no `{w}` column (columns: {}); set the column in the dataset's settings",
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    match source {
        DataSource::Table {
            format: TableFormat::Parquet,
            text_column,
            label_column,
            ..
        } => {
            let schema = parquet_schema(store, rel, &location).await?;
            columns(&names_of(&schema), &[text_column, label_column])?;
            let dt = schema
                .field_with_name(label_column)
                .expect("checked above")
                .data_type()
                .clone();
            crate::data::labels::check_type(&dt).map_err(|m| {
                Error::data(&location, format!("label column `{label_column}` {m}"))
            })?;
        }
        DataSource::HfImages { label_column, .. } => {
            let schema = parquet_schema(store, rel, &location).await?;
            columns(&names_of(&schema), &[label_column])?;
            let dt = schema
                .field_with_name(label_column)
                .expect("checked above")
                .data_type()
                .clone();
            if !(dt.is_integer() || dt.is_floating()) {
                return Err(Error::data(
                    &location,
                    format!(
                        "label column `{label_column}` has type {dt}; an image label is a class \
                         index: an integer, or a float holding a whole number"
                    ),
                ));
            }
        }
        DataSource::Table { .. } if meta.size == 0 => {
            return Err(Error::data(
                &location,
                "the file is empty (0 bytes): no records",
            ));
        }
        DataSource::Table {
            format,
            text_column,
            label_column,
            ..
        } => {
            let head = store.head_bytes(rel, 64 << 10).await?;
            let mut reader = std::io::BufReader::new(crate::data::sources::unicode(&head[..]));
            let mut line = Vec::new();
            // The first non-blank line: the header of a CSV file, a record of a JSONL file.
            let mut number = 0;
            loop {
                line.clear();
                let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                    .map_err(|e| Error::data(&location, format!("cannot read: {e}")))?;
                number += 1;
                if n == 0 || !line.iter().all(u8::is_ascii_whitespace) {
                    break;
                }
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                if head.len() as u64 == meta.size {
                    return Err(Error::data(
                        &location,
                        match format {
                            TableFormat::Csv => "no header row: the file holds only blank lines",
                            _ => "no records: the file holds only blank lines",
                        },
                    ));
                }
                // Blank lines past what was read: the ingest reads on.
                return Ok(());
            }
            let complete = line.ends_with(b"\n") || head.len() as u64 == meta.size;
            if !complete {
                // A first line longer than what was read: the ingest checks it.
                return Ok(());
            }
            let text = crate::data::sources::utf8(&line, &location, number)?.trim();
            let names: Vec<String> = match format {
                TableFormat::Csv => ::csv::ReaderBuilder::new()
                    .has_headers(false)
                    .delimiter(crate::data::sources::sniff_csv(text.as_bytes()).0)
                    .from_reader(text.as_bytes())
                    .records()
                    .next()
                    .transpose()
                    .map_err(|e| Error::data(&location, format!("line {number}: {e}")))?
                    .map(|r| r.iter().map(str::to_owned).collect())
                    .unwrap_or_default(),
                _ => match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
                    Ok(_) => {
                        return Err(Error::data(
                            &location,
                            format!("line {number}: expected a JSON object"),
                        ));
                    }
                    Err(e) => {
                        return Err(Error::data(
                            &location,
                            format!("line {number}: invalid JSON: {e}"),
                        ));
                    }
                },
            };
            columns(&names, &[text_column, label_column])?;
        }
        _ => {
            if meta.size == 0 {
                return Err(Error::data(&location, "the file is empty"));
            }
        }
    }
    Ok(())
}

/// The schema of the Parquet file at `rel`, from its footer alone.
async fn parquet_schema(
    store: &Store,
    rel: &str,
    location: &str,
) -> Result<arrow::datatypes::SchemaRef> {
    ParquetRecordBatchStreamBuilder::new(store.parquet_reader(rel))
        .await
        .map(|b| std::sync::Arc::clone(b.schema()))
        .map_err(|e| crate::storage::parquet_error(location, "not a readable Parquet file", e))
}

fn names_of(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Checks the inputs of every dataset of `plan`, reporting every one that cannot be read.
///
/// # Errors
/// A data error (exit code 3) listing each dataset's key and its problem.
pub async fn check_all(plan: &Plan) -> Result<()> {
    let mut problems = Vec::new();
    for (i, ds) in plan.datasets.iter().enumerate() {
        if let Err(e) = check(&ds.source).await {
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
async fn fingerprint(input: &Input, output: &Store) -> Result<String> {
    let remembered: Option<Seen> = match output.get(&seen_rel(input.url())).await? {
        // A damaged record is only a cache: hashing again is always right.
        Some(bytes) => serde_json::from_slice(&bytes).ok(),
        None => None,
    };
    let (size, modified, e_tag, fingerprint) = match input {
        Input::File(url) => {
            let (store, rel) = Store::open_file(url)?;
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
            let store = Store::open_str(url)?;
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
    let mut stream = store.read_stream(rel).await?;
    let mut h = blake3::Hasher::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| Error::data(store.display(rel), format!("read failed: {e}")))?
    {
        h.update(&chunk);
    }
    Ok(h.finalize().to_hex().to_string())
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
            parts.push(fingerprint(&input, output).await?);
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
        Err(Error::InvalidPipeline {
            path: plan.source.clone(),
            diagnostics,
        })
    }
}
