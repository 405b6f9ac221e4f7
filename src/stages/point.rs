//! One sweep point: train an encoder on its pool prefix, evaluate it, and produce its result row.

use std::time::Instant;

use candle_nn::VarMap;

use super::columns::ResultRow;
use super::pools::{Prepared, pool_stats};
use crate::data::Inputs;
use crate::model::{Encoder, EncoderConfig, checkpoint_bytes};
use crate::negatives::{self, DataShape, SamplerCtx};
use crate::objective::{LossConfig, Triplets, represent};
use crate::plan::{Plan, SweepPoint};
use crate::spec::{Detector, FalseNegatives, Loss, PositiveMode};
use crate::train::{
    Dedup, FalseNegativeHandling, Learned, Step, TrainConfig, Views, batch_loss, train,
};
use crate::{Result, eval, theory};

/// What a point needs, all loaded once per process and shared.
#[derive(Debug, Clone, Copy)]
pub struct PointInputs<'a> {
    /// The resolved pipeline.
    pub plan: &'a Plan,
    /// The point.
    pub point: &'a SweepPoint,
    /// Encoder inputs of every example of the dataset.
    pub inputs: &'a Inputs,
    /// Image channels (1 for text).
    pub channels: usize,
    /// Concepts, split and pool.
    pub prepared: &'a Prepared,
    /// blake3 of the ingested examples.
    pub data_hash: &'a str,
    /// safetensors bytes of the hard-negative reference checkpoint, when the point has one.
    pub reference: Option<&'a [u8]>,
}

/// A finished point: its row and, if asked for, its weights.
#[derive(Debug)]
pub struct PointOutput {
    /// The results row.
    pub row: ResultRow,
    /// safetensors bytes of the weights.
    pub checkpoint: Option<Vec<u8>>,
}

/// Checks `p` against the data of its pool before any training: the training anchors must be
/// able to supply every step's negatives (see [`negatives::Strategy::check_data`]).
///
/// # Errors
/// What falls short, with the settings and the numbers.
pub fn preflight(p: &SweepPoint, prep: &Prepared) -> std::result::Result<(), String> {
    let n_train = prep.train_ids.len();
    let rows = (p.epochs as usize * n_train).min(prep.anchors.len());
    let concepts = prep.concepts.len();
    if rows == 0 {
        return Err(format!(
            "the training split of its {concepts} concepts holds no anchor"
        ));
    }
    let shape = DataShape {
        rows,
        n_train,
        concepts,
    };
    negatives::strategy(p.strategy).check_data(p, &shape)
}

/// The setting a [`preflight`] failure of `p` is about.
pub fn preflight_key(p: &SweepPoint) -> &'static str {
    negatives::strategy(p.strategy).setting()
}

/// Trains and evaluates one point. Blocking: call it off the async runtime.
pub fn compute(x: PointInputs<'_>) -> Result<PointOutput> {
    let start = Instant::now();
    let (p, prep) = (x.point, x.prepared);
    let k = p.k as usize;
    let n_train = prep.train_ids.len();
    let rows = (p.epochs as usize * n_train).min(prep.anchors.len());
    let loss = LossConfig {
        loss: p.loss,
        temperature: p.temperature,
        tau_plus: p.tau_plus,
        beta: p.beta,
        negative_weight: p.negative_weight,
    };
    let cfg = EncoderConfig {
        kind: p.encoder,
        input: x.inputs.width(),
        hidden: p.hidden as usize,
        dim: p.dim as usize,
        channels: p.channels.iter().map(|&c| c as usize).collect(),
        in_channels: x.channels,
        dropout: p.dropout as f32,
        precision: p.precision,
    };
    let varmap = VarMap::new();
    let encoder = Encoder::new(&cfg, p.seed, &varmap, x.inputs.device())?;
    let learned = match p.loss {
        Loss::Sigmoid => Some(Learned::new(&varmap, x.inputs.device())?),
        _ => None,
    };
    // The sampler is built after the encoder: a reference encoder of hard negatives is
    // initialised the same way.
    let mut sampler = negatives::strategy(p.strategy).sampler(&SamplerCtx {
        point: p,
        anchors: &prep.anchors[..rows],
        train_ids: &prep.train_ids,
        inputs: x.inputs,
        encoder: &cfg,
        loss,
        reference: x.reference,
    })?;
    let rows = sampler.rows();
    let triplets = Triplets {
        anchors: &prep.anchors[..rows],
        positives: &prep.positives[..rows],
        negatives: &prep.negatives[..rows * prep.k_max],
        k_max: prep.k_max,
    };
    let tc = TrainConfig {
        step: Step {
            k,
            loss,
            views: (p.positive == PositiveMode::Augmentation).then(|| {
                let side = ((x.inputs.width() / x.channels) as f64).sqrt().round() as usize;
                Views {
                    augment: x.plan.shared.augment,
                    side,
                    channels: x.channels,
                }
            }),
            false_negatives: p.detector.map(|d| FalseNegativeHandling {
                mode: p.false_negatives,
                detector: d.detector,
                threshold: d.threshold.unwrap_or(f64::NAN),
                concepts: &prep.class_of,
            }),
            learned: learned.as_ref(),
        },
        lr: p.lr,
        weight_decay: p.weight_decay,
        batch_size: p.batch_size as usize,
        seed: p.seed,
    };
    let stats = train(
        &encoder,
        &varmap,
        x.inputs,
        &triplets,
        &tc,
        sampler.as_mut(),
    )?;
    let train_seconds = start.elapsed().as_secs_f64();
    let learned_values = match &learned {
        Some(l) => l.values()?,
        None => (f64::NAN, f64::NAN),
    };

    let eval_start = Instant::now();
    let n = prep.concepts.len();
    let cls = |ids: &[u32]| {
        ids.iter()
            .map(|&i| prep.class_of[i as usize])
            .collect::<Vec<_>>()
    };
    let (train_cls, test_cls) = (cls(&prep.train_ids), cls(&prep.test_ids));
    let f_train = represent(&encoder, x.inputs, &prep.train_ids, &loss)?;
    let f_test = represent(&encoder, x.inputs, &prep.test_ids, &loss)?;
    eval::check_representations(&f_train, stats.steps)?;
    eval::check_representations(&f_test, stats.steps)?;
    let mean_acc = eval::mean_classifier_accuracy(&f_train, &train_cls, &f_test, &test_cls, n)?;
    let knn_acc = eval::knn_accuracy(
        &f_train,
        &train_cls,
        &f_test,
        &test_cls,
        n,
        x.plan.shared.knn as usize,
    )?;
    let (probe_top1, probe_top5) = if x.plan.shared.probe_epochs > 0 {
        eval::linear_probe(
            &f_train,
            &train_cls,
            &f_test,
            &test_cls,
            n,
            x.plan.shared.probe_epochs,
            p.seed,
        )?
    } else {
        (f64::NAN, f64::NAN)
    };
    let alignment = eval::alignment(&f_test, &eval::same_concept_pairs(&test_cls), 2.0)?;
    let uniformity = eval::uniformity(&f_test, 2.0)?;
    let effective_rank = eval::effective_rank(&f_test)?;
    let (ta, tp, tn) = prep.test_triplets(p.seed, k);
    let (test_loss, collision_free_loss) = if ta.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        let t = Triplets {
            anchors: &ta,
            positives: &tp,
            negatives: &tn,
            k_max: k,
        };
        let mut dedup = Dedup::new(x.inputs.len());
        // Same-concept positives in either mode and every negative kept: the held-out loss
        // compares like with like across points.
        let step = Step {
            views: None,
            false_negatives: None,
            ..tc.step
        };
        let mut loss = |step: &Step<'_>| -> Result<f64> {
            let l = batch_loss(&encoder, x.inputs, &t, 0..ta.len(), step, &mut dedup, None)?;
            Ok(f64::from(l.to_scalar::<f32>()?))
        };
        let plain = loss(&step)?;
        // The same loss on the same batch with the true same-concept negatives removed.
        let collision_free = loss(&Step {
            false_negatives: Some(FalseNegativeHandling {
                mode: FalseNegatives::Eliminate,
                detector: Detector::Oracle,
                threshold: f64::NAN,
                concepts: &prep.class_of,
            }),
            ..step
        })?;
        (plain, collision_free)
    };
    let eval_seconds = eval_start.elapsed().as_secs_f64();
    // Accounting of the negatives actually trained with (mined ones for hard points).
    let (used, stride) = sampler.used(triplets);
    let pool = pool_stats(
        triplets.anchors,
        used,
        stride,
        k,
        &prep.class_of,
        prep.concepts.len(),
    );
    let tau_k = theory::collision_probability(&prep.rho, p.k);
    let coverage_theory = theory::coverage_probability_counts(&prep.train_counts(), p.k);
    let checkpoint = if x.plan.shared.checkpoints {
        Some(checkpoint_bytes(&varmap)?)
    } else {
        None
    };
    let ds = &x.plan.datasets[p.dataset];
    let row = ResultRow {
        dataset: ds.name.clone(),
        n: n as u32,
        k: p.k,
        point_id: p.id.clone(),
        seed: p.seed,
        prior_skew: p.prior_skew,
        label_noise: p.label_noise,
        loss: p.loss.as_str(),
        temperature: p.temperature,
        tau_plus: p.tau_plus,
        beta: p.beta,
        negative_weight: p.negative_weight,
        lr: p.lr,
        encoder: p.encoder.as_str(),
        precision: p.precision.as_str(),
        dim: p.dim,
        hidden: p.hidden,
        batch_size: p.batch_size,
        epochs: p.epochs,
        positive: p.positive.as_str(),
        strategy: p.strategy.as_str(),
        false_negatives: p.false_negatives.as_str(),
        detector: p.detector.map_or("none", |d| d.detector.as_str()),
        detector_precision: stats.detections.precision(),
        detector_recall: stats.detections.recall(),
        queue_staleness: stats.staleness,
        learned_temperature: learned_values.0,
        learned_bias: learned_values.1,
        mean_acc,
        knn_acc,
        probe_top1,
        probe_top5,
        test_loss,
        collision_free_loss,
        collision_loss_gap: test_loss - collision_free_loss,
        train_loss: stats.final_loss,
        alignment,
        uniformity,
        effective_rank,
        collision_rate: pool.collision_rate,
        collisions_mean: pool.collisions_mean,
        coverage_rate: pool.coverage_rate,
        covered_fraction: pool.covered_fraction,
        tau_k,
        expected_collisions: theory::expected_collisions(&prep.rho, p.k),
        coverage_theory,
        ash_coefficient: theory::ash_coefficient(n as u32, p.k, tau_k),
        arora_coefficient: theory::arora_coefficient(tau_k, coverage_theory),
        n_train: n_train as u32,
        n_test: prep.test_ids.len() as u32,
        steps: stats.steps as u32,
        train_seconds,
        step_seconds: stats.step_seconds,
        eval_seconds,
        total_seconds: start.elapsed().as_secs_f64(),
        config_hash: x.plan.config_hash.clone(),
        data_hash: x.data_hash.to_owned(),
        version: crate::VERSION.to_owned(),
        git_revision: crate::GIT_REVISION.map(str::to_owned),
        finished_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .unwrap_or_default(),
    };
    Ok(PointOutput { row, checkpoint })
}

#[cfg(test)]
mod tests {
    use crate::negatives::{DataShape, strategy};
    use crate::{plan, spec};

    #[test]
    fn data_checks_reject_shortfalls_naming_the_setting_and_the_numbers() {
        let spec: spec::PipelineSpec = toml::from_str(
            "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
             [[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\nconcepts = 4\n\
             examples-per-concept = 8\nvocab = 32\nlength = 4\ndifficulty = 0.5\nseed = 0\n\
             [negatives.hard]\nmin-rank = 3\nmax-rank = 40\n\
             [train]\nbatch-size = 16\nepochs = 1\n\
             [sweep]\nk = [12]\nn = [2]\nseed = [0]\n\
             strategy = [\"uniform\", \"collision-free\", \"in-batch\", \"hard\"]",
        )
        .unwrap();
        let plan = plan::resolve(&spec, "t.toml").unwrap();
        // 2 concepts of 6 training examples each: 12 anchors.
        let shape = DataShape {
            rows: 12,
            n_train: 12,
            concepts: 2,
        };
        let check = |kind| {
            let p = plan.points.iter().find(|p| p.strategy == kind).unwrap();
            let s = strategy(kind);
            (s.setting(), s.check_data(p, &shape))
        };
        assert_eq!(check(spec::Strategy::Uniform), ("negatives.k", Ok(())));
        assert_eq!(
            check(spec::Strategy::CollisionFree),
            ("negatives.k", Ok(()))
        );
        assert_eq!(
            check(spec::Strategy::InBatch),
            (
                "negatives.k",
                Err(
                    "in-batch negatives: k = 12 needs batches of at least 13 anchors, but the \
                     training split has 12 anchors (2 concepts, 1 epochs) and batch-size = 16; \
                     lower k, or use more examples per concept"
                        .to_owned()
                )
            )
        );
        assert_eq!(
            check(spec::Strategy::Hard),
            (
                "negatives.hard",
                Err(
                    "hard negatives: k = 12 from ranks 3..=40 need at least 14 neighbours per \
                     anchor, but the training split has 12 examples (10 neighbours besides \
                     anchor and positive); lower k or negatives.hard.min-rank"
                        .to_owned()
                )
            )
        );
    }
}
