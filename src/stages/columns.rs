//! The result columns, each declared once in [`COLUMNS`]: name, Arrow type and nullability (from
//! its accessor), description, and what a part file written before the column existed reads as.
//! The Arrow schema ([`tables::results`]), a row's batch, the upgrade of older part files and
//! `schemas/results.md` are all derived from that one list, and match columns by name, never by
//! position.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field};

use super::tables;
use crate::{Error, Result};

/// One finished sweep point. Each field is the result column of the same name.
#[derive(Debug, Clone, PartialEq)]
#[expect(missing_docs, reason = "columns are documented in schemas/results.md")]
pub struct ResultRow {
    pub dataset: String,
    pub n: u32,
    pub k: u32,
    pub point_id: String,
    pub seed: u64,
    pub prior_skew: f64,
    pub label_noise: f64,
    pub loss: &'static str,
    pub temperature: f64,
    pub tau_plus: f64,
    pub beta: f64,
    pub negative_weight: f64,
    pub lr: f64,
    pub encoder: &'static str,
    pub precision: &'static str,
    pub dim: u32,
    pub hidden: u32,
    pub batch_size: u32,
    pub epochs: u32,
    pub positive: &'static str,
    pub strategy: &'static str,
    pub false_negatives: &'static str,
    pub detector: &'static str,
    pub detector_precision: f64,
    pub detector_recall: f64,
    pub queue_staleness: f64,
    pub learned_temperature: f64,
    pub learned_bias: f64,
    pub mean_acc: f64,
    pub knn_acc: f64,
    pub probe_top1: f64,
    pub probe_top5: f64,
    pub test_loss: f64,
    pub collision_free_loss: f64,
    pub collision_loss_gap: f64,
    pub train_loss: f64,
    pub alignment: f64,
    pub uniformity: f64,
    pub effective_rank: f64,
    pub collision_rate: f64,
    pub collisions_mean: f64,
    pub coverage_rate: f64,
    pub covered_fraction: f64,
    pub tau_k: f64,
    pub expected_collisions: f64,
    pub coverage_theory: f64,
    pub ash_coefficient: f64,
    pub arora_coefficient: f64,
    pub n_train: u32,
    pub n_test: u32,
    pub steps: u32,
    pub train_seconds: f64,
    pub step_seconds: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
    pub config_hash: String,
    pub data_hash: String,
    pub version: String,
    pub git_revision: Option<String>,
    pub finished_at: String,
}

impl ResultRow {
    /// The row as a one-row batch; `partitions` includes `dataset`, `n` and `k`.
    pub fn to_batch(&self, partitions: bool) -> Result<RecordBatch> {
        batch(COLUMNS, &[self], partitions)
    }
}

/// How a row yields a column's value. The variant fixes the column's Arrow type and
/// nullability, so the declared type and the value written cannot disagree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Get {
    /// `Utf8`, not null.
    Utf8(fn(&ResultRow) -> &str),
    /// `Utf8`, nullable.
    NullableUtf8(fn(&ResultRow) -> Option<&str>),
    /// `UInt32`, not null.
    UInt32(fn(&ResultRow) -> u32),
    /// `UInt64`, not null.
    UInt64(fn(&ResultRow) -> u64),
    /// `Float64`, not null.
    Float64(fn(&ResultRow) -> f64),
}

/// One value of a column, repeated for every row of a file that lacks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// A `Utf8` value.
    Utf8(&'a str),
    /// A `UInt32` value.
    UInt32(u32),
    /// A `Float64` value.
    Float64(f64),
}

impl Value<'_> {
    fn data_type(&self) -> DataType {
        match self {
            Value::Utf8(_) => DataType::Utf8,
            Value::UInt32(_) => DataType::UInt32,
            Value::Float64(_) => DataType::Float64,
        }
    }

    fn repeated(&self, rows: usize) -> ArrayRef {
        match *self {
            Value::Utf8(v) => Arc::new(StringArray::from(vec![v; rows])),
            Value::UInt32(v) => Arc::new(UInt32Array::from(vec![v; rows])),
            Value::Float64(v) => Arc::new(Float64Array::from(vec![v; rows])),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Utf8(v) => v.fmt(f),
            Value::UInt32(v) => v.fmt(f),
            Value::Float64(v) => v.fmt(f),
        }
    }
}

/// What a result file written before a column existed reads it as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Legacy {
    /// The column has been written since the first version: a file without it is damaged.
    Always,
    /// A hive partition column: in the part file's path since the first version (stored in the
    /// file only later), so always read from the path, which names the plan's partition even
    /// when a stored value is stale (a renamed dataset).
    Path,
    /// Added later: a file without the column reads as this value.
    Default(Value<'static>),
}

/// One result column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Column name, also the [`ResultRow`] field.
    pub(crate) name: &'static str,
    /// The value of a row, and with it the Arrow type.
    pub(crate) get: Get,
    /// What files written before the column existed read as.
    pub(crate) legacy: Legacy,
    /// Meaning, for `schemas/results.md`.
    pub(crate) about: &'static str,
}

impl Column {
    /// The column's Arrow type.
    pub(crate) fn data_type(&self) -> DataType {
        match self.get {
            Get::Utf8(_) | Get::NullableUtf8(_) => DataType::Utf8,
            Get::UInt32(_) => DataType::UInt32,
            Get::UInt64(_) => DataType::UInt64,
            Get::Float64(_) => DataType::Float64,
        }
    }

    /// Whether the column may hold nulls.
    pub(crate) fn nullable(&self) -> bool {
        matches!(self.get, Get::NullableUtf8(_))
    }

    /// The column's schema field.
    pub(crate) fn field(&self) -> Field {
        Field::new(self.name, self.data_type(), self.nullable())
    }

    /// Whether the column is a hive partition (`dataset=/n=/k=` in the path).
    pub(crate) fn is_partition(&self) -> bool {
        self.legacy == Legacy::Path
    }

    /// The description with what older files read as, as `schemas/results.md` shows it.
    pub(crate) fn description(&self) -> String {
        match self.legacy {
            Legacy::Default(v) => format!(
                "{} Results written before this column existed read as `{v}`.",
                self.about
            ),
            Legacy::Always | Legacy::Path => self.about.to_owned(),
        }
    }

    /// The column's array over `rows`.
    fn array(&self, rows: &[&ResultRow]) -> ArrayRef {
        match self.get {
            Get::Utf8(g) => Arc::new(StringArray::from(
                rows.iter().map(|r| g(r)).collect::<Vec<_>>(),
            )),
            Get::NullableUtf8(g) => Arc::new(StringArray::from(
                rows.iter().map(|r| g(r)).collect::<Vec<_>>(),
            )),
            Get::UInt32(g) => Arc::new(UInt32Array::from(
                rows.iter().map(|r| g(r)).collect::<Vec<_>>(),
            )),
            Get::UInt64(g) => Arc::new(UInt64Array::from(
                rows.iter().map(|r| g(r)).collect::<Vec<_>>(),
            )),
            Get::Float64(g) => Arc::new(Float64Array::from(
                rows.iter().map(|r| g(r)).collect::<Vec<_>>(),
            )),
        }
    }
}

/// The declaration named `name` among `columns`.
fn find<'c>(columns: &'c [Column], name: &str) -> Result<&'c Column> {
    columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Error::Internal(format!("result column `{name}` is not declared")))
}

/// `rows` as a batch of the results schema: each field's array comes from the declaration of the
/// same name in `columns`, whatever their order.
fn batch(columns: &[Column], rows: &[&ResultRow], partitions: bool) -> Result<RecordBatch> {
    let schema = tables::results(partitions);
    let arrays = schema
        .fields()
        .iter()
        .map(|f| Ok(find(columns, f.name())?.array(rows)))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// A stored result in the current layout: the partition columns (`dataset`, `n`, `k`) from the
/// path, stored in the file too so that a reader never infers their types from the path; every
/// other column from `b` by name, or its declared legacy default where the file was written
/// before the column existed.
pub(crate) fn upgraded(b: &RecordBatch, dataset: &str, n: u32, k: u32) -> Result<RecordBatch> {
    let rows = b.num_rows();
    let path = [
        ("dataset", Value::Utf8(dataset)),
        ("n", Value::UInt32(n)),
        ("k", Value::UInt32(k)),
    ];
    let schema = tables::results(true);
    let filled = |c: &Column, v: Value<'_>| {
        // A declaration whose default does not fit its type is a bug, not a damaged file.
        if v.data_type() == c.data_type() {
            Ok(v.repeated(rows))
        } else {
            Err(Error::Internal(format!(
                "result column `{}` is declared with a {} default",
                c.name,
                v.data_type()
            )))
        }
    };
    let arrays = schema
        .fields()
        .iter()
        .map(|f| {
            let c = find(COLUMNS, f.name())?;
            match (c.legacy, b.column_by_name(c.name)) {
                (Legacy::Path, _) => match path.iter().find(|(name, _)| *name == c.name) {
                    Some((_, v)) => filled(c, *v),
                    None => Err(Error::Internal(format!(
                        "partition column `{}` is not in a result file's path",
                        c.name
                    ))),
                },
                (_, Some(stored)) => Ok(Arc::clone(stored)),
                (Legacy::Default(v), None) => filled(c, v),
                (Legacy::Always, None) => Err(Error::data(
                    "results",
                    format!("a stored result lacks column `{}`", c.name),
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// Every result column, in file order: the partition columns first.
pub(crate) const COLUMNS: &[Column] = &[
    Column {
        name: "dataset",
        get: Get::Utf8(|r| &r.dataset),
        legacy: Legacy::Path,
        about: "Dataset name (partition).",
    },
    Column {
        name: "n",
        get: Get::UInt32(|r| r.n),
        legacy: Legacy::Path,
        about: "Number of concepts N (partition).",
    },
    Column {
        name: "k",
        get: Get::UInt32(|r| r.k),
        legacy: Legacy::Path,
        about: "Negatives per anchor (partition).",
    },
    Column {
        name: "point_id",
        get: Get::Utf8(|r| &r.point_id),
        legacy: Legacy::Always,
        about: "Hash of the point's resolved parameters and input keys.",
    },
    Column {
        name: "seed",
        get: Get::UInt64(|r| r.seed),
        legacy: Legacy::Always,
        about: "Seed of concepts, split, pool and initial weights.",
    },
    Column {
        name: "prior_skew",
        get: Get::Float64(|r| r.prior_skew),
        // Every prior was the data's own before the skew existed.
        legacy: Legacy::Default(Value::Float64(0.0)),
        about: "Zipf exponent s of the class-prior skew (concepts.prior-skew): the i-th chosen concept kept ceil(count i^-s) of its examples; 0 for none.",
    },
    Column {
        name: "label_noise",
        get: Get::Float64(|r| r.label_noise),
        legacy: Legacy::Default(Value::Float64(0.0)),
        about: "Chance that a training example took a uniformly drawn concept (concepts.label-noise); 0 for none.",
    },
    Column {
        name: "loss",
        get: Get::Utf8(|r| r.loss),
        legacy: Legacy::Always,
        about: "`nce`, `infonce`, `debiased`, `decoupled`, `hcl` or `sigmoid`.",
    },
    Column {
        name: "temperature",
        get: Get::Float64(|r| r.temperature),
        legacy: Legacy::Always,
        about: "Temperature of `infonce`, `debiased`, `decoupled` and `hcl` (1 for `nce`, and for `sigmoid`, whose scale is learned: `learned_temperature`).",
    },
    Column {
        name: "tau_plus",
        get: Get::Float64(|r| r.tau_plus),
        // Only the debiased loss has a class prior, and it came with this column.
        legacy: Legacy::Default(Value::Float64(0.0)),
        about: "Class prior of the debiased and hcl losses (0 for other losses).",
    },
    Column {
        name: "beta",
        get: Get::Float64(|r| r.beta),
        // The hcl loss came with this column.
        legacy: Legacy::Default(Value::Float64(0.0)),
        about: "Hardness concentration of the hcl loss (Robinson et al. 2021; 0 for other losses).",
    },
    Column {
        name: "negative_weight",
        get: Get::Float64(|r| r.negative_weight),
        // The sigmoid loss came with this column.
        legacy: Legacy::Default(Value::Float64(0.0)),
        about: "Weight of the negatives' terms against the positive's in the sigmoid loss (train.negative-weight; 0 for other losses).",
    },
    Column {
        name: "lr",
        get: Get::Float64(|r| r.lr),
        legacy: Legacy::Always,
        about: "Adam learning rate.",
    },
    Column {
        name: "encoder",
        get: Get::Utf8(|r| r.encoder),
        legacy: Legacy::Always,
        about: "`embedding-bag`, `gru`, `mlp` or `cnn`.",
    },
    Column {
        name: "precision",
        get: Get::Utf8(|r| r.precision),
        // Every product was f32 before the setting existed.
        legacy: Legacy::Default(Value::Utf8("f32")),
        about: "Number format of the fully connected layers' products while training (train.precision): `f32`, or `bf16` operands with f32 sums.",
    },
    Column {
        name: "dim",
        get: Get::UInt32(|r| r.dim),
        legacy: Legacy::Always,
        about: "Representation dimension.",
    },
    Column {
        name: "hidden",
        get: Get::UInt32(|r| r.hidden),
        legacy: Legacy::Always,
        about: "Embedding or hidden width.",
    },
    Column {
        name: "batch_size",
        get: Get::UInt32(|r| r.batch_size),
        legacy: Legacy::Always,
        about: "Anchors per step.",
    },
    Column {
        name: "epochs",
        get: Get::UInt32(|r| r.epochs),
        legacy: Legacy::Always,
        about: "Passes over the training anchors.",
    },
    Column {
        name: "positive",
        get: Get::Utf8(|r| r.positive),
        // The only mode before positives became sweepable.
        legacy: Legacy::Default(Value::Utf8("same-concept")),
        about: "Positive mode: `same-concept` or `augmentation`.",
    },
    Column {
        name: "strategy",
        get: Get::Utf8(|r| r.strategy),
        // The only strategy before strategies became sweepable.
        legacy: Legacy::Default(Value::Utf8("uniform")),
        about: "Negative-sampling strategy: `uniform`, `collision-free`, `in-batch`, `hard` or `queue`.",
    },
    Column {
        name: "false_negatives",
        get: Get::Utf8(|r| r.false_negatives),
        // Every negative was kept before false-negative handling existed.
        legacy: Legacy::Default(Value::Utf8("keep")),
        about: "What the loss did with detected false negatives (Huynh et al. 2022): `keep`, `eliminate` (out of the denominator) or `attract` (extra positives).",
    },
    Column {
        name: "detector",
        get: Get::Utf8(|r| r.detector),
        legacy: Legacy::Default(Value::Utf8("none")),
        about: "False-negative detector: `oracle` (the true concepts), `similarity` (mean cosine to the anchor and its positive at least negatives.detector-threshold) or `none` (points that keep every negative).",
    },
    Column {
        name: "detector_precision",
        get: Get::Float64(|r| r.detector_precision),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Share of the (anchor, negative) pairs the detector flagged over all training steps that share the anchor's true concept; NaN without a detector or when nothing was flagged.",
    },
    Column {
        name: "detector_recall",
        get: Get::Float64(|r| r.detector_recall),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Share of the training pairs that share the anchor's true concept that the detector flagged; NaN without a detector or when there were none.",
    },
    Column {
        name: "queue_staleness",
        get: Get::Float64(|r| r.queue_staleness),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "`queue` points: mean age in steps of the negatives trained with (the step a key was used at minus the step it was enqueued at); NaN for other strategies.",
    },
    Column {
        name: "learned_temperature",
        get: Get::Float64(|r| r.learned_temperature),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Sigmoid loss: the learned scale t of its logits t s + b after training (initially 10); NaN for other losses.",
    },
    Column {
        name: "learned_bias",
        get: Get::Float64(|r| r.learned_bias),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Sigmoid loss: the learned bias b after training (initially -10); NaN for other losses.",
    },
    Column {
        name: "mean_acc",
        get: Get::Float64(|r| r.mean_acc),
        legacy: Legacy::Always,
        about: "N-way top-1 accuracy of the mean classifier on the test split.",
    },
    Column {
        name: "knn_acc",
        get: Get::Float64(|r| r.knn_acc),
        legacy: Legacy::Always,
        about: "Top-1 accuracy of the kNN vote (eval.knn neighbours, cosine) on the test split.",
    },
    Column {
        name: "probe_top1",
        get: Get::Float64(|r| r.probe_top1),
        // No probe ran, as when the probe is off.
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Top-1 accuracy of a linear probe (softmax regression on frozen, standardised training features; eval.probe-epochs) on the test split; NaN when the probe is off.",
    },
    Column {
        name: "probe_top5",
        get: Get::Float64(|r| r.probe_top5),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Top-5 accuracy of the same probe (1 when N <= 5).",
    },
    Column {
        name: "test_loss",
        get: Get::Float64(|r| r.test_loss),
        legacy: Legacy::Always,
        about: "Contrastive loss on test anchors with k test negatives (every negative kept, same-concept positives).",
    },
    Column {
        name: "collision_free_loss",
        get: Get::Float64(|r| r.collision_free_loss),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "The same loss on the same test batch with the negatives that share the anchor's concept removed from it (a collision-free loss).",
    },
    Column {
        name: "collision_loss_gap",
        get: Get::Float64(|r| r.collision_loss_gap),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "test_loss - collision_free_loss: the part of the held-out loss that collisions contribute (0 when no test negative collides; can be negative for the decoupled loss, whose rows with no negative left count 0).",
    },
    Column {
        name: "train_loss",
        get: Get::Float64(|r| r.train_loss),
        legacy: Legacy::Always,
        about: "Mean training loss over the last 10% of steps.",
    },
    Column {
        name: "alignment",
        get: Get::Float64(|r| r.alignment),
        // Not measured before this column existed.
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Alignment (Wang and Isola 2020, alpha = 2): mean squared distance between unit-normalised representations of held-out same-concept pairs (each test example and the next of its concept); 0 to 4, lower is better aligned.",
    },
    Column {
        name: "uniformity",
        get: Get::Float64(|r| r.uniformity),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Uniformity (Wang and Isola 2020, t = 2): log of the mean of exp(-2 ||x - y||^2) over pairs of unit-normalised test representations (at most 2,048 rows, evenly spaced); from 0 (one point) down to about -4, lower is more uniform.",
    },
    Column {
        name: "effective_rank",
        get: Get::Float64(|r| r.effective_rank),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Effective rank of the test representations as evaluated (RankMe, Garrido et al. 2023): exp of the entropy of their normalised singular values; 1 to min(n_test, dim).",
    },
    Column {
        name: "collision_rate",
        get: Get::Float64(|r| r.collision_rate),
        legacy: Legacy::Always,
        about: "Fraction of training anchors with at least one collision among the k negatives they were trained with (for `in-batch` and `hard`, the negatives actually used).",
    },
    Column {
        name: "collisions_mean",
        get: Get::Float64(|r| r.collisions_mean),
        legacy: Legacy::Always,
        about: "Mean colliding negatives per anchor.",
    },
    Column {
        name: "coverage_rate",
        get: Get::Float64(|r| r.coverage_rate),
        legacy: Legacy::Always,
        about: "Fraction of anchors whose k negatives cover all other N-1 concepts.",
    },
    Column {
        name: "covered_fraction",
        get: Get::Float64(|r| r.covered_fraction),
        legacy: Legacy::Always,
        about: "Mean fraction of the other N-1 concepts covered.",
    },
    Column {
        name: "tau_k",
        get: Get::Float64(|r| r.tau_k),
        legacy: Legacy::Always,
        about: "Theory: 1 - sum_c rho_c (1 - rho_c)^k with measured rho.",
    },
    Column {
        name: "expected_collisions",
        get: Get::Float64(|r| r.expected_collisions),
        legacy: Legacy::Always,
        about: "Theory: k sum_c rho_c^2.",
    },
    Column {
        name: "coverage_theory",
        get: Get::Float64(|r| r.coverage_theory),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Theory: probability that k draws from the measured rho cover every concept other than the anchor's, the anchor's concept drawn from rho. The theory describes uniform draws: compare it with `coverage_rate` of `uniform` points.",
    },
    Column {
        name: "ash_coefficient",
        get: Get::Float64(|r| r.ash_coefficient),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Theory: Ash et al.'s bound coefficient 2 max(1, 2(N-1)H_{N-1}/k) / (1 - tau_k).",
    },
    Column {
        name: "arora_coefficient",
        get: Get::Float64(|r| r.arora_coefficient),
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Theory: Arora et al.'s coefficient 1 / ((1 - tau_k) coverage_theory); infinite when coverage is 0.",
    },
    Column {
        name: "n_train",
        get: Get::UInt32(|r| r.n_train),
        legacy: Legacy::Always,
        about: "Training examples.",
    },
    Column {
        name: "n_test",
        get: Get::UInt32(|r| r.n_test),
        legacy: Legacy::Always,
        about: "Test examples.",
    },
    Column {
        name: "steps",
        get: Get::UInt32(|r| r.steps),
        legacy: Legacy::Always,
        about: "Optimiser steps.",
    },
    Column {
        name: "train_seconds",
        get: Get::Float64(|r| r.train_seconds),
        legacy: Legacy::Always,
        about: "Wall time of training (initialisation and steps).",
    },
    Column {
        name: "step_seconds",
        get: Get::Float64(|r| r.step_seconds),
        // Not measured then; NaN rather than a time that was never taken.
        legacy: Legacy::Default(Value::Float64(f64::NAN)),
        about: "Wall time inside optimiser steps; the rest of total_seconds is per-point overhead.",
    },
    Column {
        name: "eval_seconds",
        get: Get::Float64(|r| r.eval_seconds),
        legacy: Legacy::Always,
        about: "Wall time of evaluation.",
    },
    Column {
        name: "total_seconds",
        get: Get::Float64(|r| r.total_seconds),
        legacy: Legacy::Always,
        about: "Wall time of the whole point, writing excluded.",
    },
    Column {
        name: "config_hash",
        get: Get::Utf8(|r| &r.config_hash),
        legacy: Legacy::Always,
        about: "Hash of the resolved pipeline.",
    },
    Column {
        name: "data_hash",
        get: Get::Utf8(|r| &r.data_hash),
        legacy: Legacy::Always,
        about: "blake3 of the ingested examples file.",
    },
    Column {
        name: "version",
        get: Get::Utf8(|r| &r.version),
        legacy: Legacy::Always,
        about: "negsweep version.",
    },
    Column {
        name: "git_revision",
        get: Get::NullableUtf8(|r| r.git_revision.as_deref()),
        legacy: Legacy::Always,
        about: "negsweep's git revision at build time, when known.",
    },
    Column {
        name: "finished_at",
        get: Get::Utf8(|r| &r.finished_at),
        legacy: Legacy::Always,
        about: "Unix time (seconds) the point finished.",
    },
];

/// A result column the summary averages over seeds.
#[derive(Debug)]
pub(crate) struct Mean {
    /// The result column, also the name of its mean in the summary.
    pub(crate) column: &'static str,
    /// Whether `<column>_std`, the sample standard deviation over the seeds, follows the mean.
    pub(crate) std: bool,
}

/// The summary's metrics, in its column order (after the group keys and `seeds`); the
/// computation and `schemas/summary.md` both read this list.
pub(crate) const MEANS: &[Mean] = &[
    Mean {
        column: "mean_acc",
        std: true,
    },
    Mean {
        column: "knn_acc",
        std: true,
    },
    Mean {
        column: "probe_top1",
        std: false,
    },
    Mean {
        column: "probe_top5",
        std: false,
    },
    Mean {
        column: "test_loss",
        std: false,
    },
    Mean {
        column: "collision_rate",
        std: false,
    },
    Mean {
        column: "tau_k",
        std: false,
    },
    Mean {
        column: "coverage_rate",
        std: false,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt32Type, UInt64Type};

    use super::*;

    /// The result columns of the first version (`5736763`, the walking skeleton), partitions
    /// excluded: the only ones a stored result may be required to have.
    const FIRST_VERSION: &[&str] = &[
        "point_id",
        "seed",
        "loss",
        "temperature",
        "lr",
        "encoder",
        "dim",
        "hidden",
        "batch_size",
        "epochs",
        "mean_acc",
        "knn_acc",
        "test_loss",
        "train_loss",
        "collision_rate",
        "collisions_mean",
        "coverage_rate",
        "covered_fraction",
        "tau_k",
        "expected_collisions",
        "n_train",
        "n_test",
        "steps",
        "train_seconds",
        "eval_seconds",
        "total_seconds",
        "config_hash",
        "data_hash",
        "version",
        "git_revision",
        "finished_at",
    ];

    /// A row whose fields all differ from one another, so a value under the wrong name shows.
    fn distinct_row() -> ResultRow {
        ResultRow {
            dataset: "s1".into(),
            n: 2,
            k: 3,
            point_id: "s4".into(),
            seed: 5,
            prior_skew: 5.25,
            label_noise: 5.5,
            loss: "s6",
            temperature: 7.25,
            tau_plus: 8.25,
            beta: 8.5,
            negative_weight: 8.625,
            lr: 9.25,
            encoder: "s10",
            precision: "s10a",
            dim: 11,
            hidden: 12,
            batch_size: 13,
            epochs: 14,
            positive: "s15",
            strategy: "s16",
            false_negatives: "s16a",
            detector: "s16b",
            detector_precision: 16.5,
            detector_recall: 16.625,
            queue_staleness: 16.75,
            learned_temperature: 16.8125,
            learned_bias: 16.875,
            mean_acc: 17.25,
            knn_acc: 18.25,
            probe_top1: 19.25,
            probe_top5: 20.25,
            test_loss: 21.25,
            collision_free_loss: 21.5,
            collision_loss_gap: 21.625,
            train_loss: 22.25,
            alignment: 22.5,
            uniformity: 22.625,
            effective_rank: 22.875,
            collision_rate: 23.25,
            collisions_mean: 24.25,
            coverage_rate: 25.25,
            covered_fraction: 26.25,
            tau_k: 27.25,
            expected_collisions: 28.25,
            coverage_theory: 29.25,
            ash_coefficient: 30.25,
            arora_coefficient: 31.25,
            n_train: 32,
            n_test: 33,
            steps: 34,
            train_seconds: 35.25,
            step_seconds: 36.25,
            eval_seconds: 37.25,
            total_seconds: 38.25,
            config_hash: "s39".into(),
            data_hash: "s40".into(),
            version: "s41".into(),
            git_revision: Some("s42".into()),
            finished_at: "s43".into(),
        }
    }

    /// Field name -> value as `Debug` shows it: the compiler's own pairing of names and values,
    /// independent of the declarations.
    fn fields_of(row: &ResultRow) -> BTreeMap<String, String> {
        let shown = format!("{row:?}");
        let inner = shown
            .strip_prefix("ResultRow { ")
            .and_then(|s| s.strip_suffix(" }"))
            .unwrap();
        inner
            .split(", ")
            .map(|f| {
                let (name, value) = f.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// Row `i` of column `name` of `b`, shown as `Debug` shows the field.
    fn cell(b: &RecordBatch, name: &str, i: usize) -> String {
        let a = b.column_by_name(name).unwrap();
        match a.data_type() {
            DataType::Utf8 if b.schema().field_with_name(name).unwrap().is_nullable() => {
                let s = a.as_string::<i32>();
                format!("{:?}", s.is_valid(i).then(|| s.value(i)))
            }
            DataType::Utf8 => format!("{:?}", a.as_string::<i32>().value(i)),
            DataType::UInt32 => format!("{:?}", a.as_primitive::<UInt32Type>().value(i)),
            DataType::UInt64 => format!("{:?}", a.as_primitive::<UInt64Type>().value(i)),
            DataType::Float64 => format!("{:?}", a.as_primitive::<Float64Type>().value(i)),
            t => panic!("no result column is {t}"),
        }
    }

    #[test]
    fn every_column_has_a_description_and_an_explicit_legacy_policy() {
        let mut names = HashSet::new();
        for c in COLUMNS {
            assert!(names.insert(c.name), "`{}` is declared twice", c.name);
            assert!(
                c.about.trim().ends_with('.') && c.about.trim().len() > 1,
                "`{}` has no description (a sentence)",
                c.name
            );
            match c.legacy {
                Legacy::Always => assert!(
                    FIRST_VERSION.contains(&c.name),
                    "`{}` was added after the first version: files written before it lack it, so \
                     it needs Legacy::Default",
                    c.name
                ),
                Legacy::Path => assert!(
                    tables::PARTITIONS.contains(&c.name),
                    "`{}` is not a partition",
                    c.name
                ),
                Legacy::Default(v) => assert_eq!(
                    v.data_type(),
                    c.data_type(),
                    "`{}`'s legacy default has another type",
                    c.name
                ),
            }
        }
        // The partition columns lead, in path order.
        let leading: Vec<_> = COLUMNS.iter().take(3).map(|c| c.name).collect();
        assert_eq!(leading, tables::PARTITIONS);
        assert_eq!(COLUMNS.iter().filter(|c| c.is_partition()).count(), 3);
    }

    #[test]
    fn every_row_field_is_declared_once_and_every_declaration_is_a_field() {
        let fields: Vec<String> = fields_of(&distinct_row()).into_keys().collect();
        let mut declared: Vec<String> = COLUMNS.iter().map(|c| c.name.to_owned()).collect();
        declared.sort();
        assert_eq!(fields, declared);
    }

    #[test]
    fn a_batch_holds_every_field_under_its_own_name() {
        let row = distinct_row();
        let want = fields_of(&row);
        let values: HashSet<_> = want.values().collect();
        assert_eq!(values.len(), want.len(), "the test row repeats a value");
        let b = row.to_batch(true).unwrap();
        assert_eq!(b.num_columns(), want.len());
        for (name, value) in &want {
            assert_eq!(&cell(&b, name, 0), value, "column `{name}`");
        }
        let without = row.to_batch(false).unwrap();
        for p in tables::PARTITIONS {
            assert!(without.column_by_name(p).is_none());
        }
        for (name, value) in want
            .iter()
            .filter(|(n, _)| !tables::PARTITIONS.contains(&n.as_str()))
        {
            assert_eq!(&cell(&without, name, 0), value, "column `{name}`");
        }
    }

    #[test]
    fn declaration_order_does_not_move_values() {
        let (first, mut second) = (distinct_row(), distinct_row());
        second.mean_acc = 0.5;
        second.git_revision = None;
        let rows = [&first, &second];
        let mut reordered = COLUMNS.to_vec();
        reordered.reverse();
        reordered.rotate_left(7);
        let b = batch(&reordered, &rows, true).unwrap();
        assert_eq!(b, batch(COLUMNS, &rows, true).unwrap());
        for (i, row) in rows.iter().enumerate() {
            for (name, value) in fields_of(row) {
                assert_eq!(cell(&b, &name, i), value, "row {i}, column `{name}`");
            }
        }
    }

    #[test]
    fn an_older_file_reads_the_declared_defaults_and_its_path() {
        let row = distinct_row();
        let current = row.to_batch(true).unwrap();
        // As a file written before every later column and before the partitions were stored.
        let keep: Vec<usize> = COLUMNS
            .iter()
            .enumerate()
            .filter(|(_, c)| c.legacy == Legacy::Always)
            .map(|(i, _)| i)
            .collect();
        let old = current.project(&keep).unwrap();
        let up = upgraded(&old, "renamed", 20, 30).unwrap();
        assert_eq!(up.schema(), tables::results(true));
        let want = fields_of(&row);
        for c in COLUMNS {
            let got = cell(&up, c.name, 0);
            match (c.legacy, c.name) {
                (Legacy::Always, _) => assert_eq!(got, want[c.name], "`{}`", c.name),
                (Legacy::Path, "dataset") => assert_eq!(got, "\"renamed\""),
                (Legacy::Path, "n") => assert_eq!(got, "20"),
                (Legacy::Path, _) => assert_eq!(got, "30"),
                (Legacy::Default(Value::Float64(v)), _) => {
                    let a = up
                        .column_by_name(c.name)
                        .unwrap()
                        .as_primitive::<Float64Type>();
                    assert_eq!(a.value(0).to_bits(), v.to_bits(), "`{}`", c.name);
                }
                (Legacy::Default(Value::Utf8(v)), _) => assert_eq!(got, format!("{v:?}")),
                (Legacy::Default(v), _) => assert_eq!(got, v.to_string()),
            }
        }
        // A current file keeps every stored value but the partitions, which follow the path.
        let same = upgraded(&current, "s1", 2, 3).unwrap();
        assert_eq!(same, current);
        // A first-version column missing means a damaged file.
        let point_id = old.schema().index_of("point_id").unwrap();
        let rest: Vec<usize> = (0..old.num_columns()).filter(|&i| i != point_id).collect();
        let damaged = old.project(&rest).unwrap();
        assert!(matches!(
            upgraded(&damaged, "s1", 2, 3),
            Err(Error::Data { .. })
        ));
    }

    #[test]
    fn the_schema_page_is_the_declarations() {
        let doc = tables::all()
            .into_iter()
            .find(|t| t.name == "results")
            .unwrap();
        assert_eq!(doc.columns.len(), COLUMNS.len());
        for ((name, ty, about), c) in doc.columns.iter().zip(COLUMNS) {
            assert_eq!(name, c.name);
            assert_eq!(
                *ty,
                format!("{}", c.data_type()) + if c.nullable() { " (nullable)" } else { "" }
            );
            assert_eq!(*about, c.description());
        }
        assert_eq!(
            include_str!("../../schemas/results.md"),
            tables::markdown(&doc),
            "schemas/results.md is stale: run `negsweep schema`"
        );
    }

    #[test]
    fn result_columns_named_elsewhere_are_declared() {
        let typed = |name: &str| find(COLUMNS, name).ok().map(Column::data_type);
        for s in tables::GROUP_SETTINGS {
            assert!(typed(s).is_some(), "group setting `{s}`");
        }
        for m in MEANS {
            assert_eq!(
                typed(m.column),
                Some(DataType::Float64),
                "summary mean `{}`",
                m.column
            );
        }
    }
}
