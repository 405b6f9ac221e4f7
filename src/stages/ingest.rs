//! Ingest: a dataset source becomes `examples.parquet`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, ListArray, ListBuilder, RecordBatch, StringArray,
    UInt32Array, UInt32Builder,
};
use arrow::datatypes::Schema;
use tracing::{info, warn};

use super::{Manifest, layout, tables};
use crate::data::{Examples, Features};
use crate::plan::DatasetPlan;
use crate::plan::kinds::Read;
use crate::storage::{StorageSettings, Store, encode_parquet, read_parquet};
use crate::{Error, Result};

/// An ingested dataset in memory.
#[derive(Debug)]
pub struct Ingested {
    /// The examples.
    pub examples: Examples,
    /// blake3 of the Parquet file.
    pub data_hash: String,
}

/// Converts examples to the `examples` table.
pub fn to_batch(ex: &Examples) -> Result<RecordBatch> {
    let n = ex.len() as u32;
    let ids = UInt32Array::from_iter_values(0..n);
    let labels = UInt32Array::from(ex.labels.clone());
    let names =
        StringArray::from_iter_values(ex.labels.iter().map(|&l| &ex.concept_names[l as usize]));
    let split = StringArray::from(vec![None::<&str>; ex.len()]);
    let (feature, mut meta): (ArrayRef, HashMap<String, String>) = match &ex.features {
        Features::Tokens { vocab, seqs } => {
            let mut b = ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(
                arrow::datatypes::Field::new("item", arrow::datatypes::DataType::UInt32, false),
            ));
            for s in seqs {
                b.values().append_slice(s);
                b.append(true);
            }
            (
                Arc::new(b.finish()),
                HashMap::from([("negsweep.vocab".into(), vocab.to_string())]),
            )
        }
        Features::Pixels {
            side,
            channels,
            data,
        } => {
            let per = (side * side * channels) as usize;
            let arr = FixedSizeBinaryArray::try_from_iter(data.chunks(per))?;
            (
                Arc::new(arr),
                HashMap::from([
                    ("negsweep.side".into(), side.to_string()),
                    ("negsweep.channels".into(), channels.to_string()),
                ]),
            )
        }
    };
    let text = matches!(ex.features, Features::Tokens { .. });
    meta.insert(
        "negsweep.modality".into(),
        if text { "text" } else { "image" }.into(),
    );
    let per = match &ex.features {
        Features::Pixels { side, channels, .. } => (side * side * channels) as i32,
        Features::Tokens { .. } => 0,
    };
    let schema = Arc::new(Schema::new_with_metadata(
        tables::examples(text, per).fields().clone(),
        meta,
    ));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(ids),
            Arc::new(labels),
            Arc::new(names),
            Arc::new(split),
            feature,
        ],
    )?)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, location: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            Error::data(
                location,
                format!("column `{name}` is missing or has the wrong type"),
            )
        })
}

/// Reads an `examples` table back.
pub async fn load(store: &Store, rel: &str) -> Result<Examples> {
    let location = store.display(rel);
    let (schema, batches) = read_parquet(store, rel).await?;
    let meta = schema.metadata();
    let mut labels = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut seqs = Vec::new();
    let mut pixels = Vec::new();
    for batch in &batches {
        let l = column::<UInt32Array>(batch, "label", &location)?;
        let c = column::<StringArray>(batch, "concept", &location)?;
        for i in 0..l.len() {
            let label = l.value(i) as usize;
            if names.len() <= label {
                names.resize(label + 1, String::new());
            }
            if names[label].is_empty() {
                names[label] = c.value(i).to_owned();
            }
            labels.push(l.value(i));
        }
        if let Some(t) = batch.column_by_name("tokens") {
            let t = t
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(|| Error::data(&location, "column `tokens` is not a list"))?;
            for i in 0..t.len() {
                let v = t.value(i);
                let v = v.as_any().downcast_ref::<UInt32Array>().ok_or_else(|| {
                    Error::data(&location, "column `tokens` is not a list of u32")
                })?;
                seqs.push(v.values().to_vec());
            }
        } else {
            let p = column::<FixedSizeBinaryArray>(batch, "pixels", &location)?;
            pixels.extend_from_slice(p.value_data());
        }
    }
    let meta_u32 = |key: &str| -> Result<u32> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::data(&location, format!("schema metadata `{key}` is missing")))
    };
    let features = match meta.get("negsweep.modality").map(String::as_str) {
        Some("text") => Features::Tokens {
            vocab: meta_u32("negsweep.vocab")?,
            seqs,
        },
        Some("image") => Features::Pixels {
            side: meta_u32("negsweep.side")?,
            // Files from before colour images were supported are grey.
            channels: meta_u32("negsweep.channels").unwrap_or(1),
            data: pixels,
        },
        other => {
            return Err(Error::data(
                &location,
                format!("unknown modality {other:?}"),
            ));
        }
    };
    Ok(Examples {
        labels,
        concept_names: names,
        features,
    })
}

/// Ingests `ds` unless a complete copy is already stored; returns it either way. `settings`
/// open the stores `ds` is read from.
pub async fn run(store: &Store, ds: &DatasetPlan, settings: &StorageSettings) -> Result<Ingested> {
    let dir = layout::dataset_dir(ds);
    let manifest = Manifest::read(store, &dir).await?;
    if manifest.is_some() {
        return build(store, ds, manifest, settings).await;
    }
    // Not built yet: one process (of all shards) builds it, the others wait and load what the
    // builder wrote, so the manifest is read again under the lock.
    let lock = super::lock::BuildLock::acquire(store, &dir).await?;
    let built = match Manifest::read(store, &dir).await {
        Ok(manifest) => build(store, ds, manifest, settings).await,
        Err(e) => Err(e),
    };
    lock.release().await?;
    built
}

/// Loads the dataset `manifest` describes, or ingests it when there is none or the stored copy
/// is damaged.
async fn build(
    store: &Store,
    ds: &DatasetPlan,
    manifest: Option<Manifest>,
    settings: &StorageSettings,
) -> Result<Ingested> {
    let dir = layout::dataset_dir(ds);
    let rel = format!("{dir}/examples.parquet");
    if let Some(m) = manifest {
        match load(store, &rel).await {
            Ok(examples) => {
                return Ok(Ingested {
                    examples,
                    data_hash: m.data_hash,
                });
            }
            // Ingest is deterministic: a damaged copy is rewritten, not fatal.
            Err(e @ Error::Data { .. }) => warn!(error = %e, "re-ingesting a damaged dataset"),
            Err(e) => return Err(e),
        }
    }
    info!(dataset = %ds.name, "ingesting");
    // Text read from files streams through its own writer; everything else is built in memory.
    let examples_rel = rel.as_str();
    let in_memory = |examples: Examples| async move {
        let batch = to_batch(&examples)?;
        let bytes = encode_parquet(batch.schema(), &[batch])?;
        let data_hash = super::data_hash(&bytes);
        store.put(examples_rel, bytes.into()).await?;
        Ok::<_, Error>((examples, data_hash))
    };
    let (examples, data_hash) = match ds.source.read(settings) {
        Read::Generated(generate) => in_memory(generate()).await?,
        Read::Images(reading) => {
            let (examples, report) = reading.await?;
            report.log();
            let json = serde_json::to_vec_pretty(&report).expect("plain data serialises");
            store
                .put(&format!("{dir}/ingest.json"), json.into())
                .await?;
            in_memory(examples).await?
        }
        Read::Text { tokenize, records } => {
            let location = ds.source.location();
            let report =
                super::ingest_text::write_records(store, &dir, &location, tokenize, records)
                    .await?;
            let json = serde_json::to_vec_pretty(&report).expect("plain data serialises");
            store
                .put(&format!("{dir}/ingest.json"), json.into())
                .await?;
            let bytes = store
                .get(&rel)
                .await?
                .ok_or_else(|| Error::data(store.display(&rel), "vanished after writing"))?;
            (load(store, &rel).await?, super::data_hash(&bytes))
        }
    };
    Manifest {
        stage: "ingest".into(),
        key: ds.key.clone(),
        data_hash: data_hash.clone(),
        k_max: 0,
        passes: 0,
        version: crate::VERSION.into(),
    }
    .write(store, &dir)
    .await?;
    Ok(Ingested {
        examples,
        data_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    #[tokio::test]
    async fn text_and_images_round_trip_through_parquet() {
        let store = Store::open_str("memory://ingest-test/", &Default::default()).unwrap();
        for ex in [
            synthetic::text(3, 4, 20, 5, 0.3, 1),
            synthetic::image(3, 4, 8, 0.3, 1),
        ] {
            let batch = to_batch(&ex).unwrap();
            let bytes = encode_parquet(batch.schema(), &[batch]).unwrap();
            store.put("e.parquet", bytes.into()).await.unwrap();
            assert_eq!(load(&store, "e.parquet").await.unwrap(), ex);
        }
    }
}
