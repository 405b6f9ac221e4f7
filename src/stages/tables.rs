//! Arrow schemas of every table negsweep writes, with the column descriptions that
//! `negsweep schema` renders into `schemas/<table>.md`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// A documented table.
#[derive(Debug)]
pub struct TableDoc {
    /// File stem under `schemas/`.
    pub name: &'static str,
    /// Where it is written, relative to the output root.
    pub path: &'static str,
    /// What a row is.
    pub about: &'static str,
    /// Columns: name, type, description.
    pub columns: Vec<(String, String, String)>,
}

fn list_u32() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::UInt32, false)))
}

/// Ingested examples. `tokens` (text) or `pixels` (image) holds the features.
pub fn examples(text: bool, pixels_per_image: i32) -> SchemaRef {
    let feature = if text {
        Field::new("tokens", list_u32(), false)
    } else {
        Field::new("pixels", DataType::FixedSizeBinary(pixels_per_image), false)
    };
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("label", DataType::UInt32, false),
        Field::new("concept", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, true),
        feature,
    ]))
}

/// Vocabulary of a text dataset with a counted vocabulary.
pub fn vocab() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("token", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
    ]))
}

/// Chosen concepts of a pool.
pub fn concepts() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("class", DataType::UInt32, false),
        Field::new("label", DataType::UInt32, false),
        Field::new("concept", DataType::Utf8, false),
        Field::new("n_train", DataType::UInt32, false),
        Field::new("n_test", DataType::UInt32, false),
        Field::new("rho", DataType::Float64, false),
    ]))
}

/// Train/test assignment of the chosen examples.
pub fn split() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("class", DataType::UInt32, false),
        Field::new("split", DataType::Utf8, false),
    ]))
}

/// One training anchor with its positive and `k_max` negatives.
pub fn pool() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("row", DataType::UInt32, false),
        Field::new("pass", DataType::UInt32, false),
        Field::new("anchor", DataType::UInt32, false),
        Field::new("positive", DataType::UInt32, false),
        Field::new("negatives", list_u32(), false),
        Field::new("collisions", DataType::UInt32, false),
        Field::new("covered", DataType::UInt32, false),
    ]))
}

/// Collision and coverage of a pool's first k negatives, for k = 1, 2, 4, ..., k_max.
pub fn pool_stats() -> SchemaRef {
    let f64c = |name: &str| Field::new(name, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::UInt32, false),
        Field::new("anchors", DataType::UInt32, false),
        f64c("collision_rate"),
        f64c("collisions_mean"),
        Field::new("collisions_hist", list_u32(), false),
        f64c("covered_mean"),
        f64c("covered_fraction"),
        f64c("coverage_rate"),
        f64c("tau_k"),
        f64c("expected_collisions"),
        f64c("coverage_theory"),
    ]))
}

/// Partition columns of the results, encoded in the path (`dataset=/n=/k=`).
pub const PARTITIONS: [&str; 3] = ["dataset", "n", "k"];

/// One sweep point's results. With `partitions`, the hive columns are included: part files and
/// the IPC file store them (part files written by older versions left them to the path until
/// `run` or `collect` upgraded them).
pub fn results(partitions: bool) -> SchemaRef {
    let mut fields = Vec::new();
    if partitions {
        fields.extend([
            Field::new("dataset", DataType::Utf8, false),
            Field::new("n", DataType::UInt32, false),
            Field::new("k", DataType::UInt32, false),
        ]);
    }
    let f64c = |name: &str| Field::new(name, DataType::Float64, false);
    let u32c = |name: &str| Field::new(name, DataType::UInt32, false);
    fields.extend([
        Field::new("point_id", DataType::Utf8, false),
        Field::new("seed", DataType::UInt64, false),
        Field::new("loss", DataType::Utf8, false),
        f64c("temperature"),
        f64c("tau_plus"),
        f64c("lr"),
        Field::new("encoder", DataType::Utf8, false),
        u32c("dim"),
        u32c("hidden"),
        u32c("batch_size"),
        u32c("epochs"),
        Field::new("positive", DataType::Utf8, false),
        Field::new("strategy", DataType::Utf8, false),
        f64c("mean_acc"),
        f64c("knn_acc"),
        f64c("probe_top1"),
        f64c("probe_top5"),
        f64c("test_loss"),
        f64c("train_loss"),
        f64c("collision_rate"),
        f64c("collisions_mean"),
        f64c("coverage_rate"),
        f64c("covered_fraction"),
        f64c("tau_k"),
        f64c("expected_collisions"),
        f64c("coverage_theory"),
        f64c("ash_coefficient"),
        f64c("arora_coefficient"),
        u32c("n_train"),
        u32c("n_test"),
        u32c("steps"),
        f64c("train_seconds"),
        f64c("step_seconds"),
        f64c("eval_seconds"),
        f64c("total_seconds"),
        Field::new("config_hash", DataType::Utf8, false),
        Field::new("data_hash", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("git_revision", DataType::Utf8, true),
        Field::new("finished_at", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// Columns that, with `dataset` and `n`, identify a group of points differing only by k and
/// seed: every setting but k and the seed.
pub const GROUP_SETTINGS: &[&str] = &[
    "loss",
    "temperature",
    "tau_plus",
    "lr",
    "encoder",
    "dim",
    "hidden",
    "batch_size",
    "epochs",
    "positive",
    "strategy",
];

/// `dataset`, `n`, the group settings (as text) and `metric`: the leading columns of every
/// analysis table.
fn group_fields() -> Vec<Field> {
    let mut fields = vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("n", DataType::UInt32, false),
    ];
    fields.extend(
        GROUP_SETTINGS
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true)),
    );
    fields.push(Field::new("metric", DataType::Utf8, false));
    fields
}

fn list_of(item: DataType, nullable: bool) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, nullable)))
}

/// `negsweep analyze`: one row per group and k.
pub fn analysis() -> SchemaRef {
    let f64n = |name: &str| Field::new(name, DataType::Float64, true);
    let mut fields = group_fields();
    fields.extend([
        Field::new("k", DataType::UInt32, false),
        Field::new("seeds", DataType::UInt32, false),
        Field::new("mean", DataType::Float64, false),
        f64n("sd"),
        f64n("se"),
        f64n("t_lo"),
        f64n("t_hi"),
        f64n("boot_lo"),
        f64n("boot_hi"),
        Field::new("resamples", DataType::UInt32, false),
        Field::new("diff", DataType::Float64, false),
        f64n("diff_lo"),
        f64n("diff_hi"),
        f64n("p_holm"),
        f64n("p_best"),
        Field::new("in_best_set", DataType::Boolean, false),
        Field::new("is_best", DataType::Boolean, false),
        Field::new("is_one_se", DataType::Boolean, false),
        Field::new("is_theory", DataType::Boolean, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// `negsweep analyze`: one row per group.
pub fn analysis_groups() -> SchemaRef {
    let f64n = |name: &str| Field::new(name, DataType::Float64, true);
    let mut fields = group_fields();
    fields.extend([
        Field::new("seeds", DataType::UInt32, false),
        Field::new("seed_ids", list_of(DataType::UInt64, false), false),
        Field::new("ks", list_of(DataType::UInt32, false), false),
        Field::new("best_k", DataType::UInt32, false),
        Field::new("best_mean", DataType::Float64, false),
        f64n("best_t_lo"),
        f64n("best_t_hi"),
        f64n("best_boot_lo"),
        f64n("best_boot_hi"),
        f64n("best_p_best"),
        Field::new("best_set", list_of(DataType::UInt32, false), false),
        Field::new("one_se_k", DataType::UInt32, false),
        Field::new("theory_k", DataType::UInt32, true),
        Field::new("resamples", DataType::UInt32, false),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("holdout_seeds", list_of(DataType::UInt64, false), true),
        Field::new("holdout_k", DataType::UInt32, true),
        f64n("holdout_selection_mean"),
        f64n("holdout_mean"),
        f64n("holdout_lo"),
        f64n("holdout_hi"),
    ]);
    Arc::new(Schema::new(fields))
}

/// `negsweep analyze`: one row per family of groups spanning two N or more.
pub fn analysis_scaling() -> SchemaRef {
    let mut fields = group_fields();
    fields.remove(1); // no `n`: a family spans them
    fields.extend([
        Field::new("ns", list_of(DataType::UInt32, false), false),
        Field::new("best_k", list_of(DataType::UInt32, false), false),
        Field::new("theory_k", list_of(DataType::UInt32, true), false),
        Field::new("slope", DataType::Float64, false),
        Field::new("slope_lo", DataType::Float64, true),
        Field::new("slope_hi", DataType::Float64, true),
        Field::new("theory_slope", DataType::Float64, true),
        Field::new("resamples", DataType::UInt32, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// Descriptions of the leading columns of the analysis tables.
const GROUP_DOCS: &[(&str, &str)] = &[
    ("dataset", "Dataset name."),
    ("n", "Number of concepts."),
    (
        "loss",
        "The group's setting, as text (as in results); null when the results lack the column. Likewise `temperature`, `tau_plus`, `lr`, `encoder`, `dim`, `hidden`, `batch_size`, `epochs`, `positive`, `strategy`.",
    ),
    ("temperature", "As `loss`."),
    ("tau_plus", "As `loss`."),
    ("lr", "As `loss`."),
    ("encoder", "As `loss`."),
    ("dim", "As `loss`."),
    ("hidden", "As `loss`."),
    ("batch_size", "As `loss`."),
    ("epochs", "As `loss`."),
    ("positive", "As `loss`."),
    ("strategy", "As `loss`."),
    (
        "metric",
        "The metric analysed: `mean_acc`, `knn_acc`, `probe_top1` (higher is better) or `test_loss` (lower is better); also the `metric=` folder.",
    ),
];

fn describe(schema: &Schema, descriptions: &[(&str, &str)]) -> Vec<(String, String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let about = descriptions
                .iter()
                .find(|(n, _)| *n == f.name())
                .map(|(_, d)| (*d).to_owned())
                .unwrap_or_default();
            let ty = format!(
                "{}{}",
                f.data_type(),
                if f.is_nullable() { " (nullable)" } else { "" }
            );
            (f.name().clone(), ty, about)
        })
        .collect()
}

/// Every table, documented.
pub fn all() -> Vec<TableDoc> {
    let mut ex = describe(
        &examples(true, 0),
        &[
            ("id", "Example id: its row position in the table."),
            ("label", "Concept index in the source (0-based)."),
            ("concept", "Concept name."),
            (
                "split",
                "Split given by the source (`train`/`test`), or null when negsweep splits.",
            ),
            (
                "tokens",
                "Text datasets: token ids (below the vocabulary size in the `negsweep.vocab` metadata).",
            ),
        ],
    );
    ex.push((
        "pixels".into(),
        "FixedSizeBinary(side*side)".into(),
        "Image datasets, instead of `tokens`: grey u8 pixels, row-major; side in the `negsweep.side` metadata.".into(),
    ));
    vec![
        TableDoc {
            name: "examples",
            path: "datasets/<dataset>-<key>/examples.parquet",
            about: "One row per ingested example. Schema metadata: `negsweep.modality` (`text`/`image`), `negsweep.vocab` or `negsweep.side`.",
            columns: ex,
        },
        TableDoc {
            name: "vocab",
            path: "datasets/<dataset>-<key>/vocab.parquet",
            about: "Text datasets read from files or WordNet with a counted vocabulary (not with `tokenize.hash-buckets`): one row per token id. Beside it, `ingest.json` counts what the ingest kept and skipped.",
            columns: describe(
                &vocab(),
                &[
                    ("id", "Token id, as stored in `examples.tokens`."),
                    ("token", "The lowercase word."),
                    ("count", "Occurrences in the corpus."),
                ],
            ),
        },
        TableDoc {
            name: "concepts",
            path: "pools/<dataset>/n=<N>/seed=<seed>/<key>/concepts.parquet",
            about: "One row per chosen concept (N rows).",
            columns: describe(
                &concepts(),
                &[
                    (
                        "class",
                        "Class index 0..N-1 used in training and evaluation.",
                    ),
                    ("label", "Concept index in the examples table."),
                    ("concept", "Concept name."),
                    ("n_train", "Training examples of the concept."),
                    ("n_test", "Test examples of the concept."),
                    (
                        "rho",
                        "Measured class frequency in the training split (sums to 1).",
                    ),
                ],
            ),
        },
        TableDoc {
            name: "split",
            path: "pools/<dataset>/n=<N>/seed=<seed>/<key>/split.parquet",
            about: "One row per example of a chosen concept: the stratified train/test split.",
            columns: describe(
                &split(),
                &[
                    ("id", "Example id."),
                    ("class", "Class index 0..N-1."),
                    ("split", "`train` or `test`."),
                ],
            ),
        },
        TableDoc {
            name: "pool",
            path: "pools/<dataset>/n=<N>/seed=<seed>/<key>/pool.parquet",
            about: "One row per training anchor per pass. Schema metadata: `negsweep.k_max`, `negsweep.passes`. Each row draws from its own random stream, so the first k negatives do not depend on k_max.",
            columns: describe(
                &pool(),
                &[
                    ("row", "Row index (pass * n_train + position)."),
                    ("pass", "Pass over the training anchors (an epoch)."),
                    ("anchor", "Anchor example id."),
                    (
                        "positive",
                        "Another training example of the anchor's concept.",
                    ),
                    (
                        "negatives",
                        "k_max example ids drawn uniformly from the training split (collisions allowed), or for a `collision-free` pool from the training examples of the other concepts.",
                    ),
                    (
                        "collisions",
                        "Negatives (of all k_max) whose concept is the anchor's.",
                    ),
                    (
                        "covered",
                        "Distinct concepts other than the anchor's among the k_max negatives.",
                    ),
                ],
            ),
        },
        TableDoc {
            name: "pool_stats",
            path: "pools/<dataset>/n=<N>/seed=<seed>/<key>/stats.parquet",
            about: "Collision and coverage accounting of a pool, over all its rows, for the first k negatives at k = 1, 2, 4, ... and k_max, beside the theory's values for the measured class frequencies.",
            columns: describe(
                &pool_stats(),
                &[
                    ("k", "Negatives counted per anchor (the first k of each row)."),
                    ("anchors", "Pool rows (anchors x passes)."),
                    (
                        "collision_rate",
                        "Fraction of anchors with at least one negative of their own concept.",
                    ),
                    ("collisions_mean", "Mean colliding negatives per anchor."),
                    (
                        "collisions_hist",
                        "Anchors with 0, 1, 2, ... colliding negatives (trailing zeros dropped).",
                    ),
                    (
                        "covered_mean",
                        "Mean number of distinct other concepts among the negatives.",
                    ),
                    (
                        "covered_fraction",
                        "Mean fraction of the other N-1 concepts covered.",
                    ),
                    (
                        "coverage_rate",
                        "Fraction of anchors whose negatives cover all other N-1 concepts.",
                    ),
                    (
                        "tau_k",
                        "Theory for uniform draws: 1 - sum_c rho_c (1 - rho_c)^k.",
                    ),
                    ("expected_collisions", "Theory for uniform draws: k sum_c rho_c^2."),
                    (
                        "coverage_theory",
                        "Theory for uniform draws: probability of covering every other concept.",
                    ),
                ],
            ),
        },
        TableDoc {
            name: "results",
            path: "results/dataset=<dataset>/n=<N>/k=<k>/part-<point_id>.parquet (hive partitions, every point ever computed into the output); results.arrow holds the rows of the current plan's points only",
            about: "One row per finished sweep point. `dataset`, `n` and `k` are hive partition columns, in the path of each part file and stored in the file too (a dataset named `007` stays a string). `run` and `collect` upgrade part files written by older versions in place (adding the partition columns and every later column with the default below), so every part file has this schema.",
            columns: describe(
                &results(true),
                &[
                    ("dataset", "Dataset name (partition)."),
                    ("n", "Number of concepts N (partition)."),
                    ("k", "Negatives per anchor (partition)."),
                    (
                        "point_id",
                        "Hash of the point's resolved parameters and input keys.",
                    ),
                    ("seed", "Seed of concepts, split, pool and initial weights."),
                    ("loss", "`nce`, `infonce` or `debiased`."),
                    (
                        "temperature",
                        "Temperature of `infonce` and `debiased` (1 for `nce`).",
                    ),
                    (
                        "tau_plus",
                        "Class prior of the debiased loss (0 for other losses and for results written before this column existed).",
                    ),
                    ("lr", "Adam learning rate."),
                    ("encoder", "`embedding-bag`, `gru`, `mlp` or `cnn`."),
                    ("dim", "Representation dimension."),
                    ("hidden", "Embedding or hidden width."),
                    ("batch_size", "Anchors per step."),
                    ("epochs", "Passes over the training anchors."),
                    (
                        "positive",
                        "Positive mode: `same-concept` or `augmentation` (results written before this column existed read as `same-concept`).",
                    ),
                    (
                        "strategy",
                        "Negative-sampling strategy: `uniform`, `collision-free`, `in-batch` or `hard` (older results read as `uniform`).",
                    ),
                    (
                        "mean_acc",
                        "N-way top-1 accuracy of the mean classifier on the test split.",
                    ),
                    (
                        "knn_acc",
                        "Top-1 accuracy of the kNN vote (eval.knn neighbours, cosine) on the test split.",
                    ),
                    (
                        "probe_top1",
                        "Top-1 accuracy of a linear probe (softmax regression on frozen, standardised training features; eval.probe-epochs) on the test split; NaN when the probe is off.",
                    ),
                    (
                        "probe_top5",
                        "Top-5 accuracy of the same probe (1 when N <= 5).",
                    ),
                    (
                        "test_loss",
                        "Contrastive loss on test anchors with k test negatives.",
                    ),
                    (
                        "train_loss",
                        "Mean training loss over the last 10% of steps.",
                    ),
                    (
                        "collision_rate",
                        "Fraction of training anchors with at least one collision among the k negatives they were trained with (for `in-batch` and `hard`, the negatives actually used).",
                    ),
                    ("collisions_mean", "Mean colliding negatives per anchor."),
                    (
                        "coverage_rate",
                        "Fraction of anchors whose k negatives cover all other N-1 concepts.",
                    ),
                    (
                        "covered_fraction",
                        "Mean fraction of the other N-1 concepts covered.",
                    ),
                    (
                        "tau_k",
                        "Theory: 1 - sum_c rho_c (1 - rho_c)^k with measured rho.",
                    ),
                    ("expected_collisions", "Theory: k sum_c rho_c^2."),
                    (
                        "coverage_theory",
                        "Theory: probability that k draws from the measured rho cover every concept other than the anchor's, the anchor's concept drawn from rho (NaN in results written before this column existed). The theory describes uniform draws: compare it with `coverage_rate` of `uniform` points.",
                    ),
                    (
                        "ash_coefficient",
                        "Theory: Ash et al.'s bound coefficient 2 max(1, 2(N-1)H_{N-1}/k) / (1 - tau_k).",
                    ),
                    (
                        "arora_coefficient",
                        "Theory: Arora et al.'s coefficient 1 / ((1 - tau_k) coverage_theory); infinite when coverage is 0.",
                    ),
                    ("n_train", "Training examples."),
                    ("n_test", "Test examples."),
                    ("steps", "Optimiser steps."),
                    (
                        "train_seconds",
                        "Wall time of training (initialisation and steps).",
                    ),
                    (
                        "step_seconds",
                        "Wall time inside optimiser steps; the rest of total_seconds is per-point overhead.",
                    ),
                    ("eval_seconds", "Wall time of evaluation."),
                    (
                        "total_seconds",
                        "Wall time of the whole point, writing excluded.",
                    ),
                    ("config_hash", "Hash of the resolved pipeline."),
                    ("data_hash", "blake3 of the ingested examples file."),
                    ("version", "negsweep version."),
                    (
                        "git_revision",
                        "negsweep's git revision at build time, when known.",
                    ),
                    ("finished_at", "Unix time (seconds) the point finished."),
                ],
            ),
        },
        TableDoc {
            name: "analysis",
            path: "analysis/metric=<metric>/k.parquet",
            about: "Written by `run`, `collect` (metric `mean_acc`) and `negsweep analyze`. One row per group (points differing only by k and seed: dataset x N x every other setting) and k, over the seeds every k of the group has. Intervals are 95%; comparisons are paired seed by seed. Non-finite statistics (one seed) are null.",
            columns: describe(
                &analysis(),
                &[
                    GROUP_DOCS,
                    &[
                        ("k", "Negatives per anchor."),
                        ("seeds", "Seeds analysed (the same for every k of the group)."),
                        ("mean", "Mean of the metric over the seeds."),
                        ("sd", "Sample standard deviation (n - 1)."),
                        ("se", "Standard error of the mean, sd / sqrt(seeds)."),
                        ("t_lo", "Lower end of the t-interval of the mean: mean - t(0.975, seeds - 1) se."),
                        ("t_hi", "Upper end of the t-interval."),
                        ("boot_lo", "Lower end of the percentile bootstrap interval of the mean (seeds resampled with replacement, one resample shared by every k)."),
                        ("boot_hi", "Upper end of the bootstrap interval."),
                        ("resamples", "Bootstrap resamples."),
                        ("diff", "Mean per-seed difference from the best k (0 for the best; negative when worse for higher-is-better metrics)."),
                        ("diff_lo", "Lower end of the paired t-interval of `diff`."),
                        ("diff_hi", "Upper end of the paired t-interval of `diff`."),
                        ("p_holm", "Two-sided paired t-test against the best k, Holm-adjusted over the group's other k (1 for the best; null with one seed)."),
                        ("p_best", "Fraction of bootstrap resamples in which this k has the best mean (ties share)."),
                        ("in_best_set", "Cannot be told apart from the best: the best, or p_holm >= 0.05 (or no test possible)."),
                        ("is_best", "This k has the best mean."),
                        ("is_one_se", "The one-standard-error k: the smallest k within one standard error of the best mean (Hastie, Tibshirani and Friedman, ESL 7.10)."),
                        ("is_theory", "The theory's k*: the swept k minimising Ash et al.'s coefficient with the measured tau_k."),
                    ],
                ]
                .concat(),
            ),
        },
        TableDoc {
            name: "analysis_groups",
            path: "analysis/metric=<metric>/groups.parquet",
            about: "One row per group: the verdict, the best k with its intervals, the best set, the one-standard-error k, the theory's k*, and with `analyze --holdout-seeds M` the k chosen on the other seeds judged on the M largest seeds.",
            columns: describe(
                &analysis_groups(),
                &[
                    GROUP_DOCS,
                    &[
                        ("seeds", "Seeds analysed."),
                        ("seed_ids", "Those seeds, ascending."),
                        ("ks", "The group's k, ascending."),
                        ("best_k", "The k with the best mean."),
                        ("best_mean", "Its mean."),
                        ("best_t_lo", "Its t-interval, lower end."),
                        ("best_t_hi", "Its t-interval, upper end."),
                        ("best_boot_lo", "Its bootstrap interval, lower end."),
                        ("best_boot_hi", "Its bootstrap interval, upper end."),
                        ("best_p_best", "P(best k is best) over the bootstrap resamples."),
                        ("best_set", "The k that cannot be told apart from the best (paired t-tests, Holm, alpha 0.05)."),
                        ("one_se_k", "The smallest k within one standard error of the best mean."),
                        ("theory_k", "The theory's k* among the group's k (null without tau_k)."),
                        ("resamples", "Bootstrap resamples."),
                        ("verdict", "`k* = 32, best set 16..64, one-standard-error k = 16 (theory k* = 64)`."),
                        ("holdout_seeds", "The held-out seeds (the M largest); null without --holdout-seeds or with M >= seeds."),
                        ("holdout_k", "The k with the best mean on the other seeds."),
                        ("holdout_selection_mean", "Its mean on the seeds that chose it (biased in its favour)."),
                        ("holdout_mean", "Its mean on the held-out seeds: the unbiased estimate."),
                        ("holdout_lo", "t-interval of holdout_mean, lower end (null with one held-out seed)."),
                        ("holdout_hi", "t-interval of holdout_mean, upper end."),
                    ],
                ]
                .concat(),
            ),
        },
        TableDoc {
            name: "analysis_scaling",
            path: "analysis/metric=<metric>/scaling.parquet",
            about: "One row per family of groups (the same dataset and settings) spanning two N or more: how best k scales with N. The slope is the least-squares slope of log2 best-k on log2 N; its interval resamples the seeds (shared across N) and recomputes each N's best k.",
            columns: describe(
                &analysis_scaling(),
                &[
                    GROUP_DOCS,
                    &[
                        ("ns", "The N values, ascending."),
                        ("best_k", "Best k per N, on all seeds."),
                        ("theory_k", "The theory's k* per N (null where unknown)."),
                        ("slope", "Slope of log2 best-k on log2 N (1: best k proportional to N)."),
                        ("slope_lo", "95% percentile bootstrap interval of the slope, lower end."),
                        ("slope_hi", "Upper end."),
                        ("theory_slope", "Slope of log2 theory k* on log2 N, when every N has one."),
                        ("resamples", "Bootstrap resamples."),
                    ],
                ]
                .concat(),
            ),
        },
        TableDoc {
            name: "summary",
            path: "summary.parquet",
            about: "Mean and sample standard deviation over seeds, per dataset x N x k (x every other swept parameter). Computed with Polars from results.arrow.",
            columns: [
                ("dataset", "String", "Dataset name."),
                ("n", "UInt32", "Number of concepts."),
                ("k", "UInt32", "Negatives per anchor."),
                (
                    "<swept>",
                    "as in results",
                    "Each other swept parameter (loss, lr, ...), when swept.",
                ),
                ("seeds", "UInt32", "Points (seeds) aggregated."),
                ("mean_acc", "Float64", "Mean of mean_acc."),
                (
                    "mean_acc_std",
                    "Float64 (nullable)",
                    "Sample std of mean_acc (null for one seed).",
                ),
                ("knn_acc", "Float64", "Mean of knn_acc."),
                (
                    "knn_acc_std",
                    "Float64 (nullable)",
                    "Sample std of knn_acc.",
                ),
                ("probe_top1", "Float64", "Mean of probe_top1."),
                ("probe_top5", "Float64", "Mean of probe_top5."),
                ("test_loss", "Float64", "Mean of test_loss."),
                ("collision_rate", "Float64", "Mean measured collision rate."),
                (
                    "tau_k",
                    "Float64",
                    "Mean theoretical collision probability.",
                ),
                ("coverage_rate", "Float64", "Mean measured coverage rate."),
            ]
            .iter()
            .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
            .collect(),
        },
        TableDoc {
            name: "best_k",
            path: "best_k.parquet",
            about: "Per dataset x N (x other swept parameters): the k with the highest mean mean_acc over seeds.",
            columns: [
                ("dataset", "String", "Dataset name."),
                ("n", "UInt32", "Number of concepts."),
                (
                    "<swept>",
                    "as in results",
                    "Each other swept parameter, when swept.",
                ),
                ("best_k", "UInt32", "k with the highest mean accuracy."),
                ("mean_acc", "Float64", "Its mean accuracy over seeds."),
                (
                    "mean_acc_std",
                    "Float64 (nullable)",
                    "Its sample std over seeds.",
                ),
                (
                    "k_theory",
                    "UInt32 (nullable)",
                    "The swept k minimising Ash et al.'s bound coefficient 2 max(1, 2(N-1)H_{N-1}/k) / (1 - tau_k), with tau_k from the measured class frequencies: the theory's best k.",
                ),
            ]
            .iter()
            .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
            .collect(),
        },
    ]
}

/// Markdown page of a table.
pub fn markdown(doc: &TableDoc) -> String {
    let mut out = format!(
        "<!-- Generated by `negsweep schema`; do not edit. -->\n# Table `{}`\n\n{}\n\nWritten to `{}`.\n\n| column | type | meaning |\n|---|---|---|\n",
        doc.name, doc.about, doc.path
    );
    for (name, ty, about) in &doc.columns {
        out.push_str(&format!("| `{name}` | {ty} | {about} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_column_is_described() {
        for doc in super::all() {
            for (name, _, about) in &doc.columns {
                assert!(!about.is_empty(), "{}.{name} has no description", doc.name);
            }
        }
    }
}
