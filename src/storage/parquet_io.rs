//! Parquet and Arrow IPC through the store.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::FileWriter;
use bytes::Bytes;
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::Store;
use crate::{Error, Result};

/// A Parquet failure at `location`: a failure of the store itself keeps its storage kind (and
/// exit code), since a store that cannot serve a request holds no corrupt file; anything else is
/// a data error, `what` failed.
pub(crate) fn parquet_error(location: &str, what: &str, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<object_store::Error>() {
                Ok(store_error) => Error::storage(location, *store_error),
                Err(other) => Error::data(location, format!("{what}: External: {other}")),
            }
        }
        e => Error::data(location, format!("{what}: {e}")),
    }
}

/// Encodes `batches` (sharing `schema`) as Parquet bytes (snappy).
pub fn encode_parquet(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(buf)
}

/// Writes `batches` (sharing `schema`) as one Parquet object at `rel`, atomically.
pub async fn write_parquet(
    store: &Store,
    rel: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let buf = encode_parquet(schema, batches)?;
    store.put(rel, Bytes::from(buf)).await
}

/// Reads the whole Parquet object at `rel`. A missing or corrupt file is a data error naming it.
pub async fn read_parquet(store: &Store, rel: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    read(store, rel, None).await
}

/// Reads only the named top-level `columns` of the Parquet object at `rel` (ranged reads of
/// their column chunks). A missing column is a data error listing the file's columns.
pub async fn read_parquet_columns(
    store: &Store,
    rel: &str,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    Ok(read(store, rel, Some(columns)).await?.1)
}

async fn read(
    store: &Store,
    rel: &str,
    columns: Option<&[&str]>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let location = store.display(rel);
    let reader =
        super::reader::ObjectReader::new(Arc::clone(store.object_store()), store.path(rel));
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| parquet_error(&location, "cannot open Parquet file", e))?;
    let schema = Arc::clone(builder.schema());
    if let Some(columns) = columns {
        let indices = columns
            .iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    Error::data(
                        &location,
                        format!("no `{c}` column (columns: {})", names.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
        builder = builder.with_projection(mask);
    }
    // The decoder reserves a whole batch per column: a one-row result file read with the
    // default 1,024-row batches would hold a thousand rows' buffers.
    let rows = builder.metadata().file_metadata().num_rows();
    let builder = builder.with_batch_size(usize::try_from(rows).unwrap_or(1).clamp(1, 65_536));
    let batches = builder
        .build()
        .map_err(|e| parquet_error(&location, "cannot read Parquet file", e))?
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| parquet_error(&location, "corrupt Parquet data", e))?;
    Ok((schema, batches))
}

/// Encodes `batches` as Arrow IPC file bytes.
pub fn encode_ipc(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut writer = FileWriter::try_new(&mut buf, &schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[tokio::test]
    async fn parquet_round_trip_and_corrupt_file() {
        let store = Store::open_str("memory://pq-test/", &Default::default()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap();
        write_parquet(&store, "t.parquet", schema, std::slice::from_ref(&batch))
            .await
            .unwrap();
        let (_, back) = read_parquet(&store, "t.parquet").await.unwrap();
        assert_eq!(back, vec![batch]);

        store
            .put("bad.parquet", Bytes::from_static(b"not parquet at all"))
            .await
            .unwrap();
        let err = read_parquet(&store, "bad.parquet")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.parquet") && err.contains("Parquet"),
            "{err}"
        );
        let err = read_parquet(&store, "missing.parquet")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.parquet"), "{err}");
    }
}
