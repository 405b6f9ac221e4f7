//! Where a report's numbers come from: the pipeline, the negsweep versions, the datasets with
//! their content hashes and the inputs they were read from, as the output records them.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use serde::Deserialize;

use crate::Result;
use crate::stages::Manifest;
use crate::storage::Store;

/// The pipeline a report was made for, when it is known.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineInfo {
    /// The pipeline's name (`[pipeline] name`).
    pub name: String,
    /// The pipeline file, as given.
    pub file: String,
}

/// One ingested dataset of the output (`datasets/<name>-<key>/`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DatasetRecord {
    /// Folder under `datasets/`.
    pub(crate) folder: String,
    /// Content key (hash of the source and its settings).
    pub(crate) key: String,
    /// blake3 of the examples file.
    pub(crate) data_hash: String,
    /// Examples and concepts ingested (from `ingest.json`), where recorded.
    pub(crate) examples: Option<u64>,
    /// See `examples`.
    pub(crate) concepts: Option<u64>,
    /// Whether a row of the results table names this data hash.
    pub(crate) in_results: bool,
}

/// One input file or folder the output read (`inputs/*.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct InputRecord {
    /// Where it was read from.
    pub(crate) url: String,
    /// Bytes.
    pub(crate) size: u64,
    /// Content fingerprint.
    pub(crate) fingerprint: String,
}

/// What a report says about where its numbers come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Provenance {
    /// The pipeline, when the report was made from one.
    pub(crate) pipeline: Option<PipelineInfo>,
    /// Where the results table was read.
    pub(crate) results: String,
    /// Points in the table.
    pub(crate) points: usize,
    /// negsweep versions (with git revisions where known) that computed the points.
    pub(crate) computed_by: Vec<String>,
    /// Distinct resolved-pipeline hashes of the points.
    pub(crate) configs: usize,
    /// Dataset name and content hash pairs of the result rows.
    pub(crate) row_data: Vec<(String, String)>,
    /// When the first and the last point finished (Unix seconds).
    pub(crate) finished: Option<(u64, u64)>,
    /// The output's ingested datasets.
    pub(crate) datasets: Vec<DatasetRecord>,
    /// The inputs the output read.
    pub(crate) inputs: Vec<InputRecord>,
    /// When the report was made (Unix seconds).
    pub(crate) made: u64,
    /// An adaptive sweep's decisions, one line each (empty for a full grid).
    pub(crate) adaptive: Vec<String>,
}

/// Distinct values of a text column (cast to text), in order; empty where it is missing.
fn texts(batches: &[RecordBatch], column: &str) -> Result<Vec<Vec<Option<String>>>> {
    batches
        .iter()
        .map(|b| {
            let Some(c) = b.column_by_name(column) else {
                return Ok(vec![None; b.num_rows()]);
            };
            let c = arrow::compute::cast(c, &DataType::Utf8)?;
            let c = c.as_string::<i32>();
            Ok((0..c.len())
                .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
                .collect())
        })
        .collect()
}

impl Provenance {
    /// Gathers the provenance of the results in `batches`, read at `results` from the output
    /// `output` (its `datasets/` and `inputs/` records, where it has them).
    ///
    /// # Errors
    /// Listing or reading the output fails.
    pub(crate) async fn gather(
        output: &Store,
        results: String,
        batches: &[RecordBatch],
        pipeline: Option<PipelineInfo>,
    ) -> Result<Self> {
        let flat = |column: &str| -> Result<Vec<Option<String>>> {
            Ok(texts(batches, column)?.into_iter().flatten().collect())
        };
        let (version, git) = (flat("version")?, flat("git_revision")?);
        let computed_by: BTreeSet<String> = version
            .iter()
            .zip(&git)
            .filter_map(|(v, g)| {
                let v = v.as_ref()?;
                Some(
                    g.as_ref()
                        .map_or_else(|| v.clone(), |g| format!("{v} ({g})")),
                )
            })
            .collect();
        let configs: BTreeSet<String> = flat("config_hash")?.into_iter().flatten().collect();
        let row_data: BTreeSet<(String, String)> = flat("dataset")?
            .into_iter()
            .zip(flat("data_hash")?)
            .filter_map(|(d, h)| Some((d?, h?)))
            .collect();
        let finished: Vec<u64> = flat("finished_at")?
            .into_iter()
            .filter_map(|t| t?.trim().parse().ok())
            .collect();
        let hashes: BTreeSet<&str> = row_data.iter().map(|(_, h)| h.as_str()).collect();
        let mut datasets = Vec::new();
        let mut inputs = Vec::new();
        for (rel, _) in output.list("datasets").await? {
            let Some(folder) = rel
                .strip_prefix("datasets/")
                .and_then(|r| r.strip_suffix("/_manifest.json"))
            else {
                continue;
            };
            let Some(bytes) = output.get(&rel).await? else {
                continue;
            };
            // A record that does not parse is left out: the report only describes.
            let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
                continue;
            };
            let ingest: Option<serde_json::Value> = output
                .get(&format!("datasets/{folder}/ingest.json"))
                .await?
                .and_then(|b| serde_json::from_slice(&b).ok());
            let count = |field: &str| ingest.as_ref().and_then(|v| v.get(field)?.as_u64());
            datasets.push(DatasetRecord {
                folder: folder.to_owned(),
                in_results: hashes.contains(m.data_hash.as_str()),
                key: m.key,
                data_hash: m.data_hash,
                examples: count("examples"),
                concepts: count("concepts"),
            });
        }
        for (rel, _) in output.list("inputs").await? {
            if let Some(bytes) = output.get(&rel).await?
                && let Ok(record) = serde_json::from_slice::<InputRecord>(&bytes)
            {
                inputs.push(record);
            }
        }
        datasets.sort_by(|a, b| a.folder.cmp(&b.folder));
        inputs.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(Self {
            pipeline,
            results,
            points: batches.iter().map(RecordBatch::num_rows).sum(),
            computed_by: computed_by.into_iter().collect(),
            configs: configs.len(),
            row_data: row_data.into_iter().collect(),
            finished: finished
                .iter()
                .min()
                .copied()
                .zip(finished.iter().max().copied()),
            datasets,
            inputs,
            made: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            // The decisions table sits beside the results it governs.
            adaptive: crate::stages::decisions::decision_lines(output)
                .await?
                .into_iter()
                .skip(1)
                .map(|l| l.trim().to_owned())
                .collect(),
        })
    }
}

/// `2026-12-01 03:40 UTC` for Unix seconds `t`.
pub(crate) fn utc(t: u64) -> String {
    let days = i64::try_from(t / 86_400).unwrap_or(0);
    let secs = t % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59 UTC");
    }

    #[tokio::test]
    async fn the_output_records_of_datasets_and_inputs_are_read() {
        let store = Store::open_str("memory://provenance-test/out", &Default::default()).unwrap();
        let manifest = serde_json::json!({
            "stage": "ingest", "key": "abc", "data_hash": "h1", "k_max": 0, "passes": 0,
            "version": "0.1.0"
        });
        store
            .put("datasets/d-abc/_manifest.json", manifest.to_string().into())
            .await
            .unwrap();
        store
            .put(
                "datasets/d-abc/ingest.json",
                r#"{"examples": 120, "concepts": 8}"#.into(),
            )
            .await
            .unwrap();
        store
            .put(
                "inputs/0011.json",
                r#"{"url": "file:///data/x.csv", "size": 10, "modified": "t", "e_tag": null, "fingerprint": "f"}"#
                    .into(),
            )
            .await
            .unwrap();
        let p = Provenance::gather(
            &store,
            "memory://provenance-test/out/results.arrow".into(),
            &[],
            None,
        )
        .await
        .unwrap();
        assert_eq!(p.datasets.len(), 1);
        let d = &p.datasets[0];
        assert_eq!(
            (d.folder.as_str(), d.key.as_str(), d.data_hash.as_str()),
            ("d-abc", "abc", "h1")
        );
        assert_eq!(
            (d.examples, d.concepts, d.in_results),
            (Some(120), Some(8), false)
        );
        assert_eq!(p.inputs.len(), 1);
        assert_eq!(p.inputs[0].url, "file:///data/x.csv");
        assert_eq!((p.points, p.finished), (0, None));
    }
}
