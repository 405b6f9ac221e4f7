//! The sweep grid and its expansion into points.

use itertools::Itertools;

use super::axes::{AXES, nested};
use super::{DatasetPlan, Shared, content_hash, uses_temperature};
use crate::point::SweepPoint;
use crate::spec::{EncoderKind, FalseNegatives, Loss, PipelineSpec, PositiveMode, Strategy};

/// Valid temperatures of InfoNCE and the debiased loss: logits are similarities divided by
/// the temperature, so below 0.01 they leave f32's comfortable range and every softmax is one
/// hot; above 100 all negatives weigh the same. Practice sits well inside (SimCLR: 0.05 to 0.5).
pub(crate) const TEMPERATURE: (f64, f64) = (0.01, 100.0);

/// One value per axis of the grid; a single value when the axis is not swept. Each field is
/// read, checked and expanded through its entry in [`AXES`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Grid {
    pub(crate) k: Vec<u32>,
    pub(crate) n: Vec<u32>,
    pub(crate) seed: Vec<u64>,
    pub(crate) prior_skew: Vec<f64>,
    pub(crate) label_noise: Vec<f64>,
    pub(crate) loss: Vec<Loss>,
    pub(crate) temperature: Vec<f64>,
    pub(crate) tau_plus: Vec<f64>,
    pub(crate) beta: Vec<f64>,
    pub(crate) lr: Vec<f64>,
    pub(crate) dim: Vec<u32>,
    pub(crate) hidden: Vec<u32>,
    pub(crate) batch_size: Vec<u32>,
    pub(crate) epochs: Vec<u32>,
    pub(crate) positive: Vec<PositiveMode>,
    pub(crate) strategy: Vec<Strategy>,
    pub(crate) false_negatives: Vec<FalseNegatives>,
    /// Keys given in `[sweep]`, in table order.
    given: Vec<&'static str>,
    n_default: bool,
}

impl Grid {
    pub(crate) fn from_spec(spec: &PipelineSpec) -> Self {
        let mut grid = Grid {
            // N defaults to every concept of the dataset; 0 stands for that until expansion.
            n_default: spec.sweep.n.is_none() && spec.concepts.n.is_none(),
            ..Grid::default()
        };
        for a in AXES {
            if (a.read)(spec, &mut grid) {
                grid.given.push(a.key);
            }
        }
        grid
    }

    /// The file key an axis's values came from, for diagnostics: `sweep.<key>` when swept,
    /// else `<section>.<key>`.
    pub(crate) fn key(&self, axis: &'static str) -> String {
        let section = match super::axes::axis(axis) {
            _ if self.given.contains(&axis) => "sweep",
            Some(a) => a.section.as_str(),
            None => "sweep",
        };
        format!("{section}.{axis}")
    }

    /// Keys of the axes given in `[sweep]`, in [`AXES`] order (a swept axis with one value
    /// still counts).
    pub(crate) fn swept(&self) -> Vec<&'static str> {
        self.given.clone()
    }

    pub(crate) fn check(&self, bad: &mut impl FnMut(&str, String)) {
        for a in AXES {
            if (a.len)(self) == 0 {
                bad(
                    &format!("sweep.{}", a.key),
                    "must list at least one value".into(),
                );
            }
        }
        // A repeated value would expand into two identical points writing one result.
        for a in AXES {
            let mut seen = std::collections::HashSet::new();
            if let Some(v) = (0..(a.len)(self))
                .map(|i| (a.shown)(self, i))
                .find(|v| !seen.insert(v.clone()))
            {
                bad(&format!("sweep.{}", a.key), format!("lists {v} twice"));
            }
        }
        let mut positive = |key: &str, ok: bool, what: String| {
            if !ok {
                bad(key, what);
            }
        };
        for &k in &self.k {
            positive(
                &self.key("k"),
                k >= 1,
                format!("k must be at least 1, got {k}"),
            );
        }
        if !self.n_default {
            for &n in &self.n {
                positive(
                    &self.key("n"),
                    n >= 2,
                    format!("N must be at least 2, got {n}"),
                );
            }
        }
        for &t in &self.temperature {
            positive(
                &self.key("temperature"),
                (TEMPERATURE.0..=TEMPERATURE.1).contains(&t),
                format!(
                    "temperature must be in [{}, {}], got {t:e}",
                    TEMPERATURE.0, TEMPERATURE.1
                ),
            );
        }
        for &lr in &self.lr {
            positive(
                &self.key("lr"),
                lr.is_finite() && lr > 0.0,
                format!("lr must be positive, got {lr}"),
            );
        }
        for (name, values) in [
            ("dim", &self.dim),
            ("hidden", &self.hidden),
            ("batch-size", &self.batch_size),
            ("epochs", &self.epochs),
        ] {
            for &v in values {
                positive(
                    &self.key(name),
                    v >= 1,
                    format!("must be at least 1, got {v}"),
                );
            }
        }
    }
}

// Hashed like the point ids below, so it lives beside them rather than with the type.
impl SweepPoint {
    /// What the point computes once its N is resolved to `n` concepts: two points of one plan
    /// with equal keys (N = 0 resolving to an N the plan lists too) train the same encoder.
    pub fn twin_key(&self, n: u32) -> String {
        let mut p = self.clone();
        p.n = n;
        p.id.clear();
        p.pool.clear();
        // The data knobs reach ids through the pool key only, cleared here.
        content_hash(&(self.dataset, &p, p.prior_skew, p.label_noise))
    }
}

impl SweepPoint {
    /// What the points of the point's group share: every setting but k and the seed (the
    /// dataset, N and the rest). An adaptive sweep runs its rounds per group.
    pub fn group_key(&self) -> String {
        let mut p = self.clone();
        p.k = 0;
        p.seed = 0;
        p.id.clear();
        p.pool.clear();
        content_hash(&("group", self.dataset, &p, p.prior_skew, p.label_noise))
    }
}

impl super::Plan {
    /// Each group's point ids and k values (ascending): the grid `analyze` prints best sets
    /// against (see [`crate::analyze::grid_of`]).
    pub fn k_grids(&self) -> Vec<(Vec<String>, Vec<u32>)> {
        let mut groups: std::collections::BTreeMap<String, (Vec<String>, Vec<u32>)> =
            std::collections::BTreeMap::new();
        for p in &self.points {
            let (ids, ks) = groups.entry(p.group_key()).or_default();
            ids.push(p.id.clone());
            if !ks.contains(&p.k) {
                ks.push(p.k);
            }
        }
        groups
            .into_values()
            .map(|(ids, mut ks)| {
                ks.sort_unstable();
                (ids, ks)
            })
            .collect()
    }
}

/// Key of a pool: its content does not depend on `k-max` or the number of passes, because every
/// anchor row draws from its own random stream (see `stages::negatives`).
pub(crate) fn pool_key(dataset: &DatasetPlan, shared: &Shared, p: &SweepPoint) -> String {
    let (n, seed, strategy) = (p.n, p.seed, p.strategy);
    let mut parts = serde_json::json!([
        "pool-v1",
        &dataset.key,
        n,
        seed,
        shared.test_fraction,
        shared.min_examples,
        crate::negatives::strategy(strategy).pool().name(),
    ]);
    // Appended only when set, so keys from before the setting existed stay valid.
    if shared.max_examples > 0 {
        parts
            .as_array_mut()
            .expect("an array")
            .push(shared.max_examples.into());
    }
    if p.prior_skew > 0.0 {
        parts
            .as_array_mut()
            .expect("an array")
            .push(serde_json::json!(["prior-skew", p.prior_skew]));
    }
    if p.label_noise > 0.0 {
        parts
            .as_array_mut()
            .expect("an array")
            .push(serde_json::json!(["label-noise", p.label_noise]));
    }
    content_hash(&parts)
}

/// A point's id: the hash of everything that determines its result (taken with `id` empty,
/// as ids have always been).
fn point_id(p: &SweepPoint, shared: &Shared) -> String {
    let mut p = p.clone();
    p.id.clear();
    let id = ("point-v2", &p, shared.knn, shared.probe_epochs);
    // Augmentations make the positives of augmentation points; hashed only when they differ
    // from the defaults, so ids from before they were hashed stay valid.
    if p.positive == PositiveMode::Augmentation
        && shared.augment != crate::data::augment::Augment::DEFAULT
    {
        content_hash(&(id, shared.augment))
    } else {
        content_hash(&id)
    }
}

/// Recomputes pool keys and point ids after the datasets' keys changed.
pub(crate) fn rekey(points: &mut [SweepPoint], datasets: &[DatasetPlan], shared: &Shared) {
    for p in points {
        p.pool = pool_key(&datasets[p.dataset], shared, p);
        p.id = point_id(p, shared);
    }
}

/// Expands the grid over every dataset, nesting the axes by [`Axis::nest`](super::axes::Axis)
/// (`k` varies fastest).
pub(crate) fn expand(
    grid: &Grid,
    datasets: &[DatasetPlan],
    shared: &Shared,
    channels: &[u32],
) -> Vec<SweepPoint> {
    let axes = nested();
    let at_axis = |key| {
        axes.iter()
            .position(|a| a.key == key)
            .expect("an axis of that key")
    };
    let (temperature, tau_plus, beta) =
        (at_axis("temperature"), at_axis("tau-plus"), at_axis("beta"));
    let mut points = Vec::new();
    for (di, ds) in datasets.iter().enumerate() {
        // N = 0 stands for every concept with enough examples, counted when the data is read.
        let n = match (&ds.n, grid.n_default) {
            (Some(ns), _) => ns.clone(),
            (None, true) => vec![ds.source.concepts().unwrap_or(0)],
            (None, false) => grid.n.clone(),
        };
        let grid = Grid { n, ..grid.clone() };
        let base = SweepPoint {
            id: String::new(),
            dataset: di,
            n: 0,
            seed: 0,
            k: 0,
            prior_skew: 0.0,
            label_noise: 0.0,
            loss: Loss::Nce,
            temperature: 0.0,
            lr: 0.0,
            dim: 0,
            hidden: 0,
            batch_size: 0,
            epochs: 0,
            encoder: ds.encoder,
            channels: if ds.encoder == EncoderKind::Cnn {
                channels.to_vec()
            } else {
                Vec::new()
            },
            weight_decay: shared.weight_decay,
            dropout: if matches!(ds.encoder, EncoderKind::EmbeddingBag | EncoderKind::Gru) {
                shared.dropout
            } else {
                0.0
            },
            precision: shared.precision,
            positive: PositiveMode::SameConcept,
            strategy: Strategy::Uniform,
            hard: None,
            tau_plus: 0.0,
            beta: 0.0,
            false_negatives: FalseNegatives::Keep,
            negative_weight: 0.0,
            momentum: None,
            detector: None,
            pool: String::new(),
        };
        for at in axes
            .iter()
            .map(|a| 0..(a.len)(&grid))
            .multi_cartesian_product()
        {
            let mut p = base.clone();
            for (a, &i) in axes.iter().zip(&at) {
                (a.set)(&mut p, &grid, i);
            }
            // A temperature only matters to InfoNCE: other losses take one point, not one per
            // temperature (the loss is nested outside the temperature).
            if !uses_temperature(p.loss) {
                if at[temperature] > 0 {
                    continue;
                }
                p.temperature = 1.0;
            }
            p.pool = pool_key(ds, shared, &p);
            p.hard = (p.strategy == Strategy::Hard).then(|| shared.hard.clone());
            p.detector = (p.false_negatives != FalseNegatives::Keep).then_some(shared.detector);
            p.momentum = (p.strategy == Strategy::Queue).then_some(shared.momentum);
            if p.loss == Loss::Sigmoid {
                p.negative_weight = shared.negative_weight;
            }
            // Likewise tau-plus and the debiased and hcl losses, and beta and hcl; other losses
            // keep 0, out of their ids.
            if !matches!(p.loss, Loss::Debiased | Loss::Hcl) {
                if at[tau_plus] > 0 {
                    continue;
                }
                p.tau_plus = 0.0;
            }
            if p.loss != Loss::Hcl {
                if at[beta] > 0 {
                    continue;
                }
                p.beta = 0.0;
            }
            p.id = point_id(&p, shared);
            points.push(p);
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use crate::spec::{PipelineSpec, PositiveMode};

    /// Point ids of a synthetic-image sweep over both positives, with `augment` appended to
    /// `[train]`.
    fn ids(augment: &str) -> Vec<(PositiveMode, String)> {
        let spec: PipelineSpec = toml::from_str(&format!(
            "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
             [[datasets]]\nkind = \"synthetic-image\"\nname = \"s\"\nconcepts = 4\n\
             examples-per-concept = 8\nsize = 8\ndifficulty = 0.5\nseed = 0\n\
             [train]\nbatch-size = 8\nepochs = 1\n{augment}\n\
             [sweep]\nk = [1]\nn = [2]\nseed = [0]\n\
             positive = [\"same-concept\", \"augmentation\"]"
        ))
        .unwrap();
        let plan = crate::plan::resolve(&spec, "t.toml").unwrap();
        plan.points
            .iter()
            .map(|p| (p.positive, p.id.clone()))
            .collect()
    }

    #[test]
    fn augmentation_settings_are_part_of_augmentation_points_ids() {
        let default = ids("");
        // The defaults written out are the defaults: ids from before they were hashed keep.
        assert_eq!(
            ids("augment = { crop = 0.6, flip = false, jitter = 0.4, noise = 0.05 }"),
            default
        );
        let cropped = ids("augment = { crop = 0.9 }");
        for ((mode, a), (_, b)) in default.iter().zip(&cropped) {
            match mode {
                PositiveMode::Augmentation => assert_ne!(a, b, "a new crop is a new point"),
                PositiveMode::SameConcept => assert_eq!(a, b, "no augmentation: same point"),
            }
        }
    }

    /// `precision = "bf16"` makes new points; `"f32"` written out keeps the ids from before the
    /// setting existed.
    #[test]
    fn bf16_precision_is_part_of_the_point_id() {
        let default = ids("");
        assert_eq!(ids("precision = \"f32\""), default);
        let bf16 = ids("precision = \"bf16\"");
        assert_eq!(bf16.len(), default.len());
        for ((_, a), (_, b)) in default.iter().zip(&bf16) {
            assert_ne!(a, b, "bf16 is a new point");
        }
    }

    /// Pool keys and point ids of a small text sweep with `concepts` as its `[concepts]`.
    fn keys(concepts: &str) -> crate::Result<Vec<(String, String)>> {
        let spec: PipelineSpec = toml::from_str(&format!(
            "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
             [[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\nconcepts = 4\n\
             [concepts]\n{concepts}\n\
             [sweep]\nk = [1, 2]\nn = [2]\nseed = [0]"
        ))
        .unwrap();
        let plan = crate::plan::resolve(&spec, "t.toml")?;
        Ok(plan
            .points
            .iter()
            .map(|p| (p.pool.clone(), p.id.clone()))
            .collect())
    }

    #[test]
    fn a_tau_plus_sweep_needs_the_debiased_loss() {
        let resolve = |sweep: &str| {
            let spec: PipelineSpec = toml::from_str(&format!(
                "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
                 [[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\nconcepts = 4\n\
                 [sweep]\nk = [1]\nn = [2]\nseed = [0]\n{sweep}"
            ))
            .unwrap();
            crate::plan::resolve(&spec, "t.toml")
        };
        let err = resolve("loss = [\"nce\", \"infonce\"]\ntau-plus = [0.1, 0.2]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sweep.tau-plus") && err.contains("debiased"),
            "{err}"
        );
        let plan = resolve("loss = [\"nce\", \"debiased\"]\ntau-plus = [0.1, 0.2]").unwrap();
        let taus: Vec<f64> = plan.points.iter().map(|p| p.tau_plus).collect();
        assert_eq!(taus, [0.0, 0.1, 0.2]);
    }

    #[test]
    fn settings_that_cannot_go_together_are_refused_with_their_keys() {
        let resolve = |extra: &str| {
            let spec: PipelineSpec = toml::from_str(&format!(
                "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
                 [[datasets]]\nkind = \"synthetic-image\"\nname = \"s\"\nconcepts = 4\n\
                 {extra}"
            ))
            .unwrap();
            crate::plan::resolve(&spec, "t.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let sweep = "[sweep]\nk = [1]\nn = [2]\nseed = [0]\n";
        let err = resolve(&format!(
            "{sweep}strategy = [\"queue\"]\npositive = [\"same-concept\", \"augmentation\"]"
        ))
        .unwrap_err();
        assert!(
            err.contains("sweep.strategy") && err.contains("sweep.positive"),
            "{err}"
        );
        let err = resolve(&format!(
            "{sweep}loss = [\"infonce\", \"hcl\"]\nfalse-negatives = [\"attract\"]"
        ))
        .unwrap_err();
        assert!(
            err.contains("sweep.false-negatives") && err.contains("the hcl loss"),
            "{err}"
        );
        // Settings no point reads are not checked (as tau-plus without the debiased loss).
        resolve(&format!("[train]\nnegative-weight = 0.0\n{sweep}")).unwrap();
        let err = resolve(&format!(
            "[train]\nnegative-weight = 0.0\n{sweep}loss = [\"sigmoid\"]"
        ))
        .unwrap_err();
        assert!(err.contains("train.negative-weight"), "{err}");
        let err = resolve(&format!(
            "[negatives]\ndetector = \"similarity\"\ndetector-threshold = 2.0\n\
             {sweep}false-negatives = [\"eliminate\"]"
        ))
        .unwrap_err();
        assert!(err.contains("negatives.detector-threshold"), "{err}");
    }

    #[test]
    fn a_prior_skew_makes_new_pools_and_points_and_no_skew_keeps_the_old() {
        let plain = keys("").unwrap();
        assert_eq!(keys("prior-skew = 0.0").unwrap(), plain);
        let skewed = keys("prior-skew = 1.0").unwrap();
        for ((pa, ia), (pb, ib)) in plain.iter().zip(&skewed) {
            assert_ne!(pa, pb);
            assert_ne!(ia, ib);
        }
        assert_ne!(keys("prior-skew = 2.0").unwrap(), skewed);
        // Swept, the skew makes points of their own, never twins of the unskewed ones.
        let spec: PipelineSpec = toml::from_str(
            "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
             [[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\nconcepts = 8\n\
             [sweep]\nk = [1]\nn = [4]\nseed = [0]\nprior-skew = [0.0, 1.0]\n\
             label-noise = [0.0, 0.2]",
        )
        .unwrap();
        let plan = crate::plan::resolve(&spec, "t.toml").unwrap();
        let twins: std::collections::HashSet<String> =
            plan.points.iter().map(|p| p.twin_key(4)).collect();
        assert_eq!(twins.len(), 4);
        let err = keys("prior-skew = -1.0").unwrap_err().to_string();
        assert!(
            err.contains("concepts.prior-skew") && err.contains("got -1"),
            "{err}"
        );
    }
}
