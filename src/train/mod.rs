//! The contrastive training loop.
//!
//! Each step encodes every distinct example of the batch once (anchors, positives and negatives
//! repeat: they are `B (k + 2)` draws from a finite set) and gathers the logits from one
//! anchor-by-distinct similarity matrix, so loss and gradients equal the naive per-pair step.
//! The losses themselves live in `losses`, one file each.

mod adamw;
mod false_negatives;
mod losses;
mod queue;

pub use adamw::FusedAdamW;
pub use false_negatives::{Detections, FalseNegativeHandling};
pub use losses::Learned;

use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::augment::Augment;
use crate::data::{Batch, Inputs};
use crate::model::{Encoder, PairScores};
use crate::negatives::Sampler;
use crate::objective::{LossConfig, Triplets};
use crate::{Error, Result};

/// Maps example ids to positions in a per-step list of distinct ids, reusing its buffer.
#[derive(Debug)]
pub struct Dedup {
    slot: Vec<u32>,
    ids: Vec<u32>,
    last: usize,
    /// False-negative detections of every batch since it was made.
    pub detections: Detections,
}

impl Dedup {
    /// For ids below `n`.
    pub fn new(n: usize) -> Self {
        Self {
            slot: vec![u32::MAX; n],
            ids: Vec::new(),
            last: 0,
            detections: Detections::default(),
        }
    }

    /// Distinct examples of the last batch.
    pub fn last_distinct(&self) -> usize {
        self.last
    }

    fn local(&mut self, id: u32) -> u32 {
        let s = &mut self.slot[id as usize];
        if *s == u32::MAX {
            *s = self.ids.len() as u32;
            self.ids.push(id);
        }
        *s
    }

    fn reset(&mut self) {
        self.last = self.ids.len();
        for &id in &self.ids {
            self.slot[id as usize] = u32::MAX;
        }
        self.ids.clear();
    }
}

/// What one loss evaluation needs besides the data: how many negatives, which loss, and where
/// positives come from.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Negatives per anchor (the first `k` of each pool row).
    pub k: usize,
    /// Loss settings.
    pub loss: LossConfig,
    /// Augmentation positives instead of same-concept ones.
    pub views: Option<Views>,
    /// False-negative detection, and what the loss does with the detected ones.
    pub false_negatives: Option<FalseNegativeHandling<'a>>,
    /// The sigmoid loss's learned temperature and bias.
    pub learned: Option<&'a Learned>,
}

/// Mean contrastive loss over rows `range` of `t`, encoding each distinct example once.
/// `train` is the dropout and augmentation stream while training. With false-negative
/// handling, the batch's detections are added to `dedup.detections`.
pub fn batch_loss(
    encoder: &Encoder,
    inputs: &Inputs,
    t: &Triplets<'_>,
    range: std::ops::Range<usize>,
    step: &Step<'_>,
    dedup: &mut Dedup,
    train: Option<&mut ChaCha8Rng>,
) -> Result<Tensor> {
    let (k, cfg, views) = (step.k, &step.loss, step.views.as_ref());
    let b = range.len();
    let mut a_loc = Vec::with_capacity(b);
    let mut p_loc = Vec::with_capacity(b);
    let mut n_loc = Vec::with_capacity(b * k);
    for r in range.clone() {
        a_loc.push(dedup.local(t.anchors[r]));
        if views.is_none() {
            p_loc.push(dedup.local(t.positives[r]));
        }
        for &n in &t.negatives[r * t.k_max..r * t.k_max + k] {
            n_loc.push(dedup.local(n));
        }
    }
    let e = match views {
        None => {
            let x = inputs.select(&dedup.ids)?;
            dedup.reset();
            encoder.encode(&x, train)?
        }
        // One augmented view of every distinct example (anchors, negatives), then a second
        // view of each anchor as its positive, encoded together.
        Some(v) => {
            let mut fixed = ChaCha8Rng::seed_from_u64(0);
            let rng = match train {
                Some(rng) => rng,
                None => &mut fixed,
            };
            let shape = (v.side, v.channels);
            let Batch::Dense(first) = inputs.select_views(&dedup.ids, &v.augment, shape, rng)?
            else {
                unreachable!("views are dense")
            };
            let u = dedup.ids.len() as u32;
            dedup.reset();
            let Batch::Dense(second) =
                inputs.select_views(&t.anchors[range.clone()], &v.augment, shape, rng)?
            else {
                unreachable!("views are dense")
            };
            p_loc.extend(u..u + b as u32);
            encoder.encode(&Batch::Dense(Tensor::cat(&[&first, &second], 0)?), None)?
        }
    };
    let e = cfg.represent(&e)?;
    // Each anchor's logits against its positive and its k negatives, B (k + 1) dot products,
    // not the B x U similarity matrix with every distinct row.
    let mut candidates = Vec::with_capacity(b * (k + 1));
    for (i, &p) in p_loc.iter().enumerate() {
        candidates.push(p);
        candidates.extend_from_slice(&n_loc[i * k..(i + 1) * k]);
    }
    let flagged = match &step.false_negatives {
        None => None,
        Some(h) => {
            let anchors = &t.anchors[range.clone()];
            let negatives: Vec<u32> = range
                .clone()
                .flat_map(|r| &t.negatives[r * t.k_max..r * t.k_max + k])
                .copied()
                .collect();
            let support = false_negatives::Support {
                e: &e,
                anchors: &a_loc,
                positives: &p_loc,
                negatives: &n_loc,
            };
            let mask = false_negatives::detect(
                h,
                anchors,
                &negatives,
                k,
                &support,
                &mut dedup.detections,
            )?;
            Some(losses::Flagged { mask, mode: h.mode })
        }
    };
    let logits = e.apply_op1(PairScores {
        anchors: a_loc,
        candidates,
        per: k + 1,
    })?;
    losses::loss(&logits, k, cfg, step.learned, flagged.as_ref())
}

/// Augmentation positives: images of `side x side x channels`, augmented per view.
#[derive(Debug, Clone, Copy)]
pub struct Views {
    /// The augmentations.
    pub augment: Augment,
    /// Image side.
    pub side: usize,
    /// Image channels.
    pub channels: usize,
}

/// Optimiser and schedule of one point.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig<'a> {
    /// Negatives, loss and positives of every step.
    pub step: Step<'a>,
    /// Adam learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Anchors per step.
    pub batch_size: usize,
    /// Seed of the dropout and augmentation stream.
    pub seed: u64,
}

/// What a training run reports.
#[derive(Debug, Clone)]
pub struct TrainStats {
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean training loss over the last 10% of steps.
    pub final_loss: f64,
    /// Wall time spent in optimiser steps.
    pub step_seconds: f64,
    /// False-negative detections over every step (zero without a detector).
    pub detections: Detections,
    /// Mean age in steps of the negatives trained with (queue points; NaN for others).
    pub staleness: f64,
}

/// A loss this many times its first step's (or 1, if larger) has diverged.
const EXPLODED: f64 = 1e4;

/// Trains `encoder` on every row of `t`, in order, `batch_size` rows per step; `sampler` gives
/// each step's triplets (the pool's, or negatives of its own).
pub fn train(
    encoder: &Encoder,
    varmap: &VarMap,
    inputs: &Inputs,
    t: &Triplets<'_>,
    cfg: &TrainConfig<'_>,
    sampler: &mut dyn Sampler,
) -> Result<TrainStats> {
    let mut opt = FusedAdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let mut dedup = Dedup::new(inputs.len());
    let mut dropout = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x000d_8090_u64);
    let steps = t.len().div_ceil(cfg.batch_size);
    let tail_from = steps - (steps / 10).max(1);
    let (mut tail_sum, mut tail_n) = (0.0, 0usize);
    let mut first = 0.0;
    let start = std::time::Instant::now();
    for step in 0..steps {
        let lo = step * cfg.batch_size;
        let hi = (lo + cfg.batch_size).min(t.len());
        let loss = if let Some(q) = sampler.queue() {
            queue::loss(
                encoder,
                inputs,
                t,
                lo..hi,
                &cfg.step,
                &mut dedup,
                Some(&mut dropout),
                q,
                step,
            )?
        } else {
            let (batch, rows) = sampler.batch(step, lo..hi, *t, encoder, inputs)?;
            batch_loss(
                encoder,
                inputs,
                &batch,
                rows,
                &cfg.step,
                &mut dedup,
                Some(&mut dropout),
            )?
        };
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(Error::Diverged {
                step,
                reason: format!("the loss is {value}"),
            });
        }
        // A loss that grows far past where it started has left any useful optimum behind,
        // however finite it stays (lr = 1e6 reaches 1e27).
        if step == 0 {
            first = f64::from(value).abs();
        } else if f64::from(value) > EXPLODED * first.max(1.0) {
            return Err(Error::Diverged {
                step,
                reason: format!(
                    "the loss exploded to {value:e}, over {EXPLODED:e} times its {first:.3} at \
                     the first step (lower train.lr)"
                ),
            });
        }
        opt.backward_step(&loss)?;
        if let Some((q, _)) = sampler.queue() {
            q.momentum_update(varmap)?;
        }
        if step >= tail_from {
            tail_sum += f64::from(value);
            tail_n += 1;
        }
    }
    Ok(TrainStats {
        steps,
        final_loss: tail_sum / tail_n.max(1) as f64,
        step_seconds: start.elapsed().as_secs_f64(),
        detections: dedup.detections,
        staleness: sampler.staleness(),
    })
}

/// The device training runs on.
pub fn device() -> Device {
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Encoder, EncoderConfig};
    use crate::negatives::PoolSampler;
    use crate::spec::{Detector, EncoderKind, FalseNegatives, Loss};
    use candle_core::{DType, Module};

    fn setup() -> (Encoder, VarMap, Tensor) {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let cfg = EncoderConfig::dense(EncoderKind::Mlp, 8, 16, 4);
        let enc = Encoder::new(&cfg, 3, &vm, &dev).unwrap();
        let x: Vec<f32> = (0..10 * 8).map(|i| ((i * 37 % 17) as f32) / 17.0).collect();
        (enc, vm, Tensor::from_vec(x, (10, 8), &dev).unwrap())
    }

    /// The loss written out pair by pair, with no deduplication; `fns` removes (elimination)
    /// or promotes to positives (attraction) the negatives of the anchor's concept.
    fn naive(
        enc: &Encoder,
        x: &Tensor,
        t: &Triplets<'_>,
        k: usize,
        cfg: &LossConfig,
        fns: Option<(FalseNegatives, &[u32])>,
        learned: &Learned,
    ) -> Tensor {
        let mut losses = Vec::new();
        for r in 0..t.len() {
            let f = |id: u32| {
                cfg.represent(&enc.forward(&x.narrow(0, id as usize, 1).unwrap()).unwrap())
                    .unwrap()
            };
            let a = f(t.anchors[r]);
            let mut logits = vec![(&a * f(t.positives[r])).unwrap().sum_all().unwrap()];
            let mut attracted = Vec::new();
            for &n in &t.negatives[r * t.k_max..r * t.k_max + k] {
                let same = fns.is_some_and(|(_, c)| c[n as usize] == c[t.anchors[r] as usize]);
                match fns {
                    Some((FalseNegatives::Eliminate, _)) if same => continue,
                    Some((FalseNegatives::Attract, _)) if same => attracted.push(logits.len()),
                    _ => {}
                }
                logits.push((&a * f(n)).unwrap().sum_all().unwrap());
            }
            let kept = logits.len() - 1;
            let mut l = Tensor::stack(&logits, 0).unwrap();
            if cfg.loss == Loss::Sigmoid {
                // Zhai et al. (2023), algorithm 1: -log sigmoid(z) for the positive and
                // -log sigmoid(-z) for each negative, z = t s + b.
                let scale = learned.log_t.exp().unwrap().flatten_all().unwrap();
                let z = l
                    .broadcast_mul(&scale)
                    .unwrap()
                    .broadcast_add(&learned.bias.flatten_all().unwrap())
                    .unwrap();
                let log_sigmoid = |v: Tensor| {
                    let s = (v.neg().unwrap().exp().unwrap() + 1.0)
                        .unwrap()
                        .recip()
                        .unwrap();
                    s.log().unwrap()
                };
                let pos = log_sigmoid(z.get(0).unwrap());
                let mut row = pos.neg().unwrap();
                for j in 1..=kept {
                    let term = log_sigmoid(z.get(j).unwrap().neg().unwrap());
                    row = (row - (term * cfg.negative_weight).unwrap()).unwrap();
                }
                losses.push(row);
                continue;
            }
            if cfg.loss != Loss::Nce {
                l = (l / cfg.temperature).unwrap();
            }
            if matches!(cfg.loss, Loss::Debiased | Loss::Hcl) {
                // Chuang et al. (2020), eq. 6, written out directly; for hcl, Robinson et al.'s
                // (2021) reweighted sum as their reference code computes it.
                let e = l.exp().unwrap();
                let pos = e.get(0).unwrap();
                let negs = e.narrow(0, 1, kept).unwrap();
                let neg = if cfg.loss == Loss::Hcl && kept > 0 {
                    let imp = (l.narrow(0, 1, kept).unwrap() * cfg.beta)
                        .unwrap()
                        .exp()
                        .unwrap();
                    let mean = imp.mean_all().unwrap();
                    ((&imp * &negs).unwrap().sum_all().unwrap() / mean).unwrap()
                } else {
                    negs.sum_all().unwrap()
                };
                let kf = kept as f64;
                let g = ((neg - (&pos * (kf * cfg.tau_plus)).unwrap()).unwrap()
                    / (1.0 - cfg.tau_plus))
                    .unwrap()
                    .maximum(kf * (-1.0 / cfg.temperature).exp())
                    .unwrap();
                let ratio = (&pos / (&pos + g).unwrap()).unwrap();
                losses.push(ratio.log().unwrap().neg().unwrap());
                continue;
            }
            if cfg.loss == Loss::Decoupled {
                // Yeh et al. (2022), eq. 6: the positive only in the numerator.
                if kept == 0 {
                    losses.push(Tensor::new(0f32, x.device()).unwrap());
                    continue;
                }
                let neg = l
                    .narrow(0, 1, kept)
                    .unwrap()
                    .exp()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                losses.push((neg.log().unwrap() - l.get(0).unwrap()).unwrap());
                continue;
            }
            let lse = l.exp().unwrap().sum_all().unwrap().log().unwrap();
            // Attraction: the mean of the positive's and the attracted negatives' terms.
            let mut terms = vec![(&lse - l.get(0).unwrap()).unwrap()];
            for &j in &attracted {
                terms.push((&lse - l.get(j).unwrap()).unwrap());
            }
            losses.push(Tensor::stack(&terms, 0).unwrap().mean_all().unwrap());
        }
        Tensor::stack(&losses, 0).unwrap().mean_all().unwrap()
    }

    #[test]
    fn deduplicated_loss_and_gradients_equal_naive() {
        let (enc, vm, x) = setup();
        let learned = Learned::new(&vm, &Device::Cpu).unwrap();
        let anchors = [0u32, 1, 2, 0];
        let positives = [3u32, 4, 5, 3];
        let negatives = [1u32, 1, 2, 9, 0, 0, 7, 7, 2, 2, 2, 8, 9, 8, 9, 8];
        let t = Triplets {
            anchors: &anchors,
            positives: &positives,
            negatives: &negatives,
            k_max: 4,
        };
        for cfg in [
            LossConfig {
                loss: Loss::Nce,
                temperature: 1.0,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Infonce,
                temperature: 0.2,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Debiased,
                temperature: 0.2,
                tau_plus: 0.1,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Debiased,
                temperature: 0.5,
                tau_plus: 0.3,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Decoupled,
                temperature: 0.2,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Decoupled,
                temperature: 0.02,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Hcl,
                temperature: 0.2,
                tau_plus: 0.1,
                beta: 1.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Hcl,
                temperature: 0.1,
                tau_plus: 0.0,
                beta: 3.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Hcl,
                temperature: 0.5,
                tau_plus: 0.2,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Sigmoid,
                temperature: 1.0,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 1.0,
            },
            LossConfig {
                loss: Loss::Sigmoid,
                temperature: 1.0,
                tau_plus: 0.0,
                beta: 0.0,
                negative_weight: 0.25,
            },
        ] {
            // Example i is of concept i % 3: anchor 0's negatives hold no false negative,
            // anchor 1's one, anchor 2's three (all of them) and the last anchor's two.
            let concepts: Vec<u32> = (0..10).map(|i| i % 3).collect();
            let modes = [
                FalseNegatives::Keep,
                FalseNegatives::Eliminate,
                FalseNegatives::Attract,
            ];
            for mode in modes {
                if mode == FalseNegatives::Attract && !matches!(cfg.loss, Loss::Nce | Loss::Infonce)
                {
                    continue;
                }
                let mut dedup = Dedup::new(10);
                let inputs = Inputs::Dense(x.clone());
                let step = Step {
                    k: 3,
                    loss: cfg,
                    views: None,
                    false_negatives: (mode != FalseNegatives::Keep).then_some(
                        FalseNegativeHandling {
                            mode,
                            detector: Detector::Oracle,
                            threshold: f64::NAN,
                            concepts: &concepts,
                        },
                    ),
                    learned: Some(&learned),
                };
                let fast = batch_loss(&enc, &inputs, &t, 0..4, &step, &mut dedup, None).unwrap();
                let fns = (mode != FalseNegatives::Keep).then_some((mode, &concepts[..]));
                let slow = naive(&enc, &x, &t, 3, &cfg, fns, &learned);
                let (fv, sv) = (
                    fast.to_scalar::<f32>().unwrap(),
                    slow.to_scalar::<f32>().unwrap(),
                );
                let what = format!("{cfg:?} {mode:?}");
                assert!((fv - sv).abs() < 1e-5, "{what}: {fv} vs {sv}");
                let (gf, gs) = (fast.backward().unwrap(), slow.backward().unwrap());
                for v in vm.all_vars() {
                    // The learned scalars are in the graph of the sigmoid loss only.
                    let scalar = v.as_tensor().id() == learned.log_t.id()
                        || v.as_tensor().id() == learned.bias.id();
                    if scalar && cfg.loss != Loss::Sigmoid {
                        assert!(gf.get(v.as_tensor()).is_none());
                        continue;
                    }
                    crate::testing::assert_grads_close(&gf, &gs, v.as_tensor(), 1e-5, 1e-5, &what);
                }
                if mode != FalseNegatives::Keep {
                    let flagged = 1 + 3 + 2;
                    let want = Detections {
                        flagged,
                        correct: flagged,
                        actual: flagged,
                    };
                    assert_eq!(dedup.detections, want, "{what}");
                }
            }
        }
    }

    #[test]
    fn training_is_deterministic_and_lowers_the_loss() {
        let run = || {
            let (enc, vm, x) = setup();
            let anchors: Vec<u32> = (0..40).map(|i| i % 5).collect();
            let positives: Vec<u32> = anchors.iter().map(|a| a + 5).collect();
            let negatives: Vec<u32> = (0..40 * 2).map(|i| (i * 7 % 10) as u32).collect();
            let t = Triplets {
                anchors: &anchors,
                positives: &positives,
                negatives: &negatives,
                k_max: 2,
            };
            let cfg = TrainConfig {
                step: Step {
                    k: 2,
                    loss: LossConfig {
                        loss: Loss::Nce,
                        temperature: 1.0,
                        tau_plus: 0.0,
                        beta: 0.0,
                        negative_weight: 1.0,
                    },
                    views: None,
                    false_negatives: None,
                    learned: None,
                },
                lr: 0.01,
                weight_decay: 0.0,
                batch_size: 8,
                seed: 0,
            };
            let mut dedup = Dedup::new(10);
            let inputs = Inputs::Dense(x.clone());
            let mut loss = || {
                batch_loss(&enc, &inputs, &t, 0..40, &cfg.step, &mut dedup, None)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            let before = loss();
            let stats =
                train(&enc, &vm, &inputs, &t, &cfg, &mut PoolSampler::new(t.len())).unwrap();
            let after = loss();
            assert_eq!(stats.steps, 5);
            (
                before,
                after,
                enc.forward(&x)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        };
        let (b1, a1, w1) = run();
        let (_, a2, w2) = run();
        assert!(a1 < b1, "loss {b1} -> {a1}");
        assert_eq!(a1.to_bits(), a2.to_bits());
        assert_eq!(w1, w2);
    }
}
