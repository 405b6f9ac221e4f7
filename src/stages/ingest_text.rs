//! Ingest of text read from files and from WordNet: records stream in, are tokenized, and go
//! out as Parquet row groups, so memory stays bounded whatever the input size. The source is
//! read once: a counted vocabulary keeps the texts as word ids on local disk until it is known.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

use arrow::array::{ListBuilder, RecordBatch, StringBuilder, UInt32Array, UInt32Builder};
use arrow::datatypes::{Field, Schema};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::info;

use super::tables;
use crate::data::sources::{Batch, Record, Skipped};
use crate::data::tokenize::{self, Interner, TokenizeConfig, Tokenizer, VocabMode};
use crate::data::wordnet::WordnetStats;
use crate::plan::DataSource;
use crate::plan::kinds::{self, TextRecords};
use crate::storage::{RowGroupWriter, StorageSettings, Store, encode_parquet};
use crate::{Error, Result};

/// Rows per Parquet row group (and per in-memory batch).
const ROWS: usize = 65_536;
/// Texts whose words are looked up together in a counted vocabulary's pass.
const TEXTS: usize = 16;

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

/// Streams the text dataset `source` into `dir/examples.parquet` (and `dir/vocab.parquet` for
/// a counted vocabulary) in `store`, reading the source once; `settings` open the source's store.
///
/// # Errors
/// A data error naming the input (unreadable, or no usable example); an internal error when
/// `source` is not text read from files.
pub async fn write(
    store: &Store,
    dir: &str,
    source: &DataSource,
    settings: &StorageSettings,
) -> Result<TextIngest> {
    match source.read(settings) {
        kinds::Read::Text { tokenize, records } => {
            write_records(store, dir, &source.location(), tokenize, records).await
        }
        kinds::Read::Generated(_) | kinds::Read::Images(_) => {
            Err(Error::Internal("not a text source".into()))
        }
    }
}

/// Streams the one pass `records` opens into `dir/examples.parquet` (and `dir/vocab.parquet`
/// for a counted vocabulary) in `store`; `location` names the input in errors.
pub(crate) async fn write_records(
    store: &Store,
    dir: &str,
    location: &str,
    cfg: TokenizeConfig,
    records: futures::future::BoxFuture<'_, Result<TextRecords>>,
) -> Result<TextIngest> {
    let mut report = TextIngest::default();
    // Tokenizing is the ingest's work: every core, whatever share a point would get.
    let pool = crate::data::ingest_pool()?;
    let TextRecords {
        batches: mut rx,
        wordnet,
    } = records.await?;
    report.wordnet = wordnet;
    match cfg.mode {
        VocabMode::Hashed { buckets } => {
            let tokenizer = Tokenizer::hashed(buckets, cfg.max_tokens);
            report.vocab = tokenizer.vocab_size();
            let mut out = Output::create(store, dir, location, &report, pool)?;
            let mut labels = Labels::default();
            while let Some(chunk) = next_chunk(&mut rx, &mut report).await? {
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
                for (r, (ids, oov)) in chunk.iter().zip(encoded) {
                    report.oov_words += oov as u64;
                    let label = labels.id(&r.label);
                    out.push(label, &r.label, &ids, &mut report).await?;
                }
            }
            out.finish(location, &mut report).await?;
        }
        VocabMode::Counted {
            min_count,
            max_vocab,
        } => {
            // One pass: each thread gives the words of its share of a chunk local ids and
            // counts them; the texts wait on local disk as local ids until the vocabulary is
            // known, then are mapped and written. Counts and ids do not depend on the split.
            let mut interners: Vec<Interner> = (0..pool.current_num_threads())
                .map(|_| Interner::default())
                .collect();
            let mut spill = Spill::new()?;
            let mut labels = Labels::default();
            let mut texts = 0u64;
            while let Some(chunk) = next_chunk(&mut rx, &mut report).await? {
                texts += chunk.len() as u64;
                // Concept ids by first appearance, so in record order; cheap next to tokenizing.
                let label_ids: Vec<u32> = chunk.iter().map(|r| labels.id(&r.label)).collect();
                let part = chunk.len().div_ceil(interners.len()).max(1);
                // Each thread encodes its share's spill records too, so that the one write
                // here is a copy of a few buffers, not a loop over records.
                let encoded: Vec<Vec<u8>> = pool.install(|| {
                    chunk
                        .par_chunks(part)
                        .zip(label_ids.par_chunks(part))
                        .zip(interners.par_iter_mut())
                        .enumerate()
                        .map(|(t, ((records, labels), interner))| {
                            let (mut ids, mut ends, mut bytes) =
                                (Vec::new(), Vec::new(), Vec::new());
                            // A few texts at a time, so that lookups overlap across texts.
                            for (records, labels) in records.chunks(TEXTS).zip(labels.chunks(TEXTS))
                            {
                                ids.clear();
                                ends.clear();
                                interner.add_texts(
                                    records.iter().map(|r| r.text.as_str()),
                                    &mut ids,
                                    &mut ends,
                                );
                                let mut start = 0;
                                for (&end, &label) in ends.iter().zip(labels) {
                                    Spill::encode(t as u32, label, &ids[start..end], &mut bytes);
                                    start = end;
                                }
                            }
                            bytes
                        })
                        .collect()
                });
                for bytes in &encoded {
                    spill.write(bytes)?;
                }
                // Freed on the pool: a chunk is thousands of small strings.
                pool.spawn(move || drop((chunk, encoded)));
            }
            if labels.names.is_empty() {
                return Err(no_examples(location, &report));
            }
            let (vocab, maps, distinct) = tokenize::vocabulary(interners, min_count, max_vocab);
            report.distinct_words = distinct as u64;
            let tokenizer = Tokenizer::counted(vocab, cfg.max_tokens);
            report.vocab = tokenizer.vocab_size();
            if distinct == 0 {
                // Not one word anywhere: every text would be skipped, so say that.
                let skipped = if report.skipped == Skipped::default() {
                    String::new()
                } else {
                    format!(" (and skipped: {})", report.skipped)
                };
                return Err(Error::data(
                    location,
                    format!(
                        "no examples: no word (letters or digits) in the {} read{skipped}",
                        crate::count(texts as usize, "text")
                    ),
                ));
            }
            if report.vocab == 0 {
                return Err(Error::data(
                    location,
                    format!(
                        "the vocabulary is empty: none of the {} occurs tokenize.min-count = \
                         {min_count} times; lower it",
                        crate::count(distinct, "distinct word")
                    ),
                ));
            }
            let mut out = Output::create(store, dir, location, &report, pool)?;
            let mut reader = spill.into_reader()?;
            let mut ids = Vec::new();
            while let Some(block) = reader.next_block()? {
                for (t, label, local) in SpillReader::records(block) {
                    ids.clear();
                    let oov = tokenize::remap(
                        local.chunks_exact(4).map(le_u32),
                        &maps[t as usize],
                        cfg.max_tokens as usize,
                        &mut ids,
                    );
                    report.oov_words += oov as u64;
                    out.push(label, &labels.names[label as usize], &ids, &mut report)
                        .await?;
                }
            }
            out.finish(location, &mut report).await?;
            if let Some(v) = tokenizer.vocabulary() {
                store
                    .put(&format!("{dir}/vocab.parquet"), vocab_bytes(v)?.into())
                    .await?;
            }
        }
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

/// The next chunk of records, or `None` at the end (when the skip counts go into `report`).
async fn next_chunk(
    rx: &mut mpsc::Receiver<Result<Batch>>,
    report: &mut TextIngest,
) -> Result<Option<Vec<Record>>> {
    match rx.recv().await.transpose()? {
        Some(Batch::Records(chunk)) => Ok(Some(chunk)),
        Some(Batch::Done(skipped)) => {
            report.skipped = skipped;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Concept names by first appearance.
#[derive(Default)]
struct Labels {
    ids: hashbrown::HashMap<String, u32>,
    names: Vec<String>,
}

impl Labels {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }
}

/// Texts as local word ids on local disk (the temporary folder, `TMPDIR`), between the pass
/// that counts the vocabulary and the write: 4 bytes a word, deleted when dropped. Each record
/// is its interner, its label, its length and its ids, as little-endian `u32`.
struct Spill {
    file: std::io::BufWriter<std::fs::File>,
}

impl Spill {
    fn new() -> Result<Self> {
        let file = crate::storage::temp_file()?;
        Ok(Self {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// Appends one record, as [`SpillReader::next`] reads it, to `out`.
    fn encode(interner: u32, label: u32, ids: &[u32], out: &mut Vec<u8>) {
        out.reserve(4 * (3 + ids.len()));
        for x in [interner, label, ids.len() as u32].iter().chain(ids) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    /// Appends records made by [`Spill::encode`].
    fn write(&mut self, records: &[u8]) -> Result<()> {
        self.file.write_all(records).map_err(spill_error)
    }

    fn into_reader(self) -> Result<SpillReader> {
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| spill_error(e.into_error()))?;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(spill_error)?;
        Ok(SpillReader {
            file,
            buf: Vec::new(),
            used: 0,
        })
    }
}

/// Bytes of spilled records read at a time.
const SPILL_BLOCK: usize = 4 << 20;

/// Reads [`Spill`]'s records back, a block of whole records at a time: one read per 4 MiB, where
/// two reads per record through a buffer cost a copy and a call each.
struct SpillReader {
    file: std::fs::File,
    /// Records read; `buf[..used]` went out with the last block.
    buf: Vec<u8>,
    used: usize,
}

impl SpillReader {
    /// The next whole records, as [`Spill::encode`] wrote them, or `None` at the end.
    fn next_block(&mut self) -> Result<Option<&[u8]>> {
        self.buf.drain(..self.used);
        let mut want = SPILL_BLOCK;
        loop {
            let have = self.buf.len();
            if have < want {
                self.buf.resize(want, 0);
                let n = read_full(&mut self.file, &mut self.buf[have..]).map_err(spill_error)?;
                self.buf.truncate(have + n);
            }
            let whole = whole_records(&self.buf);
            let ended = self.buf.len() < want;
            if whole > 0 || ended {
                if whole == 0 && !self.buf.is_empty() {
                    return Err(Error::Internal("the spilled texts end mid-record".into()));
                }
                self.used = whole;
                return Ok((whole > 0).then_some(&self.buf[..whole]));
            }
            // One record longer than the block: read on until it is whole.
            want *= 2;
        }
    }

    /// The records of `block` (whole records): interner, label and local ids, little-endian.
    fn records(block: &[u8]) -> impl Iterator<Item = (u32, u32, &[u8])> {
        let mut at = 0;
        std::iter::from_fn(move || {
            let head = block.get(at..at + 12)?;
            let end = at + 12 + 4 * le_u32(&head[8..]) as usize;
            let record = (le_u32(head), le_u32(&head[4..]), &block[at + 12..end]);
            at = end;
            Some(record)
        })
    }
}

/// The length of the whole records at the start of `bytes`.
fn whole_records(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 12) {
        let end = at + 12 + 4 * le_u32(&head[8..]) as usize;
        if end > bytes.len() {
            break;
        }
        at = end;
    }
    at
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

fn spill_error(e: std::io::Error) -> Error {
    crate::storage::temp_file_error(e)
}

/// A label with no example kept yet.
const UNSEEN: u32 = u32::MAX;

/// `dir/examples.parquet` being written, a row group at a time.
struct Output<'p> {
    writer: RowGroupWriter,
    /// Encodes row groups.
    pool: &'p rayon::ThreadPool,
    schema: Arc<Schema>,
    b: Builders,
    /// Concept ids by first appearance among the examples kept, by the caller's label id
    /// ([`UNSEEN`] before the first): an index per row, where a map from the name cost a hash
    /// and a string compare.
    labels: Vec<u32>,
    /// Concepts among the examples kept.
    concepts: u32,
    next_id: u32,
}

impl<'p> Output<'p> {
    fn create(
        store: &Store,
        dir: &str,
        location: &str,
        report: &TextIngest,
        pool: &'p rayon::ThreadPool,
    ) -> Result<Self> {
        if report.vocab == 0 {
            return Err(Error::data(location, "the vocabulary is empty"));
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
        let writer = RowGroupWriter::create(
            store,
            &rel,
            Arc::clone(&schema),
            props,
            pool.current_num_threads(),
        )?;
        Ok(Self {
            writer,
            pool,
            schema,
            b: Builders::new(),
            labels: Vec::new(),
            concepts: 0,
            next_id: 0,
        })
    }

    /// Appends one example of concept `name`, which the caller numbers `label` (one number
    /// per name, in any order); a text with no tokens is counted in `report` and skipped.
    async fn push(
        &mut self,
        label: u32,
        name: &str,
        ids: &[u32],
        report: &mut TextIngest,
    ) -> Result<()> {
        if ids.is_empty() {
            report.no_tokens += 1;
            return Ok(());
        }
        let slot = label as usize;
        if slot >= self.labels.len() {
            self.labels.resize(slot + 1, UNSEEN);
        }
        if self.labels[slot] == UNSEEN {
            self.labels[slot] = self.concepts;
            self.concepts += 1;
        }
        self.b.labels.append_value(self.labels[slot]);
        self.b.concepts.append_value(name);
        self.b.tokens.values().append_slice(ids);
        self.b.tokens.append(true);
        report.tokens += ids.len() as u64;
        self.b.rows += 1;
        if self.b.rows == ROWS {
            let batch = self.b.finish(&self.schema, self.next_id)?;
            self.writer.write(batch, self.pool).await?;
            self.next_id += ROWS as u32;
        }
        Ok(())
    }

    /// Writes the last row group and completes the file; with no example at all, no file
    /// appears and the error names the input.
    async fn finish(mut self, location: &str, report: &mut TextIngest) -> Result<()> {
        if self.b.rows > 0 {
            let rows = self.b.rows as u32;
            let batch = self.b.finish(&self.schema, self.next_id)?;
            self.writer.write(batch, self.pool).await?;
            self.next_id += rows;
        }
        report.examples = u64::from(self.next_id);
        report.concepts = u64::from(self.concepts);
        if report.examples == 0 {
            // Dropped unfinished: the upload is never completed, so no file appears.
            drop(self.writer);
            return Err(no_examples(location, report));
        }
        self.writer.close(self.pool).await
    }
}

/// The error of an input with no usable example, naming the user's input and what was skipped.
fn no_examples(location: &str, report: &TextIngest) -> Error {
    let mut why = Vec::new();
    if report.skipped != Skipped::default() {
        why.push(report.skipped.to_string());
    }
    if report.no_tokens > 0 {
        why.push(format!(
            "{} with no word in the vocabulary",
            crate::count(report.no_tokens as usize, "text")
        ));
    }
    let message = if why.is_empty() {
        "no examples: the input holds no records".to_owned()
    } else {
        format!("no examples: every record was skipped ({})", why.join(", "))
    };
    Error::data(location, message)
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
