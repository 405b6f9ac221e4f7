//! Ingest: a dataset source becomes `examples.parquet`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, ListArray, ListBuilder, RecordBatch, StringArray,
    UInt32Array, UInt32Builder,
};
use arrow::datatypes::Schema;
use futures::{StreamExt, TryStreamExt};
use tracing::{info, warn};

use super::{Manifest, layout, tables};
use crate::data::{Examples, Features, glyphs, image_files, images, synthetic};
use crate::plan::{DataSource, DatasetPlan, Modality};
use crate::storage::{Store, encode_parquet, read_parquet};
use crate::{Error, Result};

/// An ingested dataset in memory.
#[derive(Debug)]
pub struct Ingested {
    /// The examples.
    pub examples: Examples,
    /// blake3 of the Parquet file.
    pub data_hash: String,
}

/// Reads one whole object named by a URL, gzip undone.
async fn fetch(url: &str) -> Result<(Vec<u8>, String)> {
    let (store, rel) = Store::open_file(url)?;
    let location = store.display(&rel);
    let bytes = store
        .get(&rel)
        .await?
        .ok_or_else(|| Error::data(&location, "no such file"))?;
    Ok((images::gunzip(&bytes, &location)?, location))
}

/// Decodes an image dataset read from files.
async fn read_images(source: &DataSource) -> Result<Examples> {
    match source {
        DataSource::Digits { url } => {
            let (bytes, location) = fetch(url).await?;
            images::digits_csv(&bytes, &location)
        }
        DataSource::Idx {
            images: i,
            labels: l,
            classes,
        } => {
            let ((ib, il), (lb, ll)) = (fetch(i).await?, fetch(l).await?);
            let names: Option<Vec<&str>> = classes
                .as_ref()
                .map(|c| c.iter().map(String::as_str).collect());
            images::idx(&ib, &lb, (&il, &ll), names.as_deref())
        }
        DataSource::Cifar { files, labels } => {
            let classes = match labels {
                images::CifarLabels::Ten => {
                    images::CIFAR10.iter().map(|s| (*s).to_owned()).collect()
                }
                images::CifarLabels::Coarse => (0..20).map(|c| format!("coarse-{c}")).collect(),
                images::CifarLabels::Fine => (0..100).map(|c| format!("fine-{c}")).collect(),
            };
            let mut ex = Examples {
                labels: Vec::new(),
                concept_names: classes,
                features: Features::Pixels {
                    side: 32,
                    channels: 3,
                    data: Vec::new(),
                },
            };
            for f in files {
                let (bytes, location) = fetch(f).await?;
                images::cifar(&bytes, *labels, &location, &mut ex)?;
            }
            Ok(ex)
        }
        DataSource::Glyphs { url, charset, size } => {
            let store = Store::open_str(url)?;
            let mut files: Vec<String> = store
                .list("")
                .await?
                .into_iter()
                .map(|(rel, _)| rel)
                .filter(|r| {
                    let r = r.to_ascii_lowercase();
                    r.ends_with(".ttf") || r.ends_with(".otf")
                })
                .collect();
            files.sort();
            let mut fonts = Vec::with_capacity(files.len());
            for rel in files {
                if let Some(bytes) = store.get(&rel).await? {
                    fonts.push((rel, bytes.to_vec()));
                }
            }
            let (chars, side) = (charset.chars(), *size);
            let (ex, stats) =
                tokio::task::spawn_blocking(move || glyphs::render(&fonts, &chars, side))
                    .await
                    .map_err(|e| Error::Internal(format!("glyph rendering panicked: {e}")))?;
            info!(
                faces = stats.faces,
                unreadable = stats.unreadable,
                incomplete = stats.incomplete,
                "glyphs rendered (fonts lacking a character of the set are skipped)"
            );
            if stats.faces == 0 {
                return Err(Error::data(
                    store.url(),
                    format!("no font here covers every character of `{charset:?}`"),
                ));
            }
            Ok(ex)
        }
        DataSource::ImageFolder { url, size, color } => {
            image_folder(&Store::open_str(url)?, *size, *color).await
        }
        DataSource::HfImages {
            url,
            image_column,
            label_column,
            size,
            color,
        } => {
            super::ingest_hf::read(url, image_column.as_deref(), label_column, *size, *color).await
        }
        _ => Err(Error::Internal("not an image file source".into())),
    }
}

/// Reads `<class>/<file>.{png,jpg,jpeg}` under `store`, 256 files at a time: fetched
/// concurrently, decoded in parallel, appended in path order.
pub async fn image_folder(store: &Store, side: u32, color: image_files::Color) -> Result<Examples> {
    let mut files: Vec<(String, String)> = store
        .list("")
        .await?
        .into_iter()
        .filter_map(|(rel, _)| {
            let (class, name) = rel.split_once('/')?;
            image_files::is_image(name).then(|| (class.to_owned(), rel.clone()))
        })
        .collect();
    if files.is_empty() {
        return Err(Error::data(
            store.url(),
            "no <class>/<file>.png|jpg images here",
        ));
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let mut names: Vec<String> = files.iter().map(|(c, _)| c.clone()).collect();
    names.dedup();
    let mut ex = Examples {
        labels: Vec::with_capacity(files.len()),
        concept_names: names.clone(),
        features: Features::Pixels {
            side,
            channels: color.channels(),
            data: Vec::new(),
        },
    };
    for chunk in files.chunks(256) {
        let fetched: Vec<(String, bytes::Bytes)> = futures::stream::iter(chunk)
            .map(|(_, rel)| async move {
                let bytes = store
                    .get(rel)
                    .await?
                    .ok_or_else(|| Error::data(store.display(rel), "vanished while reading"))?;
                Ok::<_, Error>((store.display(rel), bytes))
            })
            .buffered(16)
            .try_collect()
            .await?;
        let decoded: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            fetched
                .par_iter()
                .map(|(at, b)| image_files::decode(b, side, color, at))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("image decoding panicked: {e}")))??;
        let Features::Pixels { data, .. } = &mut ex.features else {
            unreachable!("built as pixels")
        };
        for ((class, _), px) in chunk.iter().zip(decoded) {
            // Files are sorted by path, so the class names are sorted and distinct.
            let label = names.binary_search(class).expect("every class is named");
            ex.labels.push(label as u32);
            data.extend_from_slice(&px);
        }
    }
    Ok(ex)
}

fn generate(source: &DataSource) -> Examples {
    match *source {
        DataSource::SyntheticText {
            concepts,
            examples_per_concept,
            vocab,
            length,
            difficulty,
            seed,
        } => synthetic::text(
            concepts,
            examples_per_concept,
            vocab,
            length,
            difficulty,
            seed,
        ),
        DataSource::SyntheticImage {
            concepts,
            examples_per_concept,
            size,
            difficulty,
            seed,
        } => synthetic::image(concepts, examples_per_concept, size, difficulty, seed),
        _ => unreachable!("read, not generated: see `DataSource::is_generated`"),
    }
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

/// Ingests `ds` unless a complete copy is already stored; returns it either way.
pub async fn run(store: &Store, ds: &DatasetPlan) -> Result<Ingested> {
    let dir = layout::dataset_dir(ds);
    let manifest = Manifest::read(store, &dir).await?;
    if manifest.is_some() {
        return build(store, ds, manifest).await;
    }
    // Not built yet: one process (of all shards) builds it, the others wait and load what the
    // builder wrote, so the manifest is read again under the lock.
    let lock = super::lock::BuildLock::acquire(store, &dir).await?;
    let built = match Manifest::read(store, &dir).await {
        Ok(manifest) => build(store, ds, manifest).await,
        Err(e) => Err(e),
    };
    lock.release().await?;
    built
}

/// Loads the dataset `manifest` describes, or ingests it when there is none or the stored copy
/// is damaged.
async fn build(store: &Store, ds: &DatasetPlan, manifest: Option<Manifest>) -> Result<Ingested> {
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
    let reads_text = !ds.source.is_generated() && ds.source.modality() == Modality::Text;
    let (examples, data_hash) = if !reads_text {
        let examples = if ds.source.is_generated() {
            generate(&ds.source)
        } else {
            read_images(&ds.source).await?
        };
        let batch = to_batch(&examples)?;
        let bytes = encode_parquet(batch.schema(), &[batch])?;
        let data_hash = super::data_hash(&bytes);
        store.put(&rel, bytes.into()).await?;
        (examples, data_hash)
    } else {
        let report = super::ingest_text::write(store, &dir, &ds.source).await?;
        let json = serde_json::to_vec_pretty(&report).expect("plain data serialises");
        store
            .put(&format!("{dir}/ingest.json"), json.into())
            .await?;
        let bytes = store
            .get(&rel)
            .await?
            .ok_or_else(|| Error::data(store.display(&rel), "vanished after writing"))?;
        (load(store, &rel).await?, super::data_hash(&bytes))
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

    #[tokio::test]
    async fn text_and_images_round_trip_through_parquet() {
        let store = Store::open_str("memory://ingest-test/").unwrap();
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
