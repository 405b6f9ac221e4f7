//! One sweep point's resolved settings: [`SweepPoint`] and the [`HardConfig`] it carries.
//!
//! `plan` builds these (expansion and ids live in `plan::sweep`); `negatives`, `stages`, `exec` and
//! `report` read them. They sit below both `plan` and `negatives` because the grid asks each
//! strategy to check it while a strategy reads its point.

use serde::Serialize;

use crate::spec::{
    Detector, DropTest, EncoderKind, FalseNegatives, Loss, PositiveMode, Precision, Settle,
    Strategy,
};

/// One point of the sweep: everything that determines one trained encoder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// Hash of the resolved parameters and the input data's key.
    pub id: String,
    /// Index into [`crate::plan::Plan::datasets`]. Not part of the id: the dataset is identified by
    /// its content key, hashed in through `pool`, so reordering `[[datasets]]` keeps every id.
    #[serde(serialize_with = "position_free")]
    pub dataset: usize,
    /// Number of concepts; 0: every concept with enough examples.
    pub n: u32,
    /// Seed for concepts, split, pool and initial weights.
    pub seed: u64,
    /// Negatives per anchor.
    pub k: u32,
    /// Zipf exponent of the class prior. Not hashed into the id itself: the pool key holds it
    /// (when not 0), so ids from before it was an axis stay valid.
    #[serde(skip)]
    pub prior_skew: f64,
    /// Label-noise rate; like `prior_skew`, in the id through the pool key.
    #[serde(skip)]
    pub label_noise: f64,
    /// Loss.
    pub loss: Loss,
    /// Temperature (InfoNCE only; NaN-free, 1 for `nce`).
    pub temperature: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Representation dimension.
    pub dim: u32,
    /// Hidden width.
    pub hidden: u32,
    /// Anchors per step.
    pub batch_size: u32,
    /// Passes over the training anchors.
    pub epochs: u32,
    /// Encoder.
    pub encoder: EncoderKind,
    /// CNN blocks' channels (empty for other encoders).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<u32>,
    /// Decoupled weight decay (left out of the id when 0, so older ids stay valid).
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
    /// Text encoders' dropout rate (left out of the id when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropout: f64,
    /// Number format of the dense layers' products (left out of the id for f32).
    #[serde(skip_serializing_if = "is_f32")]
    pub precision: Precision,
    /// Where positives come from (left out of the id for `same-concept`).
    #[serde(skip_serializing_if = "is_same_concept")]
    pub positive: PositiveMode,
    /// How negatives are drawn (left out of the id for `uniform`).
    #[serde(skip_serializing_if = "is_uniform")]
    pub strategy: Strategy,
    /// Hard-negative settings (`hard` points only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard: Option<HardConfig>,
    /// Class prior of the debiased and hcl losses (left out of the id for other losses).
    #[serde(skip_serializing_if = "is_zero")]
    pub tau_plus: f64,
    /// Hardness concentration of the hcl loss (left out of the id for other losses, and for 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub beta: f64,
    /// What the loss does with detected false negatives (left out of the id for `keep`).
    #[serde(skip_serializing_if = "is_keep")]
    pub false_negatives: FalseNegatives,
    /// Weight of the negatives' terms (`sigmoid` points only; left out of the id for others).
    #[serde(skip_serializing_if = "is_zero")]
    pub negative_weight: f64,
    /// Momentum of the key encoder (`queue` points only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// The false-negative detector (points that do not keep every negative only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<DetectorConfig>,
    /// Key of the negative pool this point trains on (in-batch and hard points take its
    /// anchors and positives).
    pub pool: String,
}

/// Serialises a dataset index as 0, the index the first dataset always had in ids, so ids written
/// before datasets were identified by content alone stay valid for the first dataset.
fn position_free<S: serde::Serializer>(_: &usize, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(0)
}

fn is_uniform(s: &Strategy) -> bool {
    *s == Strategy::Uniform
}

fn is_keep(f: &FalseNegatives) -> bool {
    *f == FalseNegatives::Keep
}

pub(crate) fn is_f32(p: &Precision) -> bool {
    *p == Precision::F32
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_same_concept(p: &PositiveMode) -> bool {
    *p == PositiveMode::SameConcept
}

impl SweepPoint {
    /// N for messages: `all` when every eligible concept is used.
    pub fn n_label(&self) -> String {
        if self.n == 0 {
            "all".into()
        } else {
            self.n.to_string()
        }
    }
}

/// Resolved `[negatives.hard]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardConfig {
    /// Best rank kept (1-based).
    pub min_rank: u32,
    /// Worst rank kept.
    pub max_rank: u32,
    /// Checkpoint of the reference encoder; `None`: the model being trained.
    pub reference: Option<String>,
    /// Steps between re-encodings when the reference is the model being trained.
    pub refresh: u32,
    /// Largest similarity kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_score: Option<f64>,
    /// Smallest similarity kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
}

/// Resolved false-negative detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectorConfig {
    /// Which detector.
    pub detector: Detector,
    /// Cosine threshold of the similarity detector (`None` for the oracle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Level of the final best set, as `analyze` reports it.
pub const BEST_SET_LEVEL: f64 = 0.05;

/// Resolved `[sweep.adaptive]` (the rounds themselves are `crate::adaptive`'s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdaptiveConfig {
    /// Seeds every k gets in round 1 (at least 2: a comparison needs two).
    pub initial_seeds: usize,
    /// Seeds added per round to the k values still in play.
    pub seeds_per_round: usize,
    /// The test behind a drop.
    pub drop_test: DropTest,
    /// A k leaves when its Holm-adjusted p that it is worse than the round's best k by more
    /// than `drop_margin` is below this.
    pub drop_level: f64,
    /// How much worse than the round's best a k must be shown to be to leave (metric units).
    pub drop_margin: f64,
    /// When a group is done.
    pub settle: Settle,
    /// With [`Settle::Resolved`]: a k stays open while the predictive power that the full
    /// budget's test tells it apart from the best is at least this.
    pub settle_power: f64,
    /// With [`Settle::Stable`]: consecutive rounds the best set must stay the same.
    pub stable_rounds: usize,
}

impl AdaptiveConfig {
    /// The largest number of rounds a group of `seeds` seeds can take.
    pub fn max_rounds(&self, seeds: usize) -> usize {
        let first = self.initial_seeds.min(seeds);
        1 + (seeds - first).div_ceil(self.seeds_per_round.max(1))
    }

    /// The bound on the chance that the final best set misses the true best k, over at most
    /// [`AdaptiveConfig::max_rounds`] rounds: `rounds drop-level + 0.05`.
    pub fn promised_error(&self, seeds: usize) -> f64 {
        self.max_rounds(seeds) as f64 * self.drop_level + BEST_SET_LEVEL
    }
}
