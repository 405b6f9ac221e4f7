//! `[sweep]`: the grid, and `[sweep.adaptive]`, its rounds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FalseNegatives, Loss, PositiveMode, Strategy};

/// `[sweep]`: the grid. Each key given here replaces the single value of its section; the
/// sweep is the cartesian product of all given keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SweepSpec {
    /// Negatives per anchor (`negatives.k`).
    pub k: Option<Vec<u32>>,
    /// Number of concepts (`concepts.n`).
    pub n: Option<Vec<u32>>,
    /// Seeds: each picks its own concepts, split, pool and initial weights.
    pub seed: Option<Vec<u64>>,
    /// Zipf exponents of the class prior (`concepts.prior-skew`).
    pub prior_skew: Option<Vec<f64>>,
    /// Label-noise rates (`concepts.label-noise`).
    pub label_noise: Option<Vec<f64>>,
    /// Losses (`train.loss`).
    pub loss: Option<Vec<Loss>>,
    /// InfoNCE temperatures (`train.temperature`).
    pub temperature: Option<Vec<f64>>,
    /// Class priors of the debiased and hcl losses (`train.tau-plus`); other losses ignore it.
    pub tau_plus: Option<Vec<f64>>,
    /// Hardness concentrations of the hcl loss (`train.beta`); other losses ignore it.
    pub beta: Option<Vec<f64>>,
    /// Learning rates (`train.lr`).
    pub lr: Option<Vec<f64>>,
    /// Representation dimensions (`train.dim`).
    pub dim: Option<Vec<u32>>,
    /// Hidden widths (`train.hidden`).
    pub hidden: Option<Vec<u32>>,
    /// Batch sizes (`train.batch-size`).
    pub batch_size: Option<Vec<u32>>,
    /// Epochs (`train.epochs`).
    pub epochs: Option<Vec<u32>>,
    /// Positive modes (`train.positive`).
    pub positive: Option<Vec<PositiveMode>>,
    /// Negative-sampling strategies (`negatives.strategy`).
    pub strategy: Option<Vec<Strategy>>,
    /// False-negative handling (`negatives.false-negatives`).
    pub false_negatives: Option<Vec<FalseNegatives>>,
    /// Adaptive rounds instead of the full grid: the table's presence turns them on.
    pub adaptive: Option<AdaptiveSpec>,
}

/// `[sweep.adaptive]`: rounds over each group's k values that stop spending seeds on k values
/// whose answer is settled (see the README's "Adaptive sweeps"). The seeds of `sweep.seed`
/// are the budget per k; the metric is the mean classifier's accuracy.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdaptiveSpec {
    /// Seeds every k gets in round 1 (the first of `sweep.seed`), at least 2.
    #[schemars(extend("default" = AdaptiveSpec::INITIAL_SEEDS))]
    pub initial_seeds: Option<u32>,
    /// Seeds added per round to the k values still in play.
    #[schemars(extend("default" = AdaptiveSpec::SEEDS_PER_ROUND))]
    pub seeds_per_round: Option<u32>,
    /// The test a k is dropped on: `pooled` (the two-way k x seed model's residual variance,
    /// shared by the k values in play) or `paired` (each k's own paired t-test).
    #[schemars(extend("default" = "pooled"))]
    pub drop_test: Option<DropTest>,
    /// A k gets no more seeds when its Holm-adjusted p that it is worse than the round's best
    /// k by more than `drop-margin` is below this, in (0, 0.05] (at most the best set's level,
    /// so that a dropped k is never in the best set).
    #[schemars(extend("default" = AdaptiveSpec::DROP_LEVEL))]
    pub drop_level: Option<f64>,
    /// A drop needs the k to be worse than the round's best by more than this (in the
    /// metric's units, accuracy here), at `drop-level`: a k behind by a consistent but
    /// negligible amount stays in play. In [0, 1).
    #[schemars(extend("default" = AdaptiveSpec::DROP_MARGIN))]
    pub drop_margin: Option<f64>,
    /// When a group is done: `resolved` (no k in play could still change the best set the
    /// full budget of seeds would give) or `stable` (the best set unchanged for
    /// `stable-rounds` rounds).
    #[schemars(extend("default" = "resolved"))]
    pub settle: Option<Settle>,
    /// With `settle = "resolved"`: a k stays open (gets more seeds) while the predictive
    /// power that the full budget's test tells it apart from the best k is at least this, in
    /// (0, 1).
    #[schemars(extend("default" = AdaptiveSpec::SETTLE_POWER))]
    pub settle_power: Option<f64>,
    /// With `settle = "stable"`: consecutive rounds a group's best set must stay the same.
    #[schemars(extend("default" = AdaptiveSpec::STABLE_ROUNDS))]
    pub stable_rounds: Option<u32>,
}

impl AdaptiveSpec {
    /// Default of `initial-seeds`.
    pub const INITIAL_SEEDS: u32 = 2;
    /// Default of `seeds-per-round`.
    pub const SEEDS_PER_ROUND: u32 = 1;
    /// Default of `drop-level`.
    pub const DROP_LEVEL: f64 = 0.01;
    /// Default of `stable-rounds`.
    pub const STABLE_ROUNDS: u32 = 1;
    /// Default of `drop-margin`.
    pub const DROP_MARGIN: f64 = 0.005;
    /// Default of `settle-power`.
    pub const SETTLE_POWER: f64 = 0.1;
}

/// The test a round drops a k on (`drop-test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DropTest {
    /// The two-way (k x seed) model's contrast against the best, with the residual variance
    /// pooled over the k values in play: (K - 1)(n - 1) degrees of freedom, so two seeds can
    /// already decide.
    Pooled,
    /// The paired t-test of the k against the best on their seeds: n - 1 degrees of freedom.
    Paired,
}

/// When a group's rounds end (`settle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Settle {
    /// When no k in play could still change the best set that the full budget of seeds would
    /// give: the answer matches the full grid's.
    Resolved,
    /// When the best set has stayed the same for `stable-rounds` rounds: cheaper, and a
    /// superset of the full grid's when seeds are few.
    Stable,
}
