//! Text sources, streamed: CSV, JSONL and Parquet tables with a text and a label column, and
//! folders of class subfolders of `.txt` files, from any object store location.
//!
//! A producer task parses the source and sends chunks of records through a bounded channel, so
//! memory stays a few chunks deep whatever the input size. CSV and JSONL parse on a blocking
//! thread over the object's byte stream; Parquet and folders read asynchronously.

use std::io::BufRead;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use serde::Serialize;
use tokio::sync::mpsc;

use super::folders;
pub use super::folders::Skipped;
use super::json_fields;
use super::labels;
use crate::storage::Store;
use crate::{Error, Result};

/// Records per chunk sent to the consumer.
const CHUNK: usize = 4096;
/// Chunks in flight between producer and consumer.
const DEPTH: usize = 4;

/// One text and the name of its concept.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The text.
    pub text: String,
    /// Concept name.
    pub label: String,
}

/// File formats of tabular sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum TextInput {
    /// A table: `rel` in `store`, with the named columns.
    Table {
        /// Format.
        format: TableFormat,
        /// The folder holding the file.
        store: Store,
        /// File name under `store`.
        rel: String,
        /// Text column.
        text_column: String,
        /// Label column (strings or integers).
        label_column: String,
    },
    /// Every `<label>/<file>.txt` under `store`: one example per file.
    Folder {
        /// The folder.
        store: Store,
    },
}

/// Starts streaming the records of `input`; the last message is the skip counts.
pub fn stream(input: &TextInput) -> mpsc::Receiver<Result<Batch>> {
    let (tx, rx) = mpsc::channel(DEPTH);
    let input = input.clone();
    tokio::spawn(async move {
        let result = match &input {
            TextInput::Table {
                format: TableFormat::Parquet,
                store,
                rel,
                text_column,
                label_column,
            } => parquet(store, rel, text_column, label_column, &tx).await,
            TextInput::Table {
                format,
                store,
                rel,
                text_column,
                label_column,
            } => {
                let (format, store, rel) = (*format, store.clone(), rel.clone());
                let (text_column, label_column) = (text_column.clone(), label_column.clone());
                let tx = tx.clone();
                let read = store.reader(&rel).await;
                match read {
                    Err(e) => Err(e),
                    Ok(bytes) => tokio::task::spawn_blocking(move || {
                        let reader = std::io::BufReader::with_capacity(1 << 20, unicode(bytes));
                        let location = store.display(&rel);
                        let columns = (text_column.as_str(), label_column.as_str());
                        match format {
                            TableFormat::Csv => csv(reader, &location, columns, &tx),
                            _ => jsonl(reader, &location, columns, &tx),
                        }
                    })
                    .await
                    .unwrap_or_else(|e| Err(Error::Internal(format!("reader panicked: {e}")))),
                }
            }
            TextInput::Folder { store } => folder(store, &tx).await,
        };
        let last = result.map(Batch::Done);
        // The consumer may have stopped early (on its own error): nothing to tell it then.
        let _ = tx.send(last).await;
    });
    rx
}

/// A message of [`stream`].
#[derive(Debug)]
pub enum Batch {
    /// More records.
    Records(Vec<Record>),
    /// The end, with what was skipped.
    Done(Skipped),
}

/// Collects records into chunks and sends them.
struct Sender<'a> {
    tx: &'a mpsc::Sender<Result<Batch>>,
    buf: Vec<Record>,
    blocking: bool,
}

impl<'a> Sender<'a> {
    fn new(tx: &'a mpsc::Sender<Result<Batch>>, blocking: bool) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
            blocking,
        }
    }

    /// Queues a record; `false` when the consumer is gone.
    fn push_blocking(&mut self, r: Record) -> bool {
        self.buf.push(r);
        self.buf.len() < CHUNK || self.flush_blocking()
    }

    fn flush_blocking(&mut self) -> bool {
        debug_assert!(self.blocking);
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        chunk.is_empty() || self.tx.blocking_send(Ok(Batch::Records(chunk))).is_ok()
    }

    async fn push(&mut self, r: Record) -> bool {
        self.buf.push(r);
        self.buf.len() < CHUNK || self.flush().await
    }

    async fn flush(&mut self) -> bool {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        chunk.is_empty() || self.tx.send(Ok(Batch::Records(chunk))).await.is_ok()
    }
}

/// A reader of UTF-8 text: a file that starts with a UTF-16 byte-order mark (spreadsheets'
/// "Unicode text") is decoded to UTF-8, a UTF-8 byte-order mark is dropped, and anything else
/// passes through unchanged, to be checked as UTF-8 line by line.
pub(crate) fn unicode<R: std::io::Read>(reader: R) -> impl std::io::Read {
    encoding_rs_io::DecodeReaderBytesBuilder::new()
        .utf8_passthru(true)
        .strip_bom(true)
        .build(reader)
}

/// `bytes` as UTF-8 text, or an error naming the line, the column and, for NUL bytes, the
/// likely cause.
pub(crate) fn utf8<'a>(bytes: &'a [u8], location: &str, line: u64) -> Result<&'a str> {
    // `bytes` may span lines (a text file of a folder): name the line and column of the fault.
    let place = |at: usize| {
        let before = &bytes[..at];
        let newlines = before.iter().filter(|&&b| b == b'\n').count() as u64;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        (line + newlines, column)
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let (line, column) = place(at);
        return Err(Error::data(
            location,
            format!(
                "line {line}: NUL byte at column {column}: this looks like UTF-16 text without a \
                 byte-order mark (or a binary file), not UTF-8; save it as UTF-8"
            ),
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = place(e.valid_up_to());
        Error::data(
            location,
            format!("line {line}: not valid UTF-8 (bad byte at column {column})"),
        )
    })
}

fn jsonl(
    mut reader: impl BufRead,
    location: &str,
    columns: (&str, &str),
    tx: &mpsc::Sender<Result<Batch>>,
) -> Result<Skipped> {
    let mut out = Sender::new(tx, true);
    let mut skipped = Skipped::default();
    // Lines are read here and parsed on every core, a block at a time, in line order.
    let pool = super::ingest_pool()?;
    let (mut block, mut ends, mut line) = (Vec::new(), Vec::new(), 0u64);
    loop {
        let n = reader
            .read_until(b'\n', &mut block)
            .map_err(|e| Error::data(location, format!("read failed after line {line}: {e}")))?;
        if n > 0 {
            line += 1;
            ends.push(block.len());
        }
        if ends.len() < CHUNK && n > 0 {
            continue;
        }
        let first = line + 1 - ends.len() as u64;
        let parsed: Vec<Result<Parsed>> = pool.install(|| {
            use rayon::prelude::*;
            (0..ends.len())
                .into_par_iter()
                .map(|i| {
                    let start = if i == 0 { 0 } else { ends[i - 1] };
                    json_record(&block[start..ends[i]], location, first + i as u64, columns)
                })
                .collect()
        });
        for p in parsed {
            match p? {
                Parsed::Record(r) => {
                    if !out.push_blocking(r) {
                        return Ok(skipped);
                    }
                }
                Parsed::EmptyText => skipped.empty_text += 1,
                Parsed::Blank => {}
            }
        }
        block.clear();
        ends.clear();
        if n == 0 {
            break;
        }
    }
    out.flush_blocking();
    Ok(skipped)
}

/// One line of a JSONL file, read.
enum Parsed {
    Record(Record),
    /// A record whose text is empty or null: skipped and counted.
    EmptyText,
    /// A blank line.
    Blank,
}

/// Parses line `line` of a JSONL file: an object with the text and label fields.
fn json_record(
    bytes: &[u8],
    location: &str,
    line: u64,
    (text_col, label_col): (&str, &str),
) -> Result<Parsed> {
    let s = utf8(bytes, location, line)?.trim();
    if s.is_empty() {
        return Ok(Parsed::Blank);
    }
    if let Some(f) = json_fields::text_and_label(s, text_col, label_col)
        && let Ok(label) = match f.label {
            // Most labels: the parsed string itself, not a copy.
            serde_json::Value::String(name) => Ok(name),
            other => labels::json(&other),
        }
    {
        return Ok(match f.text {
            Some(text) if !text.trim().is_empty() => Parsed::Record(Record { text, label }),
            _ => Parsed::EmptyText,
        });
    }
    // Not the common case: parsed again as a whole, to name what is wrong.
    let v: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| Error::data(location, format!("line {line}: invalid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Error::data(
            location,
            format!("line {line}: expected a JSON object"),
        ));
    };
    let missing = |col: &str| {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        Error::data(
            location,
            format!(
                "line {line}: no `{col}` field (fields: {}); set the column in the dataset's settings",
                keys.join(", ")
            ),
        )
    };
    let label = match obj.get(label_col) {
        Some(v) => labels::json(v)
            .map_err(|m| Error::data(location, format!("line {line}: label `{label_col}` {m}")))?,
        None => return Err(missing(label_col)),
    };
    let text = match obj.get(text_col) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(serde_json::Value::String(_) | serde_json::Value::Null) => {
            return Ok(Parsed::EmptyText);
        }
        Some(other) => {
            return Err(Error::data(
                location,
                format!("line {line}: text `{text_col}` is {other}, not a string"),
            ));
        }
        None => return Err(missing(text_col)),
    };
    Ok(Parsed::Record(Record { text, label }))
}

/// How a CSV file is written, read off its first line: the delimiter (a tab when the header
/// has tabs and no comma, as a spreadsheet's "Unicode text" export; else a comma) and whether
/// lines end in CRLF.
pub(crate) fn sniff_csv(first_line: &[u8]) -> (u8, bool) {
    let line = match first_line.iter().position(|&b| b == b'\n') {
        Some(end) => &first_line[..=end],
        None => first_line,
    };
    let tab = !line.contains(&b',') && line.contains(&b'\t');
    (if tab { b'\t' } else { b',' }, line.ends_with(b"\r\n"))
}

fn csv(
    mut reader: impl BufRead,
    location: &str,
    (text_col, label_col): (&str, &str),
    tx: &mpsc::Sender<Result<Batch>>,
) -> Result<Skipped> {
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::data(location, format!("cannot read: {e}")))?;
    let (delimiter, crlf) = sniff_csv(&first);
    let mut r = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(std::io::Read::chain(std::io::Cursor::new(first), reader));
    // The CSV reader counts a record's line before the `\n` of a CRLF ending that precedes it.
    let fix = u64::from(crlf);
    let err = |e: ::csv::Error| {
        let message = match e.kind() {
            ::csv::ErrorKind::UnequalLengths {
                pos: Some(pos),
                expected_len,
                len,
            } => format!(
                "line {}: {len} fields, where the header has {expected_len}",
                pos.line() + fix
            ),
            _ => e.to_string(),
        };
        Error::data(location, message)
    };
    let headers = r.byte_headers().map_err(err)?.clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| utf8(h, location, 1).map(str::to_owned))
        .collect::<Result<_>>()?;
    let find = |col: &str| {
        names.iter().position(|n| n == col).ok_or_else(|| {
            Error::data(
                location,
                format!(
                    "no `{col}` column (columns: {}); set the column in the dataset's settings",
                    names.join(", ")
                ),
            )
        })
    };
    let (ti, li) = (find(text_col)?, find(label_col)?);
    let mut out = Sender::new(tx, true);
    let mut skipped = Skipped::default();
    let mut record = ::csv::ByteRecord::new();
    while r.read_byte_record(&mut record).map_err(err)? {
        let line = record.position().map_or(0, |p| p.line() + fix);
        let field = |i: usize, col: &str| {
            let bytes = record.get(i).unwrap_or_default();
            std::str::from_utf8(bytes).map_err(|e| {
                Error::data(
                    location,
                    format!(
                        "line {line}: field `{col}` is not valid UTF-8 (bad byte {} of the field)",
                        e.valid_up_to() + 1
                    ),
                )
            })
        };
        let (text, label) = (field(ti, text_col)?, field(li, label_col)?);
        if label.trim().is_empty() {
            return Err(Error::data(
                location,
                format!("line {line}: empty label `{label_col}`"),
            ));
        }
        let label = labels::text(label)
            .map_err(|m| Error::data(location, format!("line {line}: label `{label_col}`: {m}")))?;
        if text.trim().is_empty() {
            skipped.empty_text += 1;
            continue;
        }
        let rec = Record {
            text: text.to_owned(),
            label,
        };
        if !out.push_blocking(rec) {
            return Ok(skipped);
        }
    }
    out.flush_blocking();
    Ok(skipped)
}

async fn parquet(
    store: &Store,
    rel: &str,
    text_col: &str,
    label_col: &str,
    tx: &mpsc::Sender<Result<Batch>>,
) -> Result<Skipped> {
    let location = store.display(rel);
    let bad =
        |e: parquet::errors::ParquetError| crate::storage::parquet_error(&location, "Parquet", e);
    let builder = ParquetRecordBatchStreamBuilder::new(store.parquet_reader(rel))
        .await
        .map_err(bad)?;
    let schema = builder.schema().clone();
    let index = |col: &str| {
        schema.index_of(col).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::data(
                &location,
                format!(
                    "no `{col}` column (columns: {}); set the column in the dataset's settings",
                    names.join(", ")
                ),
            )
        })
    };
    let (ti, li) = (index(text_col)?, index(label_col)?);
    labels::check_type(schema.field(li).data_type())
        .map_err(|m| Error::data(&location, format!("label column `{label_col}` {m}")))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [ti, li]);
    let mut batches = builder
        .with_projection(mask)
        .with_batch_size(CHUNK)
        .build()
        .map_err(bad)?;
    let mut out = Sender::new(tx, false);
    let mut skipped = Skipped::default();
    let mut first_row = 0usize;
    while let Some(batch) = batches.try_next().await.map_err(bad)? {
        let c = batch.column_by_name(text_col).expect("projected column");
        let text: StringArray = arrow::compute::cast(c, &DataType::Utf8)
            .map_err(|e| Error::data(&location, format!("column `{text_col}` is not text: {e}")))?
            .as_string::<i32>()
            .clone();
        let label = labels::column(batch.column_by_name(label_col).expect("projected column"))
            .map_err(|(i, m)| {
                Error::data(
                    &location,
                    format!("row {}: label `{label_col}` {m}", first_row + i + 1),
                )
            })?;
        for (i, label) in label.into_iter().enumerate() {
            let Some(label) = label else {
                return Err(Error::data(
                    &location,
                    format!("row {}: null label `{label_col}`", first_row + i + 1),
                ));
            };
            if text.is_null(i) || text.value(i).trim().is_empty() {
                skipped.empty_text += 1;
                continue;
            }
            let rec = Record {
                text: text.value(i).to_owned(),
                label,
            };
            if !out.push(rec).await {
                return Ok(skipped);
            }
        }
        first_row += batch.num_rows();
    }
    out.flush().await;
    Ok(skipped)
}

async fn folder(store: &Store, tx: &mpsc::Sender<Result<Batch>>) -> Result<Skipped> {
    let mut files = store.list("").await?;
    if files.is_empty() {
        return Err(Error::data(store.url(), "no files in this folder"));
    }
    // Listing order differs between stores: sort for a deterministic dataset.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Sender::new(tx, false);
    let mut skipped = Skipped::default();
    let mut texts = Vec::new();
    for (rel, _) in &files {
        let Some((label, name)) = folders::example(rel, &mut skipped) else {
            continue;
        };
        if folders::extension(name).as_deref() == Some("txt") {
            texts.push((label.to_owned(), rel.clone()));
        } else {
            skipped.other_format(name);
        }
    }
    if texts.is_empty() {
        return Err(Error::data(
            store.url(),
            format!("no <class>/<file>.txt texts here (skipped: {skipped})"),
        ));
    }
    let mut reads = futures::stream::iter(texts)
        .map(|(label, rel)| async move {
            let bytes = store
                .get(&rel)
                .await?
                .ok_or_else(|| Error::data(store.display(&rel), "vanished while reading"))?;
            let text = match encoding_rs::Encoding::for_bom(&bytes) {
                // A byte-order mark: UTF-8 without it, or UTF-16 decoded.
                Some((encoding, bom)) => encoding
                    .decode_without_bom_handling(&bytes[bom..])
                    .0
                    .into_owned(),
                None => utf8(&bytes, &store.display(&rel), 1)?.to_owned(),
            };
            Ok::<_, Error>((label, text))
        })
        .buffered(16);
    let mut empty = 0;
    while let Some(item) = reads.next().await {
        let (label, text) = item?;
        if text.trim().is_empty() {
            empty += 1;
            continue;
        }
        if !out.push(Record { text, label }).await {
            break;
        }
    }
    drop(reads);
    out.flush().await;
    skipped.empty_text = empty;
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::utf8;

    #[test]
    fn a_bad_byte_is_placed_by_its_line_and_column() {
        let e = utf8(b"line one\nline two\nline three \xff bad\n", "f.txt", 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3: not valid UTF-8 (bad byte at column 12)"),
            "{e}"
        );
        let e = utf8(b"ab\xffc", "f.jsonl", 7).unwrap_err().to_string();
        assert!(
            e.contains("line 7: not valid UTF-8 (bad byte at column 3)"),
            "{e}"
        );
        let e = utf8(b"one\ntw\0o", "f.txt", 1).unwrap_err().to_string();
        assert!(e.contains("line 2: NUL byte at column 3"), "{e}");
    }
}
