//! Arrow schemas of every table negsweep writes, with the column descriptions that
//! `negsweep schema` renders into `schemas/<table>.md`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::columns::{COLUMNS, Column, MEANS};

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
/// `run` or `collect` upgraded them). The columns are declared once, in `stages::columns`.
pub fn results(partitions: bool) -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .filter(|c| partitions || !c.is_partition())
        .map(Column::field)
        .collect();
    Arc::new(Schema::new(fields))
}

/// Columns that, with `dataset` and `n`, identify a group of points differing only by k and
/// seed: every setting but k and the seed.
pub const GROUP_SETTINGS: &[&str] = &[
    "prior_skew",
    "label_noise",
    "loss",
    "temperature",
    "tau_plus",
    "beta",
    "lr",
    "encoder",
    "dim",
    "hidden",
    "batch_size",
    "epochs",
    "positive",
    "strategy",
    "false_negatives",
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
        "The group's setting, as text (as in results); null when the results lack the column. Likewise `prior_skew`, `label_noise`, `temperature`, `tau_plus`, `beta`, `lr`, `encoder`, `dim`, `hidden`, `batch_size`, `epochs`, `positive`, `strategy`, `false_negatives`.",
    ),
    ("temperature", "As `loss`."),
    ("prior_skew", "As `loss`."),
    ("label_noise", "As `loss`."),
    ("tau_plus", "As `loss`."),
    ("beta", "As `loss`."),
    ("lr", "As `loss`."),
    ("encoder", "As `loss`."),
    ("dim", "As `loss`."),
    ("hidden", "As `loss`."),
    ("batch_size", "As `loss`."),
    ("epochs", "As `loss`."),
    ("positive", "As `loss`."),
    ("strategy", "As `loss`."),
    ("false_negatives", "As `loss`."),
    (
        "metric",
        "The metric analysed: `mean_acc`, `knn_acc`, `probe_top1` (higher is better) or `test_loss` (lower is better); also the `metric=` folder.",
    ),
];

/// A field's type as the schema pages show it.
fn type_of(f: &Field) -> String {
    let nullable = if f.is_nullable() { " (nullable)" } else { "" };
    format!("{}{nullable}", f.data_type())
}

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
            (f.name().clone(), type_of(f), about)
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
            columns: COLUMNS
                .iter()
                .map(|c| (c.name.into(), type_of(&c.field()), c.description()))
                .collect(),
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
                        ("verdict", "`k* = 32, best set 16..64, one-standard-error k = 16 (theory k* = 64)`: the best set as a range only where it holds every k of the group's grid between its ends, a k an adaptive round dropped included, else listed (`16, 64`)."),
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
            ]
            .iter()
            .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
            .chain(MEANS.iter().flat_map(|m| {
                let c = m.column;
                let mean = (c.into(), "Float64".into(), format!("Mean of `{c}` over the seeds."));
                let std = m.std.then(|| {
                    (
                        format!("{c}_std"),
                        "Float64 (nullable)".into(),
                        format!("Sample standard deviation of `{c}` over the seeds (null for one seed)."),
                    )
                });
                std::iter::once(mean).chain(std)
            }))
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
        TableDoc {
            name: "adaptive",
            path: "adaptive.parquet",
            about: "Adaptive sweeps (`[sweep.adaptive]`): every decision of every round, one row each, rewritten by each run from the results (the rounds are replayed from them). `analyze` and the report leave out the points of dropped k values.",
            columns: describe(
                &adaptive_decisions(),
                &[
                    ("dataset", "Dataset name."),
                    ("n", "N as planned (0: every concept)."),
                    (
                        "group",
                        "The group: dataset, N and every other swept setting, as text.",
                    ),
                    ("round", "Round (from 1) after which it was decided."),
                    ("k", "The k a drop concerns; null for group decisions."),
                    (
                        "action",
                        "`drop` (the k gets no more seeds), `extend` (the k values in play get more) or `settle` (the group is done).",
                    ),
                    ("seeds", "Seeds each k in play had when it was decided."),
                    (
                        "p_holm",
                        "Drops: the Holm-adjusted p of the drop test (`drop-test`: pooled two-way contrast or paired t-test) against the round's best k; null otherwise.",
                    ),
                    ("reason", "Why, in words."),
                    ("points", "Drops: ids of every point of the dropped k, each seed of the budget (the analysis leaves them out)."),
                ],
            ),
        },
    ]
}

/// The decisions table of an adaptive sweep (`adaptive.parquet`).
pub fn adaptive_decisions() -> SchemaRef {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("n", DataType::UInt32, false),
        Field::new("group", DataType::Utf8, false),
        Field::new("round", DataType::UInt32, false),
        Field::new("k", DataType::UInt32, true),
        Field::new("action", DataType::Utf8, false),
        Field::new("seeds", DataType::UInt32, false),
        Field::new("p_holm", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("points", list, false),
    ]))
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
