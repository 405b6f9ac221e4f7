//! Wire types of a pipeline file (`pipelines/*.toml`). No logic lives here: `plan` resolves them.
//!
//! Every struct denies unknown keys, so a typo is an error that names the line and lists the
//! accepted keys.

mod datasets;
mod negatives;
mod overrides;
mod problems;
mod sweep;

pub use datasets::*;
pub use negatives::*;
pub use overrides::{apply_overrides, override_origin};
use problems::every_problem;
pub use problems::{Problem, problem_list};
pub use sweep::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineSpec {
    /// Name, output location and base seed.
    pub pipeline: PipelineSection,
    /// The datasets to ingest; every sweep point runs on each of them.
    pub datasets: Vec<DatasetSpec>,
    /// How the N concepts are chosen and split.
    #[serde(default)]
    pub concepts: ConceptsSpec,
    /// How negative pools are drawn.
    #[serde(default)]
    pub negatives: NegativesSpec,
    /// Encoder, loss and optimiser.
    #[serde(default)]
    pub train: TrainSpec,
    /// Downstream evaluation.
    #[serde(default)]
    pub eval: EvalSpec,
    /// The grid: each key given here replaces the single value of its section.
    #[serde(default)]
    pub sweep: SweepSpec,
    /// Cloud storage settings (credentials come only from the environment).
    #[serde(default)]
    pub storage: StorageSpec,
}

/// `[storage]`: how cloud stores are reached. Credentials are read only from the usual
/// environment variables (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_*`,
/// ...), never from the file, so pipeline files can be shared and logged.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StorageSpec {
    /// S3-compatible endpoint, such as `http://127.0.0.1:8333` (default: `AWS_ENDPOINT`, else
    /// AWS).
    pub endpoint: Option<String>,
    /// Region (default: `AWS_REGION`).
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints (default: `AWS_ALLOW_HTTP`, else false).
    pub allow_http: Option<bool>,
    /// Virtual-hosted-style S3 requests instead of path style (default: false).
    pub virtual_hosted_style: Option<bool>,
    /// Retries of a failed request, with exponential backoff (default: 10).
    pub retries: Option<u32>,
    /// Seconds after which a request is no longer retried (default: 180).
    pub retry_timeout: Option<f64>,
}

/// `[pipeline]`: what the run is called and where it writes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineSection {
    /// Name of the pipeline; used in the default output location.
    pub name: String,
    /// Output location: a local path (relative to the working directory) or an object store URL
    /// (`file://`, `memory://`, `s3://`, `gs://`, `az://`). Default: `runs/<name>`.
    pub output: Option<String>,
    /// Seed used when `sweep.seed` is not given.
    #[schemars(extend("default" = PipelineSection::SEED))]
    pub seed: Option<u64>,
}

impl PipelineSection {
    /// Default of `seed`.
    pub const SEED: u64 = 0;
}

/// `[concepts]`: choosing N concepts and splitting their examples.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConceptsSpec {
    /// Number of concepts N (a seeded subsample). Default: all of them.
    pub n: Option<u32>,
    /// Fraction of each concept's examples held out for testing.
    #[schemars(extend("default" = ConceptsSpec::TEST_FRACTION))]
    pub test_fraction: Option<f64>,
    /// Concepts with fewer examples are dropped before choosing N (with a count in the log).
    #[schemars(extend("default" = ConceptsSpec::MIN_EXAMPLES))]
    pub min_examples: Option<u32>,
    /// Each chosen concept keeps at most this many examples (a seeded subsample), which
    /// balances classes and bounds the cost of large concepts. Default: all.
    pub max_examples: Option<u32>,
    /// Class-prior skew: the i-th chosen concept (in the seeded order, from 1) keeps a seeded
    /// `i^-s` share of its examples (after `max-examples`; at least 3), so equal classes take
    /// a Zipf prior rho_i proportional to i^-s. Applies to every dataset, generated or read.
    #[schemars(extend("default" = ConceptsSpec::PRIOR_SKEW))]
    pub prior_skew: Option<f64>,
    /// Label noise: each training example of the chosen concepts is, with this probability,
    /// given a concept drawn uniformly from the N (its own included), seeded. Test examples
    /// keep their labels, so the evaluation measures the true concepts.
    #[schemars(extend("default" = ConceptsSpec::LABEL_NOISE))]
    pub label_noise: Option<f64>,
}

impl ConceptsSpec {
    /// Default of `test-fraction`.
    pub const TEST_FRACTION: f64 = 0.25;
    /// Default of `min-examples`.
    pub const MIN_EXAMPLES: u32 = 4;
    /// Default of `prior-skew`: no skew.
    pub const PRIOR_SKEW: f64 = 0.0;
    /// Default of `label-noise`: none.
    pub const LABEL_NOISE: f64 = 0.0;
}

/// Where a positive comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PositiveMode {
    /// Another training example of the anchor's concept (the latent-class model).
    SameConcept,
    /// A second augmented view of the anchor itself (SimCLR-style; images only): every image
    /// is its own concept. Anchors, positives and negatives are all augmented views.
    Augmentation,
}

impl PositiveMode {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            PositiveMode::SameConcept => "same-concept",
            PositiveMode::Augmentation => "augmentation",
        }
    }
}

/// `[train.augment]`: seeded image augmentations, applied per view.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AugmentSpec {
    /// Random resized crop: the smallest side fraction kept, in (0, 1]; 1 turns cropping off.
    /// Default: 0.6.
    pub crop: Option<f64>,
    /// Random horizontal flip (turn off for glyphs and digits, whose mirror images are other
    /// shapes). Default: false.
    pub flip: Option<bool>,
    /// Brightness and contrast jitter: factors drawn from [1 - jitter, 1 + jitter]. Default: 0.4.
    pub jitter: Option<f64>,
    /// Standard deviation of added Gaussian noise, on the [0, 1] pixel scale. Default: 0.05.
    pub noise: Option<f64>,
}

/// Contrastive loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// log(1 + sum_i exp(f(x).f(x_i-) - f(x).f(x+))), raw dot products.
    Nce,
    /// Cross-entropy over cosine similarities divided by a temperature.
    Infonce,
    /// Chuang et al.'s (2020) debiased contrastive loss: InfoNCE whose negative term is
    /// corrected for the expected share `train.tau-plus` of same-concept negatives.
    Debiased,
    /// Yeh et al.'s (2022) decoupled contrastive loss: InfoNCE with the positive removed from
    /// the denominator, `-s+ / t + log sum_i exp(s_i / t)` over the negatives' cosines.
    Decoupled,
    /// Robinson et al.'s (2021) hard-negative contrastive loss: the debiased loss with each
    /// negative reweighted by `exp(beta s / t)` (`train.beta`), tilting it towards the
    /// negatives nearest the anchor.
    Hcl,
    /// Zhai et al.'s (2023) sigmoid loss: an independent logistic term per (anchor, candidate)
    /// pair on `t s + b` over cosines, with `t` and `b` learned and the negatives' terms
    /// weighted by `train.negative-weight`.
    Sigmoid,
}

impl Loss {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Loss::Nce => "nce",
            Loss::Infonce => "infonce",
            Loss::Debiased => "debiased",
            Loss::Decoupled => "decoupled",
            Loss::Hcl => "hcl",
            Loss::Sigmoid => "sigmoid",
        }
    }
}

/// Number format of the dense layers' products while training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// f32 operands and sums.
    #[default]
    F32,
    /// Operands rounded to bf16 (8 significant bits), products summed in f32: the fully
    /// connected layers' products about 1.4x to 1.6x faster where the CPU has AVX512-BF16
    /// (slower elsewhere). Weights, gradients and Adam's state stay f32.
    Bf16,
}

impl Precision {
    /// Name as written in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Encoder architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// Text: mean of token embeddings, then a linear projection.
    EmbeddingBag,
    /// Text: token embeddings through a one-layer GRU; its last state, projected.
    Gru,
    /// Images: flattened pixels through a two-layer ReLU MLP.
    Mlp,
    /// Images: 3 x 3 conv-relu-maxpool blocks (`train.channels`), then a linear layer.
    Cnn,
}

impl EncoderKind {
    /// Name as written in pipeline files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderKind::EmbeddingBag => "embedding-bag",
            EncoderKind::Gru => "gru",
            EncoderKind::Mlp => "mlp",
            EncoderKind::Cnn => "cnn",
        }
    }
}

/// `[train]`: one encoder per sweep point.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainSpec {
    /// Encoder. Default: `embedding-bag` for text, `mlp` for images.
    pub encoder: Option<EncoderKind>,
    /// Output (representation) dimension.
    #[schemars(extend("default" = TrainSpec::DIM))]
    pub dim: Option<u32>,
    /// Hidden width: embedding width for text, hidden layer for the MLP.
    #[schemars(extend("default" = TrainSpec::HIDDEN))]
    pub hidden: Option<u32>,
    /// CNN: output channels of each conv-relu-pool block.
    #[schemars(extend("default" = TrainSpec::CHANNELS))]
    pub channels: Option<Vec<u32>>,
    /// Loss.
    #[schemars(extend("default" = TrainSpec::LOSS))]
    pub loss: Option<Loss>,
    /// Temperature of `infonce` and `debiased` (ignored by `nce`).
    #[schemars(extend("default" = TrainSpec::TEMPERATURE))]
    pub temperature: Option<f64>,
    /// Class prior of the debiased loss: the probability that a negative shares the anchor's
    /// concept, in [0, 1).
    #[schemars(extend("default" = TrainSpec::TAU_PLUS))]
    pub tau_plus: Option<f64>,
    /// Hardness concentration of the `hcl` loss (Robinson et al. 2021): each negative weighs
    /// `exp(beta s / t)`; 0 is the debiased loss. At least 0.
    #[schemars(extend("default" = TrainSpec::BETA))]
    pub beta: Option<f64>,
    /// Weight of the negatives' terms against the positive's in the `sigmoid` loss (Zhai et
    /// al. 2023 use 1 and a bias initialised to -10 for the imbalance). Greater than 0.
    #[schemars(extend("default" = TrainSpec::NEGATIVE_WEIGHT))]
    pub negative_weight: Option<f64>,
    /// Adam learning rate.
    #[schemars(extend("default" = TrainSpec::LR))]
    pub lr: Option<f64>,
    /// Decoupled weight decay (0 is plain Adam).
    #[schemars(extend("default" = TrainSpec::WEIGHT_DECAY))]
    pub weight_decay: Option<f64>,
    /// Text encoders: dropout rate on the pooled features while training, in [0, 1).
    #[schemars(extend("default" = TrainSpec::DROPOUT))]
    pub dropout: Option<f64>,
    /// Number format of the fully connected layers' products while training: `f32`, or `bf16`
    /// operands with f32 sums (mixed precision; see the README's Performance section for its
    /// speed and the accuracy measured against f32).
    #[schemars(extend("default" = "f32"))]
    pub precision: Option<Precision>,
    /// Anchors per step.
    #[schemars(extend("default" = TrainSpec::BATCH_SIZE))]
    pub batch_size: Option<u32>,
    /// Passes over the training anchors.
    #[schemars(extend("default" = TrainSpec::EPOCHS))]
    pub epochs: Option<u32>,
    /// Save each point's weights as safetensors under `models/`.
    #[schemars(extend("default" = TrainSpec::CHECKPOINTS))]
    pub checkpoints: Option<bool>,
    /// Where positives come from.
    #[schemars(extend("default" = TrainSpec::POSITIVE))]
    pub positive: Option<PositiveMode>,
    /// Image augmentations of `positive = "augmentation"`.
    #[serde(default)]
    pub augment: AugmentSpec,
}

impl TrainSpec {
    /// Default of `dim`.
    pub const DIM: u32 = 64;
    /// Default of `hidden`.
    pub const HIDDEN: u32 = 128;
    /// Default of `channels`.
    pub const CHANNELS: &'static [u32] = &[16, 32];
    /// Default of `loss`.
    pub const LOSS: Loss = Loss::Nce;
    /// Default of `temperature`.
    pub const TEMPERATURE: f64 = 0.1;
    /// Default of `tau-plus`.
    pub const TAU_PLUS: f64 = 0.1;
    /// Default of `beta`.
    pub const BETA: f64 = 1.0;
    /// Default of `negative-weight`.
    pub const NEGATIVE_WEIGHT: f64 = 1.0;
    /// Default of `lr`.
    pub const LR: f64 = 1e-3;
    /// Default of `weight-decay`.
    pub const WEIGHT_DECAY: f64 = 0.0;
    /// Default of `dropout`.
    pub const DROPOUT: f64 = 0.0;
    /// Default of `batch-size`.
    pub const BATCH_SIZE: u32 = 64;
    /// Default of `epochs`.
    pub const EPOCHS: u32 = 5;
    /// Default of `checkpoints`.
    pub const CHECKPOINTS: bool = true;
    /// Default of `positive`.
    pub const POSITIVE: PositiveMode = PositiveMode::SameConcept;
}

/// `[eval]`: downstream evaluation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvalSpec {
    /// Neighbours voted on by the kNN classifier.
    #[schemars(extend("default" = EvalSpec::KNN))]
    pub knn: Option<u32>,
    /// Epochs of the linear probe (softmax regression on frozen features, Adam, batches of
    /// 1024); 0 turns it off.
    #[schemars(extend("default" = EvalSpec::PROBE_EPOCHS))]
    pub probe_epochs: Option<u32>,
}

impl EvalSpec {
    /// Default of `knn`.
    pub const KNN: u32 = 5;
    /// Default of `probe-epochs`.
    pub const PROBE_EPOCHS: u32 = 20;
}

impl PipelineSpec {
    /// Parses pipeline text; `path` names the source in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self> {
        Self::parse_each(text).map_err(|problems| Error::Spec {
            path: path.to_owned(),
            message: problem_list(&problems),
        })
    }

    /// Parses pipeline text, or gives every problem it has (see [`Problem`]).
    pub fn parse_each(text: &str) -> std::result::Result<Self, Vec<Problem>> {
        toml::from_str(text).map_err(|e| every_problem(text, e))
    }

    /// The text of a pipeline file.
    pub fn read(path: &std::path::Path) -> Result<String> {
        // Pipeline files are local configuration, not data: they are read from the filesystem.
        std::fs::read_to_string(path).map_err(|e| Error::Spec {
            path: path.display().to_string(),
            message: format!("cannot read pipeline file: {e}"),
        })
    }

    /// Reads and parses a pipeline file, applying `--set` overrides first (`plan::load` also
    /// names the override behind each problem).
    pub fn load(path: &std::path::Path, overrides: &[String]) -> Result<Self> {
        let shown = path.display().to_string();
        let text = Self::read(path)?;
        let text = apply_overrides(&shown, &text, overrides)?;
        let label = if overrides.is_empty() {
            shown
        } else {
            format!("{shown} (with --set overrides)")
        };
        Self::parse(&label, &text)
    }

    /// JSON Schema of the pipeline file format.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(PipelineSpec);
        let mut text = serde_json::to_string_pretty(&schema).expect("a JSON schema serialises");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[pipeline]
name = "t"

[[datasets]]
kind = "synthetic-text"
name = "syn"
"#;

    #[test]
    fn every_problem_is_named_by_line_and_key() {
        let text = format!(
            "{MINIMAL}text-column = 5\n\n[train]\ndim = \"four\"\nepochs = \"one\"\n\n[eval]\nprobe-epoch = 0\n"
        );
        let e = PipelineSpec::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 problems"), "{e}");
        for want in [
            "line 8, `datasets[0].text-column`",
            "line 11, `train.dim`: invalid type: string \"four\"",
            "line 12, `train.epochs`",
            "line 15, `eval.probe-epoch`: unknown field `probe-epoch`",
        ] {
            assert!(e.contains(want), "`{want}` in {e}");
        }
        // Lines set aside before a problem do not move it (`loss` on line 6, not `lr` on 7).
        let shifted = "[pipeline]\nname = \"t\"\ncolour = \"red\"\n[train]\ndim = 4\nloss = \"nse\"\nlr = 0.1\n[[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\n";
        let e = PipelineSpec::parse("t.toml", shifted)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3, `pipeline.colour`"), "{e}");
        assert!(e.contains("line 6, `train.loss`"), "{e}");
        // One problem reads as before, with its key.
        let one = format!("{MINIMAL}[train]\ndim = \"four\"\n");
        let e = PipelineSpec::parse("t.toml", &one).unwrap_err().to_string();
        assert!(
            e.contains("line 9, `train.dim`") && !e.contains("problems"),
            "{e}"
        );
    }

    #[test]
    fn parses_minimal() {
        let spec = PipelineSpec::parse("t.toml", MINIMAL).unwrap();
        assert_eq!(spec.pipeline.name, "t");
        assert_eq!(spec.datasets.len(), 1);
    }

    #[test]
    fn unknown_key_names_line_and_accepted_keys() {
        let text = format!("{MINIMAL}\n[train]\nlearning-rate = 0.1\n");
        let err = PipelineSpec::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: "), "{err}");
        assert!(err.contains("line 10"), "{err}");
        assert!(err.contains("unknown field `learning-rate`"), "{err}");
        assert!(err.contains("`lr`"), "{err}");
    }

    #[test]
    fn unknown_key_in_dataset_is_rejected() {
        let text = MINIMAL.replace("name = \"syn\"", "name = \"syn\"\nvocabulary = 3");
        let err = PipelineSpec::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `vocabulary`"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected() {
        let text = format!("{MINIMAL}\n[sweep]\nk = \"many\"\n");
        let err = PipelineSpec::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 10"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn unknown_dataset_kind_lists_kinds() {
        let text = MINIMAL.replace("synthetic-text", "wiki");
        let err = PipelineSpec::parse("t.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("synthetic-image"), "{err}");
    }
}
