//! Ingest of text read from files and from WordNet: records stream in, are tokenized, and go
//! out as Parquet row groups, so memory stays bounded whatever the input size. A counted
//! vocabulary takes one extra pass over the source (word counts only).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ListBuilder, RecordBatch, StringBuilder, UInt32Array, UInt32Builder};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::info;

use super::tables;
use crate::data::sources::{self, Batch, Record, Skipped, TextInput};
use crate::data::tokenize::{Counter, TokenizeConfig, Tokenizer, VocabMode};
use crate::data::wordnet::{self, WordnetStats};
use crate::plan::DataSource;
use crate::plan::files::WordnetSource;
use crate::storage::{Store, encode_parquet};
use crate::{Error, Result};

/// Rows per Parquet row group (and per in-memory batch).
const ROWS: usize = 65_536;

/// What a text ingest read, kept and skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TextIngest {
    /// Examples written.
    pub examples: u64,
    /// Distinct concepts among them.
    pub concepts: u64,
    /// Token ids written.
    pub tokens: u64,
    /// Vocabulary size (or hash buckets).
    pub vocab: u32,
    /// Distinct words seen by the counting pass (0 when hashing).
    pub distinct_words: u64,
    /// Words dropped as out of vocabulary.
    pub oov_words: u64,
    /// What the reader skipped, and why (blank texts; in folders hidden, stray and nested
    /// files and other formats).
    pub skipped: Skipped,
    /// Texts that tokenized to nothing (all out of vocabulary), skipped.
    pub no_tokens: u64,
    /// WordNet only: what the granularity kept and dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wordnet: Option<WordnetStats>,
}

/// Where a text dataset's records come from, opened.
enum Input {
    Stream(TextInput),
    Wordnet(WordnetSource),
}

fn input(source: &DataSource) -> Result<(Input, TokenizeConfig)> {
    Ok(match source {
        DataSource::Table {
            format,
            url,
            text_column,
            label_column,
            tokenize,
        } => {
            let (store, rel) = Store::open_file(url)?;
            let input = TextInput::Table {
                format: *format,
                store,
                rel,
                text_column: text_column.clone(),
                label_column: label_column.clone(),
            };
            (Input::Stream(input), *tokenize)
        }
        DataSource::TextFolder { url, tokenize } => {
            let store = Store::open_str(url)?;
            (Input::Stream(TextInput::Folder { store }), *tokenize)
        }
        DataSource::Wordnet { wordnet, tokenize } => (Input::Wordnet(wordnet.clone()), *tokenize),
        _ => return Err(Error::Internal("not a text source".into())),
    })
}

/// Reads and labels a WordNet database (small: parsed in memory).
async fn wordnet_records(w: &WordnetSource) -> Result<(Vec<Record>, WordnetStats)> {
    let store = Store::open_str(&w.url)?;
    let file = wordnet::data_file(w.pos);
    let location = store.display(file);
    let bytes = store.get(file).await?.ok_or_else(|| {
        Error::data(
            &location,
            "no WordNet database here (on Debian: apt-get install wordnet-base)",
        )
    })?;
    let (concept, depth, min_texts, texts) = (w.concept, w.depth, w.min_texts, w.texts);
    tokio::task::spawn_blocking(move || {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::data(&location, format!("not valid UTF-8: {e}")))?;
        let synsets = wordnet::parse(text, &location)?;
        Ok(wordnet::records(&synsets, concept, depth, min_texts, texts))
    })
    .await
    .map_err(|e| Error::Internal(format!("WordNet reader panicked: {e}")))?
}

/// One pass over the records of `input`.
async fn pass(input: &Input) -> Result<(mpsc::Receiver<Result<Batch>>, Option<WordnetStats>)> {
    Ok(match input {
        Input::Stream(t) => (sources::stream(t), None),
        Input::Wordnet(w) => {
            let (records, stats) = wordnet_records(w).await?;
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                let _ = tx.send(Ok(Batch::Records(records))).await;
                let _ = tx.send(Ok(Batch::Done(Skipped::default()))).await;
            });
            (rx, Some(stats))
        }
    })
}

/// Columns being filled for the next row group.
struct Builders {
    labels: UInt32Builder,
    concepts: StringBuilder,
    tokens: ListBuilder<UInt32Builder>,
    rows: usize,
}

impl Builders {
    fn new() -> Self {
        Self {
            labels: UInt32Builder::new(),
            concepts: StringBuilder::new(),
            tokens: ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(Field::new(
                "item",
                arrow::datatypes::DataType::UInt32,
                false,
            ))),
            rows: 0,
        }
    }

    fn finish(&mut self, schema: &Arc<Schema>, first_id: u32) -> Result<RecordBatch> {
        let n = std::mem::take(&mut self.rows);
        let ids = UInt32Array::from_iter_values(first_id..first_id + n as u32);
        let split = arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, n);
        Ok(RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(ids),
                Arc::new(self.labels.finish()),
                Arc::new(self.concepts.finish()),
                split,
                Arc::new(self.tokens.finish()),
            ],
        )?)
    }
}

/// Streams `source` into `dir/examples.parquet` (and `dir/vocab.parquet` for a counted
/// vocabulary) in `store`.
pub async fn write(store: &Store, dir: &str, source: &DataSource) -> Result<TextIngest> {
    let (input, cfg) = input(source)?;
    let mut report = TextIngest::default();
    // Tokenizing is the ingest's work: every core, whatever share a point would get.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        )
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokenizing threads: {e}")))?;
    let tokenizer = match cfg.mode {
        VocabMode::Hashed { buckets } => Tokenizer::hashed(buckets, cfg.max_tokens),
        VocabMode::Counted {
            min_count,
            max_vocab,
        } => {
            let (mut rx, _) = pass(&input).await?;
            // One counter per thread, merged at the end: counts do not depend on the split.
            let mut counters: Vec<Counter> = (0..pool.current_num_threads())
                .map(|_| Counter::default())
                .collect();
            let mut texts = 0u64;
            while let Some(msg) = rx.recv().await {
                match msg? {
                    Batch::Records(chunk) => {
                        texts += chunk.len() as u64;
                        let part = chunk.len().div_ceil(counters.len()).max(1);
                        pool.install(|| {
                            chunk
                                .par_chunks(part)
                                .zip(counters.par_iter_mut())
                                .for_each(|(records, c)| {
                                    records.iter().for_each(|r| c.add(&r.text));
                                });
                        });
                    }
                    Batch::Done(skipped) => {
                        report.skipped = skipped;
                        break;
                    }
                }
            }
            if texts == 0 {
                return Err(no_examples(source, &report));
            }
            let mut counter = counters.pop().unwrap_or_default();
            counters.into_iter().for_each(|c| counter.merge(c));
            report.distinct_words = counter.distinct() as u64;
            Tokenizer::counted(counter.vocabulary(min_count, max_vocab), cfg.max_tokens)
        }
    };
    report.vocab = tokenizer.vocab_size();
    if report.vocab == 0 {
        return Err(Error::data(
            source.location(),
            format!(
                "the vocabulary is empty: none of the {} distinct words occurs \
                 tokenize.min-count times",
                report.distinct_words
            ),
        ));
    }
    let meta = HashMap::from([
        ("negsweep.vocab".to_owned(), report.vocab.to_string()),
        ("negsweep.modality".to_owned(), "text".to_owned()),
    ]);
    let schema = Arc::new(Schema::new_with_metadata(
        tables::examples(true, 0).fields().clone(),
        meta,
    ));
    let rel = format!("{dir}/examples.parquet");
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROWS))
        .build();
    let sink =
        object_store::buffered::BufWriter::new(Arc::clone(store.object_store()), store.path(&rel));
    let mut writer = AsyncArrowWriter::try_new(sink, Arc::clone(&schema), Some(props))?;
    let (mut rx, wordnet_stats) = pass(&input).await?;
    report.wordnet = wordnet_stats;
    let mut label_ids: HashMap<String, u32> = HashMap::new();
    let mut b = Builders::new();
    let mut next_id = 0u32;
    while let Some(msg) = rx.recv().await {
        let chunk = match msg? {
            Batch::Records(chunk) => chunk,
            Batch::Done(skipped) => {
                report.skipped = skipped;
                break;
            }
        };
        let encoded: Vec<(Vec<u32>, usize)> = pool.install(|| {
            chunk
                .par_iter()
                .map(|r| {
                    let mut ids = Vec::new();
                    let oov = tokenizer.encode(&r.text, &mut ids);
                    (ids, oov)
                })
                .collect()
        });
        for (r, (ids, oov)) in chunk.into_iter().zip(encoded) {
            report.oov_words += oov as u64;
            if ids.is_empty() {
                report.no_tokens += 1;
                continue;
            }
            let next = label_ids.len() as u32;
            let label = *label_ids.entry(r.label.clone()).or_insert(next);
            b.labels.append_value(label);
            b.concepts.append_value(&r.label);
            b.tokens.values().append_slice(&ids);
            b.tokens.append(true);
            report.tokens += ids.len() as u64;
            b.rows += 1;
            if b.rows == ROWS {
                writer.write(&b.finish(&schema, next_id)?).await?;
                next_id += ROWS as u32;
            }
        }
    }
    if b.rows > 0 {
        let rows = b.rows as u32;
        writer.write(&b.finish(&schema, next_id)?).await?;
        next_id += rows;
    }
    report.examples = u64::from(next_id);
    report.concepts = label_ids.len() as u64;
    if report.examples == 0 {
        // Dropped unfinished: the upload is never completed, so no file appears.
        drop(writer);
        return Err(no_examples(source, &report));
    }
    writer.close().await?;
    if let Some(v) = tokenizer.vocabulary() {
        store
            .put(&format!("{dir}/vocab.parquet"), vocab_bytes(v)?.into())
            .await?;
    }
    info!(
        examples = report.examples,
        concepts = report.concepts,
        vocab = report.vocab,
        skipped = %report.skipped,
        no_tokens = report.no_tokens,
        "text ingested"
    );
    Ok(report)
}

/// The error of an input with no usable example, naming the user's input and what was skipped.
fn no_examples(source: &DataSource, report: &TextIngest) -> Error {
    let mut why = Vec::new();
    if report.skipped != Skipped::default() {
        why.push(report.skipped.to_string());
    }
    if report.no_tokens > 0 {
        why.push(format!(
            "{} texts whose words are all outside the vocabulary",
            report.no_tokens
        ));
    }
    let message = if why.is_empty() {
        "no examples: the input holds no records".to_owned()
    } else {
        format!("no examples: every record was skipped ({})", why.join(", "))
    };
    Error::data(source.location(), message)
}

fn vocab_bytes(v: &crate::data::tokenize::Vocabulary) -> Result<Vec<u8>> {
    let schema = tables::vocab();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..v.words.len() as u32)),
            Arc::new(arrow::array::StringArray::from_iter_values(
                v.words.iter().map(|(w, _)| w),
            )),
            Arc::new(arrow::array::UInt64Array::from_iter_values(
                v.words.iter().map(|(_, c)| *c),
            )),
        ],
    )?;
    encode_parquet(schema, &[batch])
}
