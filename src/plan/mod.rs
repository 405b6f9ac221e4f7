//! Resolution: a parsed [`PipelineSpec`] becomes a [`Plan`] with every default applied, every
//! location parsed and the sweep expanded into [`SweepPoint`]s. Code after this sees no `Option`
//! standing in for a default.

pub mod axes;
pub mod cost;
mod grid_settings;
pub mod inputs;
pub mod kinds;
pub mod memory;
mod overrides;

pub use kinds::DataSource;
pub use overrides::load;
mod sweep;

pub use crate::point::{DetectorConfig, HardConfig, SweepPoint};
use sweep::expand;

use serde::Serialize;

use crate::spec::{
    ConceptsSpec, Detector, EncoderKind, EvalSpec, Loss, PipelineSpec, Precision, TrainSpec,
};
use crate::storage::StoreUrl;
use crate::{Diagnostic, Error, Result};

/// Whether a dataset holds token sequences or images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modality {
    /// Token sequences.
    Text,
    /// Grey images.
    Image,
}

/// A resolved dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetPlan {
    /// Name (a results partition).
    pub name: String,
    /// Where the examples come from.
    pub source: DataSource,
    /// Content key: a hash of `source`, naming the ingested table.
    pub key: String,
    /// Encoder used on this dataset.
    pub encoder: EncoderKind,
    /// N values replacing the sweep's for this dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<Vec<u32>>,
}

/// Settings shared by every point of a pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Shared {
    /// Held-out fraction of each concept.
    pub test_fraction: f64,
    /// Concepts with fewer examples are dropped.
    pub min_examples: u32,
    /// Examples kept per concept (a seeded subsample); 0: all.
    pub max_examples: u32,
    /// `concepts.prior-skew` as written (each point takes its own from the `prior-skew` axis;
    /// the pool stage reads the point's); 0: none. Serialised only when set, so the manifests
    /// of pipelines without it stay as they were.
    #[serde(skip_serializing_if = "is_off")]
    pub prior_skew: f64,
    /// `concepts.label-noise` as written (each point takes its own from the `label-noise`
    /// axis); 0: none. Serialised only when set.
    #[serde(skip_serializing_if = "is_off")]
    pub label_noise: f64,
    /// Hard-negative mining settings (used by `hard` points).
    pub hard: HardConfig,
    /// `train.tau-plus` as written (each point takes its own from the `tau-plus` axis); kept
    /// in the manifest as it always was.
    pub tau_plus: f64,
    /// The false-negative detector of points that do not keep every negative. Serialised only
    /// when not the oracle, so the manifests of pipelines without it stay as they were.
    #[serde(skip_serializing_if = "is_oracle")]
    pub detector: DetectorConfig,
    /// Momentum of the key encoder of `queue` points. Serialised only when a point uses it.
    #[serde(skip_serializing_if = "is_unused")]
    pub momentum: f64,
    /// Weight of the negatives' terms in the sigmoid loss. Serialised only when not 1.
    #[serde(skip_serializing_if = "is_one")]
    pub negative_weight: f64,
    /// Negatives per anchor stored in each pool.
    pub k_max: u32,
    /// Passes over the training anchors stored in each pool (the largest `epochs` swept).
    pub max_epochs: u32,
    /// kNN neighbours.
    pub knn: u32,
    /// Whether weights are saved per point.
    pub checkpoints: bool,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Text encoders' dropout rate.
    pub dropout: f64,
    /// Number format of the dense layers' products while training (left out of the config
    /// hash for f32, so that plans from before the setting keep theirs).
    #[serde(skip_serializing_if = "crate::point::is_f32")]
    pub precision: Precision,
    /// Linear-probe epochs (0: no probe).
    pub probe_epochs: u32,
    /// Augmentations of `positive = augmentation` points.
    pub augment: crate::data::augment::Augment,
}

/// A resolved pipeline: what `run` executes and `plan` prints.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pipeline name.
    pub name: String,
    /// Where the pipeline came from (for messages).
    pub source: String,
    /// Output location.
    pub output: StoreUrl,
    /// Hash of the resolved configuration (provenance).
    pub config_hash: String,
    /// Datasets, indexed by [`SweepPoint::dataset`].
    pub datasets: Vec<DatasetPlan>,
    /// Settings shared by every point.
    pub shared: Shared,
    /// Keys that vary across points (besides `dataset`), in grid order.
    pub swept: Vec<&'static str>,
    /// Every sweep point, in execution order.
    pub points: Vec<SweepPoint>,
    /// Cloud storage settings.
    pub storage: crate::storage::StorageSettings,
    /// Adaptive rounds (`[sweep.adaptive]`); `None`: the full grid.
    pub adaptive: Option<crate::point::AdaptiveConfig>,
    /// Problems that do not stop the pipeline (a key without effect), for people.
    pub warnings: Vec<Diagnostic>,
    /// The `--set KEY=VALUE` overrides applied to the file, as given (see [`load`]).
    pub overrides: Vec<String>,
}

impl Plan {
    /// Keys each dataset by `fingerprints[i]` (the content fingerprints of its inputs, `None`
    /// for generated data) on top of its settings; pool keys, point ids and the configuration
    /// hash follow. See [`inputs::key_by_content`].
    pub fn rekey(&mut self, fingerprints: &[Option<Vec<String>>]) {
        for (ds, fp) in self.datasets.iter_mut().zip(fingerprints) {
            ds.key = match fp {
                // What the input holds and how it is read, not where it lies: a moved or
                // renamed file keeps its key.
                Some(fp) => content_hash(&("input-v1", ds.source.without_locations(), fp)),
                None => content_hash(&ds.source),
            };
        }
        sweep::rekey(&mut self.points, &self.datasets, &self.shared);
        self.config_hash = content_hash(&(&self.datasets, &self.shared, &self.points));
    }
}

/// Hex blake3 of the JSON form of `value`, shortened to 16 characters.
pub fn content_hash<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("plan types serialise to JSON");
    blake3::hash(&json).to_hex()[..16].to_owned()
}

/// Resolves a parsed spec; `source` names it in errors. Collects every problem it finds, in
/// the order of the file's sections.
pub fn resolve(spec: &PipelineSpec, source: &str) -> Result<Plan> {
    let mut diags = Vec::new();
    let mut bad = |key: &str, message: String| diags.push(Diagnostic::new(key, message));
    let mut warnings = Vec::new();
    let mut warn = |key: &str, message: String| warnings.push(Diagnostic::new(key, message));
    let output = pipeline(spec, &mut bad);
    let tr = &spec.train;
    let channels: Vec<u32> = tr
        .channels
        .clone()
        .unwrap_or_else(|| TrainSpec::CHANNELS.to_vec());
    let datasets = datasets(spec, &channels, &mut bad);
    let grid = sweep::Grid::from_spec(spec);
    grid.check(&mut bad);
    let (test_fraction, min_examples) = concepts(spec, &datasets, &grid, &mut bad);
    let k_max = k_max(spec, &grid, &mut bad);
    let max_examples = max_examples(spec, min_examples, &mut bad);
    let (prior_skew, label_noise) = data_knobs(spec, &grid, &mut bad);
    let (weight_decay, dropout, augment) = train(spec, &datasets, &grid, &mut bad);
    let hard = negatives(spec, &grid, &mut bad);
    let tau_plus = grid_settings::tau_plus(spec, &grid, &mut bad);
    let detector = grid_settings::false_negatives(spec, &grid, &mut bad);
    let momentum = grid_settings::momentum(spec, &grid, &mut bad);
    let negative_weight = spec
        .train
        .negative_weight
        .unwrap_or(TrainSpec::NEGATIVE_WEIGHT);
    if grid.loss.contains(&Loss::Sigmoid) && !(negative_weight > 0.0 && negative_weight.is_finite())
    {
        bad(
            "train.negative-weight",
            format!("must be greater than 0, got {negative_weight}"),
        );
    }
    let storage = storage(spec, &mut bad);
    let adaptive = grid_settings::adaptive(spec, &grid, &mut bad, &mut warn);
    let knn = knn(spec, &mut bad);

    if !diags.is_empty() {
        return Err(Error::InvalidPipeline {
            path: source.to_owned(),
            diagnostics: diags,
        });
    }
    let output = output.expect("a valid output URL when there are no diagnostics");
    let shared = Shared {
        test_fraction,
        min_examples,
        max_examples,
        prior_skew,
        label_noise,
        hard,
        tau_plus,
        detector,
        momentum,
        negative_weight,
        k_max,
        max_epochs: grid.epochs.iter().copied().max().unwrap_or(1),
        knn,
        checkpoints: tr.checkpoints.unwrap_or(TrainSpec::CHECKPOINTS),
        weight_decay,
        dropout,
        precision: tr.precision.unwrap_or_default(),
        probe_epochs: spec.eval.probe_epochs.unwrap_or(EvalSpec::PROBE_EPOCHS),
        augment,
    };
    let points = expand(&grid, &datasets, &shared, &channels);
    let config_hash = content_hash(&(&datasets, &shared, &points));
    Ok(Plan {
        name: spec.pipeline.name.clone(),
        source: source.to_owned(),
        output,
        config_hash,
        datasets,
        shared,
        swept: grid.swept(),
        points,
        storage,
        adaptive,
        warnings,
        overrides: Vec::new(),
    })
}

/// `[pipeline]`: the name and the output location (`None` when it does not parse).
fn pipeline(spec: &PipelineSpec, bad: &mut dyn FnMut(&str, String)) -> Option<StoreUrl> {
    if !is_safe_name(&spec.pipeline.name) {
        bad(
            "pipeline.name",
            format!(
                "`{}` must be non-empty and use only letters, digits, `-`, `_`, `.`",
                spec.pipeline.name
            ),
        );
    }
    let output_text = spec
        .pipeline
        .output
        .clone()
        .unwrap_or_else(|| format!("runs/{}", spec.pipeline.name));
    match StoreUrl::parse(&output_text) {
        Ok(url) => Some(url),
        Err(message) => {
            bad("pipeline.output", message);
            None
        }
    }
}

/// `[[datasets]]`: each dataset's source, content key and encoder.
fn datasets(
    spec: &PipelineSpec,
    channels: &[u32],
    bad: &mut dyn FnMut(&str, String),
) -> Vec<DatasetPlan> {
    let tr = &spec.train;
    if spec.datasets.is_empty() {
        bad(
            "datasets",
            "at least one `[[datasets]]` table is required".into(),
        );
    }
    let mut datasets: Vec<DatasetPlan> = Vec::new();
    for (i, ds) in spec.datasets.iter().enumerate() {
        let key = |k: &str| format!("datasets[{i}].{k}");
        let (name, source, n_override) = kinds::resolve(ds, &key, &mut *bad);
        let name = &name;
        if let Some(ns) = &n_override
            && (ns.is_empty() || ns.contains(&1))
        {
            bad(
                &key("n"),
                "must list N values of at least 2 (or 0: all concepts)".into(),
            );
        }
        if !is_safe_name(name) {
            bad(
                &key("name"),
                format!("`{name}` must use only letters, digits, `-`, `_`, `.`"),
            );
        }
        if datasets.iter().any(|d| &d.name == name) {
            bad(&key("name"), format!("dataset name `{name}` is used twice"));
        }
        source.check(&key, &mut *bad);
        let modality = source.modality();
        let encoder = tr.encoder.unwrap_or(match modality {
            Modality::Text => EncoderKind::EmbeddingBag,
            Modality::Image => EncoderKind::Mlp,
        });
        if let (EncoderKind::Cnn, Some(size)) = (encoder, source.image_side()) {
            let blocks = channels.len() as u32;
            if channels.is_empty() || channels.contains(&0) {
                bad(
                    "train.channels",
                    "must list at least one block, each with at least one channel".into(),
                );
            } else if size % (1 << blocks.min(31)) != 0 {
                bad(
                    "train.channels",
                    format!(
                        "{blocks} pooling blocks need an image side divisible by {}, `{name}` has {size}",
                        1u64 << blocks.min(63)
                    ),
                );
            }
        }
        match (modality, encoder) {
            (Modality::Text, EncoderKind::EmbeddingBag | EncoderKind::Gru)
            | (Modality::Image, EncoderKind::Mlp | EncoderKind::Cnn) => {}
            _ => bad(
                "train.encoder",
                format!(
                    "`{}` does not apply to {modality:?} dataset `{name}`",
                    encoder.as_str()
                ),
            ),
        }
        datasets.push(DatasetPlan {
            name: name.clone(),
            key: content_hash(&source),
            source,
            encoder,
            n: n_override,
        });
    }
    // A dataset is identified by its content key, not its name or position: two entries with
    // one key would be one dataset trained twice under two names.
    for (i, ds) in datasets.iter().enumerate() {
        if let Some(j) = datasets[..i].iter().position(|d| d.key == ds.key) {
            bad(
                &format!("datasets[{i}]"),
                format!(
                    "`{}` reads the same data with the same settings as datasets[{j}] (`{}`); list it once",
                    ds.name, datasets[j].name
                ),
            );
        }
    }
    datasets
}

/// `[concepts]`: the held-out fraction and the smallest concept kept; N against each dataset.
fn concepts(
    spec: &PipelineSpec,
    datasets: &[DatasetPlan],
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> (f64, u32) {
    let test_fraction = spec
        .concepts
        .test_fraction
        .unwrap_or(ConceptsSpec::TEST_FRACTION);
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        bad(
            "concepts.test-fraction",
            format!("must be in (0, 1), got {test_fraction}"),
        );
    }
    let min_examples = spec
        .concepts
        .min_examples
        .unwrap_or(ConceptsSpec::MIN_EXAMPLES);
    if min_examples < 4 {
        bad(
            "concepts.min-examples",
            format!(
                "must be at least 4 (two train examples for a positive, two test), got {min_examples}"
            ),
        );
    }
    for ds in datasets {
        let Some(available) = ds.source.concepts() else {
            // Known once the data is read: the concepts stage checks it.
            continue;
        };
        for &n in ds.n.as_ref().unwrap_or(&grid.n) {
            if n > available {
                bad(
                    &grid.key("n"),
                    format!(
                        "N = {n} exceeds the {available} concepts of dataset `{}`",
                        ds.name
                    ),
                );
            }
        }
    }
    (test_fraction, min_examples)
}

/// `negatives.k-max`: the negatives each pool stores per anchor, at least every swept k.
fn k_max(spec: &PipelineSpec, grid: &sweep::Grid, bad: &mut dyn FnMut(&str, String)) -> u32 {
    let k_largest = grid.k.iter().copied().max().unwrap_or(1);
    let k_max = spec.negatives.k_max.unwrap_or(k_largest);
    if k_max == 0 {
        bad("negatives.k-max", "must be at least 1".into());
    }
    for &k in &grid.k {
        if k > k_max {
            bad(
                &grid.key("k"),
                format!(
                    "k = {k} exceeds negatives.k-max = {k_max}: the pool holds only k-max negatives per anchor"
                ),
            );
        }
    }
    k_max
}

/// `concepts.max-examples` (checked after k-max, as it always was, so messages keep their order).
fn max_examples(spec: &PipelineSpec, min_examples: u32, bad: &mut dyn FnMut(&str, String)) -> u32 {
    let max_examples = spec.concepts.max_examples.unwrap_or(0);
    if max_examples != 0 && max_examples < min_examples {
        bad(
            "concepts.max-examples",
            format!("must be at least concepts.min-examples ({min_examples}), got {max_examples}"),
        );
    }
    max_examples
}

fn is_off(s: &f64) -> bool {
    *s == 0.0
}

/// `concepts.prior-skew` (a Zipf exponent in [0, 8]) and `concepts.label-noise` (a
/// probability below 1), or each of their `[sweep]` lists; returns the values as written in
/// `[concepts]`, which the manifest keeps.
fn data_knobs(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> (f64, f64) {
    for &s in &grid.prior_skew {
        if !(s.is_finite() && (0.0..=8.0).contains(&s)) {
            bad(
                &grid.key("prior-skew"),
                format!("must be a Zipf exponent in [0, 8], got {s}"),
            );
        }
    }
    for &f in &grid.label_noise {
        if !(0.0..1.0).contains(&f) {
            bad(
                &grid.key("label-noise"),
                format!("must be a probability in [0, 1), got {f}"),
            );
        }
    }
    let c = &spec.concepts;
    (
        c.prior_skew.unwrap_or(ConceptsSpec::PRIOR_SKEW),
        c.label_noise.unwrap_or(ConceptsSpec::LABEL_NOISE),
    )
}

/// `[train]`: weight decay, dropout and augmentations, and where augmentation positives apply.
fn train(
    spec: &PipelineSpec,
    datasets: &[DatasetPlan],
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> (f64, f64, crate::data::augment::Augment) {
    let tr = &spec.train;
    let weight_decay = tr.weight_decay.unwrap_or(TrainSpec::WEIGHT_DECAY);
    if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
        bad(
            "train.weight-decay",
            format!("must be at least 0, got {weight_decay}"),
        );
    }
    let dropout = tr.dropout.unwrap_or(TrainSpec::DROPOUT);
    if !(0.0..1.0).contains(&dropout) {
        bad("train.dropout", format!("must be in [0, 1), got {dropout}"));
    }
    let a = &tr.augment;
    let d = crate::data::augment::Augment::DEFAULT;
    let augment = crate::data::augment::Augment {
        crop: a.crop.unwrap_or(d.crop),
        flip: a.flip.unwrap_or(d.flip),
        jitter: a.jitter.unwrap_or(d.jitter),
        noise: a.noise.unwrap_or(d.noise),
    };
    if !(augment.crop > 0.0 && augment.crop <= 1.0) {
        bad(
            "train.augment.crop",
            format!("must be in (0, 1], got {}", augment.crop),
        );
    }
    if !(0.0..1.0).contains(&augment.jitter) {
        bad(
            "train.augment.jitter",
            format!("must be in [0, 1), got {}", augment.jitter),
        );
    }
    if !(augment.noise >= 0.0 && augment.noise.is_finite()) {
        bad(
            "train.augment.noise",
            format!("must be at least 0, got {}", augment.noise),
        );
    }
    if grid
        .positive
        .contains(&crate::spec::PositiveMode::Augmentation)
    {
        for ds in datasets {
            if ds.source.modality() != Modality::Image {
                bad(
                    &grid.key("positive"),
                    format!(
                        "augmentation positives need images; dataset `{}` is text",
                        ds.name
                    ),
                );
            }
        }
    }
    (weight_decay, dropout, augment)
}

/// `[negatives.hard]`, and each swept strategy's checks of the grid.
fn negatives(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    mut bad: &mut dyn FnMut(&str, String),
) -> HardConfig {
    let h = &spec.negatives.hard;
    let hard = HardConfig {
        min_rank: h.min_rank.unwrap_or(1),
        max_rank: h.max_rank.unwrap_or(64),
        reference: h.reference.clone().filter(|r| r != "self"),
        refresh: h.refresh.unwrap_or(50),
        max_score: h.max_score,
        min_score: h.min_score,
    };
    let k_key = grid.key("k");
    let check = crate::negatives::GridCheck {
        k: &grid.k,
        batch_size: &grid.batch_size,
        k_key: &k_key,
        hard: &hard,
    };
    for s in crate::negatives::REGISTRY {
        if grid.strategy.contains(&s.kind()) {
            s.check_grid(&check, &mut bad);
        }
    }
    hard
}

/// `[storage]`: settings of cloud stores.
fn storage(
    spec: &PipelineSpec,
    bad: &mut dyn FnMut(&str, String),
) -> crate::storage::StorageSettings {
    let st = &spec.storage;
    let storage = crate::storage::StorageSettings {
        endpoint: st.endpoint.clone(),
        region: st.region.clone(),
        allow_http: st.allow_http,
        virtual_hosted_style: st.virtual_hosted_style,
        retries: st.retries.map(|r| r as usize),
        retry_timeout_s: st.retry_timeout,
    };
    if let Some(t) = st.retry_timeout
        && !(t.is_finite() && t >= 0.0)
    {
        bad(
            "storage.retry-timeout",
            format!("must be at least 0, got {t}"),
        );
    }
    if let Some(e) = &st.endpoint
        && url::Url::parse(e).is_err()
    {
        bad("storage.endpoint", format!("`{e}` is not a URL"));
    }
    storage
}

/// `eval.knn`.
fn knn(spec: &PipelineSpec, bad: &mut dyn FnMut(&str, String)) -> u32 {
    let knn = spec.eval.knn.unwrap_or(EvalSpec::KNN);
    if knn == 0 {
        bad("eval.knn", "must be at least 1".into());
    }
    knn
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where each loss uses a temperature.
pub fn uses_temperature(loss: Loss) -> bool {
    // The sigmoid loss learns its temperature.
    matches!(
        loss,
        Loss::Infonce | Loss::Debiased | Loss::Decoupled | Loss::Hcl
    )
}

fn is_oracle(d: &DetectorConfig) -> bool {
    d.detector == Detector::Oracle
}

fn is_unused(m: &f64) -> bool {
    m.is_nan()
}

fn is_one(w: &f64) -> bool {
    *w == 1.0
}
