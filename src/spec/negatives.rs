//! `[negatives]`: how negatives are drawn, and what the loss does with false ones.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[negatives]`: the negative pools.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NegativesSpec {
    /// Negatives per anchor.
    #[schemars(extend("default" = NegativesSpec::K))]
    pub k: Option<u32>,
    /// Negatives drawn per anchor in the pool; a point with k <= k-max uses the first k.
    /// Default: the largest k of the sweep.
    pub k_max: Option<u32>,
    /// How negatives are drawn.
    #[schemars(extend("default" = NegativesSpec::STRATEGY))]
    pub strategy: Option<Strategy>,
    /// Hard-negative mining (`strategy = "hard"`).
    #[serde(default)]
    pub hard: HardSpec,
    /// What the loss does with negatives the detector flags as false negatives (negatives of
    /// the anchor's own concept; Huynh et al., WACV 2022).
    #[schemars(extend("default" = NegativesSpec::FALSE_NEGATIVES))]
    pub false_negatives: Option<FalseNegatives>,
    /// How false negatives are detected when `false-negatives` is not `"keep"`.
    #[schemars(extend("default" = NegativesSpec::DETECTOR))]
    pub detector: Option<Detector>,
    /// `detector = "similarity"`: a negative is flagged when its mean cosine similarity to the
    /// anchor and the anchor's positive (the support set), under the model being trained, is
    /// at least this, in [-1, 1].
    #[schemars(extend("default" = NegativesSpec::DETECTOR_THRESHOLD))]
    pub detector_threshold: Option<f64>,
    /// `strategy = "queue"`: momentum m of the key encoder, `key <- m key + (1 - m) encoder`
    /// after every step, in [0, 1).
    #[schemars(extend("default" = NegativesSpec::MOMENTUM))]
    pub momentum: Option<f64>,
}

impl NegativesSpec {
    /// Default of `k`.
    pub const K: u32 = 16;
    /// Default of `strategy`.
    pub const STRATEGY: Strategy = Strategy::Uniform;
    /// Default of `false-negatives`.
    pub const FALSE_NEGATIVES: FalseNegatives = FalseNegatives::Keep;
    /// Default of `detector`.
    pub const DETECTOR: Detector = Detector::Oracle;
    /// Default of `detector-threshold`.
    pub const DETECTOR_THRESHOLD: f64 = 0.7;
    /// Default of `momentum`: MoCo's 0.999 suits hundreds of thousands of steps; sweeps here
    /// take hundreds.
    pub const MOMENTUM: f64 = 0.99;
}

/// What the loss does with detected false negatives (Huynh et al., "Boosting Contrastive
/// Self-Supervised Learning with False Negative Cancellation", WACV 2022, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FalseNegatives {
    /// Every negative stays a negative (the theory's model).
    Keep,
    /// Detected false negatives leave the loss's denominator (every loss).
    Eliminate,
    /// Detected false negatives become extra positives: the loss averages the positive's term
    /// and theirs, each against the full denominator (`nce` and `infonce` only).
    Attract,
}

impl FalseNegatives {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            FalseNegatives::Keep => "keep",
            FalseNegatives::Eliminate => "eliminate",
            FalseNegatives::Attract => "attract",
        }
    }
}

/// How false negatives are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Detector {
    /// The true concepts: exactly the negatives that share the anchor's concept (the concepts
    /// pools are drawn by; with `concepts.label-noise`, the noisy ones).
    Oracle,
    /// Mean cosine similarity to the support set {anchor, positive} under the model being
    /// trained, at least `negatives.detector-threshold` (Huynh et al. 2022, section 3.2, with
    /// the anchor's positive as its support view).
    Similarity,
}

impl Detector {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Oracle => "oracle",
            Detector::Similarity => "similarity",
        }
    }
}

/// `[negatives.hard]`: nearest neighbours of the anchor under a reference encoder, from a rank
/// window (sentence-transformers' `range_min` / `range_max`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HardSpec {
    /// Best rank kept (1 = the nearest training example other than the anchor and its
    /// positive); raise it to skip likely false negatives. Default: 1.
    pub min_rank: Option<u32>,
    /// Worst rank kept; each anchor's k negatives are drawn without replacement from ranks
    /// `min-rank..=max-rank`. Default: 64.
    pub max_rank: Option<u32>,
    /// Reference encoder: `"self"` (the model being trained, re-encoded every `refresh` steps)
    /// or a checkpoint of an earlier point with the same encoder settings (a safetensors file:
    /// a path relative to the output location, such as `models/<dataset>/<point>.safetensors`,
    /// or an object store URL). Default: `"self"`.
    pub reference: Option<String>,
    /// Steps between re-encodings of the training set when `reference = "self"`. Default: 50.
    pub refresh: Option<u32>,
    /// Keep only candidates whose similarity to the anchor under the reference is at most this
    /// (dot product for `nce`, cosine for the temperature losses): near-duplicates of the
    /// anchor are likely false negatives. Default: no bound.
    pub max_score: Option<f64>,
    /// Keep only candidates at least this similar. Default: no bound.
    pub min_score: Option<f64>,
}

/// Negative-sampling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// k draws from the training marginal; collisions with the anchor's concept allowed (the
    /// theory's model).
    Uniform,
    /// k draws from the training examples of the other concepts: the oracle that removes
    /// false negatives.
    CollisionFree,
    /// The other anchors of the minibatch (SimCLR style), k of them drawn without replacement,
    /// so batch size and k are separate knobs (k < batch size).
    InBatch,
    /// Nearest neighbours of the anchor under a reference encoder (`[negatives.hard]`).
    Hard,
    /// MoCo's queue (He et al. 2020): the last k keys, earlier batches' positives encoded by
    /// a momentum copy of the encoder (`negatives.momentum`); k is independent of the batch
    /// size.
    Queue,
}

impl Strategy {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Uniform => "uniform",
            Strategy::CollisionFree => "collision-free",
            Strategy::InBatch => "in-batch",
            Strategy::Hard => "hard",
            Strategy::Queue => "queue",
        }
    }
}
