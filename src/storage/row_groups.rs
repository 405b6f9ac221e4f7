//! A Parquet file written to a store with its row groups encoded in parallel.
//!
//! parquet's `AsyncArrowWriter` encodes one row group at a time on the calling thread; for the
//! text ingest that was a third of its time on one core. Here a few row groups are encoded at
//! once on a rayon pool (one set of column writers each, as parquet's `ArrowColumnWriter`
//! example does), then appended in order, so the bytes are exactly those `AsyncArrowWriter`
//! writes with the same properties. They are encoded while the caller builds the next ones.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use super::Store;
use crate::{Error, Result};

/// Row groups encoded on the pool: their column chunks, in order.
type Encoded = Vec<Result<Vec<ArrowColumnChunk>>>;

/// Writes `rel` in a store one row group per [`RowGroupWriter::write`]d batch.
pub struct RowGroupWriter {
    file: SerializedFileWriter<Vec<u8>>,
    factory: Arc<ArrowRowGroupWriterFactory>,
    sink: BufWriter,
    /// Batches waiting to be encoded together.
    pending: Vec<RecordBatch>,
    /// How many are encoded at once: the pool's threads.
    width: usize,
    /// The row groups being encoded while the caller builds the next ones.
    in_flight: Option<tokio::sync::oneshot::Receiver<Encoded>>,
    /// The index of the next row group handed to the pool.
    next_index: usize,
}

impl RowGroupWriter {
    /// Starts `rel` in `store` with `schema` and `props`; `width` row groups are encoded at once.
    ///
    /// # Errors
    /// A Parquet error when the schema cannot be written.
    pub fn create(
        store: &Store,
        rel: &str,
        schema: SchemaRef,
        props: WriterProperties,
        width: usize,
    ) -> Result<Self> {
        // Built as `AsyncArrowWriter` builds its inner writer, so the header, the Arrow schema
        // in the footer and every page are the same.
        let (file, factory) =
            ArrowWriter::try_new(Vec::new(), schema, Some(props))?.into_serialized_writer()?;
        Ok(Self {
            file,
            factory: Arc::new(factory),
            sink: BufWriter::new(Arc::clone(store.object_store()), store.path(rel)),
            pending: Vec::new(),
            width: width.max(1),
            in_flight: None,
            next_index: 0,
        })
    }

    /// Adds `batch` as one row group; hands the waiting ones to the pool when `width` are
    /// waiting, after appending and uploading those handed over before.
    ///
    /// # Errors
    /// Parquet encoding and storage errors.
    pub async fn write(&mut self, batch: RecordBatch, pool: &rayon::ThreadPool) -> Result<()> {
        self.pending.push(batch);
        if self.pending.len() >= self.width {
            self.flush(pool).await?;
        }
        Ok(())
    }

    /// Appends the row groups in flight, then starts encoding the waiting ones, so that they
    /// are encoded while the caller builds the next: the two overlap.
    async fn flush(&mut self, pool: &rayon::ThreadPool) -> Result<()> {
        self.land().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        let first = self.next_index;
        self.next_index += batches.len();
        let factory = Arc::clone(&self.factory);
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            let encoded = batches
                .par_iter()
                .enumerate()
                .map(|(i, batch)| encode(&factory, first + i, batch))
                .collect();
            // The writer may have been dropped unfinished (its caller failed): nothing to do.
            let _ = tx.send(encoded);
        });
        self.in_flight = Some(rx);
        Ok(())
    }

    /// Appends the row groups in flight, in order, and uploads them.
    async fn land(&mut self) -> Result<()> {
        let Some(rx) = self.in_flight.take() else {
            return Ok(());
        };
        let encoded = rx
            .await
            .map_err(|_| Error::Internal("a row group's encoding panicked".into()))?;
        for chunks in encoded {
            let mut row_group = self.file.next_row_group()?;
            for chunk in chunks? {
                chunk.append_to_row_group(&mut row_group)?;
            }
            row_group.close()?;
        }
        self.upload().await
    }

    /// Sends what the file writer has produced so far to the store.
    async fn upload(&mut self) -> Result<()> {
        // Through parquet's own `AsyncFileWriter`, so a failing store reads as it always has.
        let bytes = std::mem::take(self.file.inner_mut());
        Ok(self.sink.write(bytes.into()).await?)
    }

    /// Encodes what is waiting, writes the footer and completes the upload.
    ///
    /// # Errors
    /// Parquet encoding and storage errors.
    pub async fn close(mut self, pool: &rayon::ThreadPool) -> Result<()> {
        self.flush(pool).await?;
        self.land().await?;
        self.file.finish()?;
        self.upload().await?;
        Ok(self.sink.complete().await?)
    }
}

/// One row group's column chunks, encoded on the calling thread.
fn encode(
    factory: &ArrowRowGroupWriterFactory,
    index: usize,
    batch: &RecordBatch,
) -> Result<Vec<ArrowColumnChunk>> {
    let mut writers = factory.create_column_writers(index)?;
    let mut next = writers.iter_mut();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            next.next()
                .ok_or_else(|| Error::Internal("fewer column writers than leaves".into()))?
                .write(&leaf)?;
        }
    }
    Ok(writers
        .into_iter()
        .map(|w| w.close())
        .collect::<std::result::Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use arrow::array::{ListBuilder, StringArray, UInt32Array, UInt32Builder};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::AsyncArrowWriter;
    use parquet::basic::Compression;

    use super::*;

    fn batch(schema: &SchemaRef, first: u32, rows: u32) -> RecordBatch {
        let mut tokens = ListBuilder::new(UInt32Builder::new());
        for r in first..first + rows {
            tokens
                .values()
                .append_slice(&[r % 7, r % 13, r * 31 % 1000]);
            tokens.append(r % 5 != 0);
        }
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(UInt32Array::from_iter_values(first..first + rows)),
                Arc::new(StringArray::from_iter_values(
                    (first..first + rows).map(|r| format!("concept {}", r % 17)),
                )),
                Arc::new(tokens.finish()),
            ],
        )
        .unwrap()
    }

    /// Row groups encoded several at a time give the bytes `AsyncArrowWriter` gives, whatever
    /// the number at once and however the last group is cut.
    #[tokio::test]
    async fn bytes_are_those_of_the_async_arrow_writer() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt32, false),
            Field::new("concept", DataType::Utf8, false),
            Field::new(
                "tokens",
                DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
                true,
            ),
        ]));
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(1000))
                .build()
        };
        let store = Store::open_str("memory://row-groups", &Default::default()).unwrap();
        let sizes = [1000, 1000, 1000, 1000, 1000, 1000, 1000, 321];
        let mut expected =
            AsyncArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props())).unwrap();
        let mut first = 0;
        for &rows in &sizes {
            expected.write(&batch(&schema, first, rows)).await.unwrap();
            first += rows;
        }
        let expected = {
            expected.flush().await.unwrap();
            let mut w = expected;
            w.finish().await.unwrap();
            w.into_inner()
        };
        for width in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let rel = format!("w{width}.parquet");
            let mut w =
                RowGroupWriter::create(&store, &rel, Arc::clone(&schema), props(), width).unwrap();
            let mut first = 0;
            for &rows in &sizes {
                w.write(batch(&schema, first, rows), &pool).await.unwrap();
                first += rows;
            }
            w.close(&pool).await.unwrap();
            let got = store.get(&rel).await.unwrap().unwrap();
            assert_eq!(got.len(), expected.len(), "width {width}");
            assert!(got == expected[..], "width {width}: bytes differ");
        }
    }
}
