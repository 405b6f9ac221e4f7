//! Hugging Face image datasets stored as Parquet: `image` is struct<bytes: binary, path:
//! string>, `label` an integer, and the class names sit in the `huggingface` schema metadata
//! (`info.features.<label>.names`). Read batch by batch, decoded in parallel.

use arrow::array::{Array, AsArray, BinaryArray, StructArray};
use futures::TryStreamExt;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};

use crate::data::image_files::{self, Color};
use crate::data::{Examples, Features};
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// Class names from the `huggingface` metadata, if present.
fn class_names(
    meta: &std::collections::HashMap<String, String>,
    label: &str,
) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(meta.get("huggingface")?).ok()?;
    let names = v
        .pointer(&format!("/info/features/{label}/names"))?
        .as_array()?;
    names
        .iter()
        .map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// Reads the file at `url`, opening its store with `settings`.
pub async fn read(
    url: &str,
    image_column: Option<&str>,
    label_column: &str,
    side: u32,
    color: Color,
    settings: &StorageSettings,
) -> Result<Examples> {
    let (store, rel) = Store::open_file(url, settings)?;
    let location = store.display(&rel);
    let bad =
        |e: parquet::errors::ParquetError| crate::storage::parquet_error(&location, "Parquet", e);
    let builder = ParquetRecordBatchStreamBuilder::new(store.parquet_reader(&rel))
        .await
        .map_err(bad)?;
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let image = image_column
        .map(str::to_owned)
        .or_else(|| {
            ["image", "img"]
                .iter()
                .find(|c| names.contains(c))
                .map(|c| (*c).to_owned())
        })
        .ok_or_else(|| {
            Error::data(
                &location,
                format!("no `image` column (columns: {})", names.join(", ")),
            )
        })?;
    let index = |c: &str| {
        schema.index_of(c).map_err(|_| {
            Error::data(
                &location,
                format!("no `{c}` column (columns: {})", names.join(", ")),
            )
        })
    };
    let (ii, li) = (index(&image)?, index(label_column)?);
    let classes = class_names(schema.metadata(), label_column);
    let mask = ProjectionMask::roots(builder.parquet_schema(), [ii, li]);
    let mut batches = builder
        .with_projection(mask)
        .with_batch_size(256)
        .build()
        .map_err(bad)?;
    let mut ex = Examples {
        labels: Vec::new(),
        concept_names: classes.clone().unwrap_or_default(),
        features: Features::Pixels {
            side,
            channels: color.channels(),
            data: Vec::new(),
        },
    };
    let mut row = 0usize;
    while let Some(batch) = batches.try_next().await.map_err(bad)? {
        let images: &StructArray = batch
            .column_by_name(&image)
            .and_then(|c| c.as_struct_opt())
            .ok_or_else(|| {
                Error::data(&location, format!("`{image}` is not struct<bytes, path>"))
            })?;
        let bytes: &BinaryArray = images
            .column_by_name("bytes")
            .and_then(|c| c.as_binary_opt())
            .ok_or_else(|| {
                Error::data(&location, format!("`{image}` has no binary `bytes` field"))
            })?;
        // Class indices: integers, or floats holding whole numbers (never truncated).
        let column = batch.column_by_name(label_column).expect("projected");
        if !(column.data_type().is_integer() || column.data_type().is_floating()) {
            return Err(Error::data(
                &location,
                format!(
                    "label column `{label_column}` has type {}; an image label is a class \
                     index: an integer, or a float holding a whole number",
                    column.data_type()
                ),
            ));
        }
        let labels: Vec<Option<i64>> = crate::data::labels::column(column)
            .map_err(|(i, m)| {
                Error::data(
                    &location,
                    format!("record {}: label `{label_column}` {m}", row + i + 1),
                )
            })?
            .into_iter()
            .map(|l| l.and_then(|l| l.parse().ok()))
            .collect();
        let first = row;
        let encoded: Vec<Option<Vec<u8>>> = (0..batch.num_rows())
            .map(|i| bytes.is_valid(i).then(|| bytes.value(i).to_vec()))
            .collect();
        let at = location.clone();
        let decoded: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            encoded
                .par_iter()
                .enumerate()
                .map(|(i, b)| {
                    let record = format!("{at} (record {})", first + i + 1);
                    let b = b
                        .as_ref()
                        .ok_or_else(|| Error::data(&record, "no image bytes"))?;
                    image_files::decode(b, None, side, color, &record)
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("image decoding panicked: {e}")))??;
        let Features::Pixels { data, .. } = &mut ex.features else {
            unreachable!("built as pixels")
        };
        for (i, px) in decoded.into_iter().enumerate() {
            let Some(label) = labels[i].and_then(|l| u32::try_from(l).ok()) else {
                return Err(Error::data(
                    &location,
                    format!(
                        "record {}: label `{label_column}` is null, negative or too large for \
                         a class index",
                        first + i + 1
                    ),
                ));
            };
            if ex.concept_names.len() <= label as usize {
                if classes.is_some() {
                    return Err(Error::data(
                        &location,
                        format!("record {}: label {label} has no class name", first + i + 1),
                    ));
                }
                ex.concept_names
                    .extend((ex.concept_names.len()..=label as usize).map(|c| c.to_string()));
            }
            ex.labels.push(label);
            data.extend_from_slice(&px);
        }
        row += batch.num_rows();
    }
    if ex.labels.is_empty() {
        return Err(Error::data(&location, "no records"));
    }
    Ok(ex)
}
