//! The stages of a sweep. Shared stages (ingest, concepts, negatives) run once per input and are
//! cached under content keys; `point` trains and evaluates one sweep point; `report` collects.
//!
//! Every stage writes its data first and a `_manifest.json` last: an output without a manifest
//! is incomplete and is recomputed.

pub mod columns;
pub mod decisions;
pub mod ingest;
pub mod ingest_text;
pub mod lock;
pub mod point;
mod pool_files;
pub mod pools;
pub mod tables;

use serde::{Deserialize, Serialize};

use crate::Result;
pub use crate::data::stream;
use crate::storage::Store;

/// Where everything lives under the output root.
pub mod layout {
    use crate::plan::{DatasetPlan, SweepPoint};

    /// Folder of an ingested dataset.
    pub fn dataset_dir(ds: &DatasetPlan) -> String {
        format!("datasets/{}-{}", ds.name, ds.key)
    }

    /// Folder of a prepared pool (concepts, split, negatives).
    pub fn pool_dir(ds: &DatasetPlan, n: u32, seed: u64, key: &str) -> String {
        let n = if n == 0 {
            "all".to_owned()
        } else {
            n.to_string()
        };
        format!("pools/{}/n={n}/seed={seed}/{key}", ds.name)
    }

    /// Hive-partitioned result of a point that trained on `n` concepts.
    pub fn result_file(ds: &DatasetPlan, p: &SweepPoint, n: u32) -> String {
        format!(
            "results/dataset={}/n={n}/k={}/part-{}.parquet",
            ds.name, p.k, p.id
        )
    }

    /// N of a result file, from its `n=` partition.
    pub fn result_n(rel: &str) -> Option<u32> {
        rel.split('/')
            .find_map(|part| part.strip_prefix("n=")?.parse().ok())
    }

    /// Dataset name of a result file, from its `dataset=` partition.
    pub fn result_dataset(rel: &str) -> Option<&str> {
        rel.split('/')
            .find_map(|part| part.strip_prefix("dataset="))
    }

    /// k of a result file, from its `k=` partition.
    pub fn result_k(rel: &str) -> Option<u32> {
        rel.split('/')
            .find_map(|part| part.strip_prefix("k=")?.parse().ok())
    }

    /// Marker of a point not computed because `twin` is the same point (N = 0 resolved to an
    /// N the plan lists too): the point is done when its twin is.
    pub fn alias(id: &str, twin: &str) -> String {
        format!("aliases/{id}/{twin}")
    }

    /// Point and twin ids of an alias marker, if `rel` is one.
    pub fn alias_ids(rel: &str) -> Option<(&str, &str)> {
        let mut parts = rel.strip_prefix("aliases/")?.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(twin), None) => Some((id, twin)),
            _ => None,
        }
    }

    /// Point id of a result file, if `rel` is one.
    pub fn result_id(rel: &str) -> Option<&str> {
        let name = rel.rsplit('/').next()?;
        name.strip_prefix("part-")?.strip_suffix(".parquet")
    }

    /// Weights of a point.
    pub fn checkpoint(p: &SweepPoint) -> String {
        format!("models/{}.safetensors", p.id)
    }

    /// Folder of a point's claim: the build lock of the process computing it.
    pub fn claim(id: &str) -> String {
        format!("claims/{id}")
    }

    /// Failure record of a point.
    pub fn failure(id: &str) -> String {
        format!("failures/{id}.json")
    }

    /// Where damaged result files are moved, under their own paths.
    pub const DAMAGED: &str = "damaged";
    /// All results of the current plan, one Arrow IPC file.
    pub const RESULTS_IPC: &str = "results.arrow";
    /// Mean and spread over seeds.
    pub const SUMMARY: &str = "summary.parquet";
    /// Best k per N.
    pub const BEST_K: &str = "best_k.parquet";
}

/// The last file a stage writes: its presence marks the output complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Stage name.
    pub stage: String,
    /// Content key of the output.
    pub key: String,
    /// blake3 of the main data file.
    pub data_hash: String,
    /// Negatives per anchor stored (pools only).
    #[serde(default)]
    pub k_max: u32,
    /// Passes stored (pools only).
    #[serde(default)]
    pub passes: u32,
    /// negsweep version that wrote it.
    pub version: String,
}

impl Manifest {
    /// Reads `<dir>/_manifest.json`; `None` when absent (the output is incomplete).
    pub async fn read(store: &Store, dir: &str) -> Result<Option<Self>> {
        let rel = format!("{dir}/_manifest.json");
        match store.get(&rel).await? {
            None => Ok(None),
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => Ok(Some(m)),
                // The stage is deterministic: a damaged manifest marks its output incomplete,
                // to be built again, not a dead end.
                Err(e) => {
                    tracing::warn!(
                        manifest = %store.display(&rel),
                        error = %e,
                        "a damaged manifest: building the stage again"
                    );
                    Ok(None)
                }
            },
        }
    }

    /// Writes `<dir>/_manifest.json`, which must come after the data it describes.
    pub async fn write(&self, store: &Store, dir: &str) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("manifests serialise");
        store
            .put(&format!("{dir}/_manifest.json"), json.into())
            .await
    }
}

/// blake3 of `bytes`, hex.
pub fn data_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
