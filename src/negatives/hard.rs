//! Hard negatives: each anchor's k negatives are drawn without replacement from its neighbours
//! ranked `min-rank..=max-rank` among the training examples under a reference encoder (the
//! model being trained, or a checkpoint), mined step by step. Points take the uniform pool's
//! anchors and positives.

use std::ops::Range;

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::seq::index::sample;

use super::{
    DataShape, GridCheck, Pool, Sampler, SamplerCtx, Strategy, Triplets, uniform::Uniform,
};
use crate::data::Inputs;
use crate::data::stream;
use crate::model::{Encoder, load_checkpoint};
use crate::objective::{LossConfig, represent};
use crate::point::SweepPoint;
use crate::{Error, Result, spec};

/// `strategy = "hard"`, set up by `[negatives.hard]`.
#[derive(Debug)]
pub(super) struct Hard;

impl Strategy for Hard {
    fn kind(&self) -> spec::Strategy {
        spec::Strategy::Hard
    }

    fn pool(&self) -> &'static dyn Pool {
        &Uniform
    }

    fn check_grid(&self, grid: &GridCheck<'_>, bad: &mut dyn FnMut(&str, String)) {
        let hard = grid.hard;
        if hard.min_rank == 0 || hard.max_rank < hard.min_rank {
            bad(
                "negatives.hard",
                format!(
                    "needs 1 <= min-rank <= max-rank, got min-rank = {} and max-rank = {}",
                    hard.min_rank, hard.max_rank
                ),
            );
        }
        let window = hard.max_rank.saturating_sub(hard.min_rank) + 1;
        for &k in grid.k {
            if k > window {
                bad(
                    grid.k_key,
                    format!(
                        "k = {k} exceeds the {window} ranks of the hard-negative window (negatives.hard: min-rank = {}, max-rank = {})",
                        hard.min_rank, hard.max_rank
                    ),
                );
            }
        }
        if hard.refresh == 0 {
            bad("negatives.hard.refresh", "must be at least 1".into());
        }
        let (lo, hi) = (
            hard.min_score.unwrap_or(f64::NEG_INFINITY),
            hard.max_score.unwrap_or(f64::INFINITY),
        );
        if lo.is_nan() || hi.is_nan() || lo > hi {
            bad(
                "negatives.hard",
                format!("needs min-score <= max-score, got {lo} and {hi}"),
            );
        }
    }

    fn setting(&self) -> &'static str {
        "negatives.hard"
    }

    fn check_data(&self, p: &SweepPoint, shape: &DataShape) -> std::result::Result<(), String> {
        let (k, n_train) = (p.k as usize, shape.n_train);
        let h = p.hard.as_ref().expect("hard points carry their settings");
        // Neighbours of an anchor: the training examples but itself and its positive.
        let neighbours = n_train.saturating_sub(2);
        let needed = h.min_rank as usize + k - 1;
        if neighbours < needed {
            return Err(format!(
                "hard negatives: k = {k} from ranks {}..={} need at least {needed} neighbours \
                 per anchor, but the training split has {n_train} examples ({neighbours} \
                 neighbours besides anchor and positive); lower k or negatives.hard.min-rank",
                h.min_rank, h.max_rank
            ));
        }
        Ok(())
    }

    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>> {
        let p = cx.point;
        let h = p.hard.as_ref().expect("hard points carry their settings");
        let reference = match cx.reference {
            None => Reference::Current(h.refresh as usize),
            Some(bytes) => {
                let vm = VarMap::new();
                let reference = Encoder::new(cx.encoder, p.seed, &vm, cx.inputs.device())?;
                let what = h.reference.as_deref().unwrap_or("reference");
                load_checkpoint(&vm, bytes, what)?;
                Reference::Fixed(represent(&reference, cx.inputs, cx.train_ids, &cx.loss)?)
            }
        };
        let miner = HardMiner::new(
            cx.train_ids,
            cx.inputs.len(),
            (h.min_rank as usize, h.max_rank as usize),
            p.k as usize,
            reference,
            cx.loss,
            p.seed,
        )
        .with_scores(h.min_score, h.max_score);
        Ok(Box::new(MinerSampler {
            miner,
            rows: cx.anchors.len(),
        }))
    }
}

/// Mines each step's negatives and trains on them.
#[derive(Debug)]
struct MinerSampler<'a> {
    miner: HardMiner<'a>,
    rows: usize,
}

impl Sampler for MinerSampler<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn batch<'s>(
        &'s mut self,
        step: usize,
        rows: Range<usize>,
        t: Triplets<'s>,
        encoder: &Encoder,
        inputs: &Inputs,
    ) -> Result<(Triplets<'s>, Range<usize>)> {
        let k = self.miner.k;
        let negatives = self.miner.mine(step, rows.clone(), &t, encoder, inputs)?;
        let mined = Triplets {
            anchors: &t.anchors[rows.clone()],
            positives: &t.positives[rows.clone()],
            negatives,
            k_max: k,
        };
        Ok((mined, 0..rows.len()))
    }

    fn used<'s>(&'s self, _t: Triplets<'s>) -> (&'s [u32], usize) {
        (&self.miner.used, self.miner.k)
    }
}

/// Positions of the rows of `sims` ranked `min_rank..=max_rank` by similarity (rank 1 = most
/// similar), leaving out the positions in `skip`; ties go to the lower position. Linear time
/// plus a sort of the `max_rank` best.
pub fn ranked_window(sims: &[f32], skip: [u32; 2], min_rank: usize, max_rank: usize) -> Vec<u32> {
    let mut cand: Vec<u32> = (0..sims.len() as u32)
        .filter(|i| !skip.contains(i))
        .collect();
    let order = |a: &u32, b: &u32| {
        sims[*b as usize]
            .total_cmp(&sims[*a as usize])
            .then(a.cmp(b))
    };
    let m = max_rank.min(cand.len());
    if m == 0 {
        return Vec::new();
    }
    if m < cand.len() {
        cand.select_nth_unstable_by(m - 1, order);
        cand.truncate(m);
    }
    cand.sort_unstable_by(order);
    cand.drain(..(min_rank.max(1) - 1).min(cand.len()));
    cand
}

/// Where a hard-negative miner's reference representations come from.
#[derive(Debug)]
pub enum Reference {
    /// Fixed representations of the training examples (a checkpoint's), row per training id.
    Fixed(Tensor),
    /// The model being trained, re-encoded every this many steps.
    Current(usize),
}

/// Mines each step's negatives: the `k` of every anchor are drawn without replacement from
/// its neighbours ranked `min_rank..=max_rank` among the training examples (the anchor and its
/// positive left out) under the reference encoder.
#[derive(Debug)]
pub struct HardMiner<'a> {
    train_ids: &'a [u32],
    slot: Vec<u32>,
    window: (usize, usize),
    scores: (f32, f32),
    k: usize,
    reference: Reference,
    current: Option<Tensor>,
    loss: LossConfig,
    seed: u64,
    step_negatives: Vec<u32>,
    /// Every mined negative so far, `k` per row in row order (for the collision accounting).
    pub used: Vec<u32>,
}

impl<'a> HardMiner<'a> {
    /// A miner over `train_ids` (ids below `n_examples`) with rank window
    /// `min_rank..=max_rank`; similarities are those of `loss`'s representation.
    pub fn new(
        train_ids: &'a [u32],
        n_examples: usize,
        window: (usize, usize),
        k: usize,
        reference: Reference,
        loss: LossConfig,
        seed: u64,
    ) -> Self {
        let mut slot = vec![u32::MAX; n_examples];
        for (i, &id) in train_ids.iter().enumerate() {
            slot[id as usize] = i as u32;
        }
        Self {
            train_ids,
            slot,
            window,
            scores: (f32::NEG_INFINITY, f32::INFINITY),
            k,
            reference,
            current: None,
            loss,
            seed,
            step_negatives: Vec::new(),
            used: Vec::new(),
        }
    }

    /// Keeps only candidates whose similarity lies in `min..=max` (`None`: unbounded).
    pub fn with_scores(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.scores = (
            min.map_or(f32::NEG_INFINITY, |m| m as f32),
            max.map_or(f32::INFINITY, |m| m as f32),
        );
        self
    }

    /// The negatives of rows `range` of `t` at optimiser step `step`, `k` per row.
    pub fn mine(
        &mut self,
        step: usize,
        range: Range<usize>,
        t: &Triplets<'_>,
        encoder: &Encoder,
        inputs: &Inputs,
    ) -> Result<&[u32]> {
        let reference = match &self.reference {
            Reference::Fixed(r) => r,
            Reference::Current(every) => {
                if self.current.is_none() || step.is_multiple_of(*every) {
                    self.current = Some(represent(encoder, inputs, self.train_ids, &self.loss)?);
                }
                self.current.as_ref().expect("encoded just above")
            }
        };
        let at = |id: u32| -> Result<u32> {
            match self.slot[id as usize] {
                u32::MAX => Err(Error::Internal(format!(
                    "example {id} is not a training example"
                ))),
                s => Ok(s),
            }
        };
        let anchors = t.anchors[range.clone()]
            .iter()
            .map(|&a| at(a))
            .collect::<Result<Vec<u32>>>()?;
        let b = anchors.len();
        let a = reference.index_select(
            &Tensor::from_vec(anchors.clone(), b, reference.device())?,
            0,
        )?;
        let sims = a.matmul(&reference.t()?)?.to_vec2::<f32>()?;
        self.step_negatives.clear();
        let (lo, hi) = self.window;
        for (i, row) in sims.iter().enumerate() {
            let r = range.start + i;
            let mut ranked = ranked_window(row, [anchors[i], at(t.positives[r])?], lo, hi);
            let (min, max) = self.scores;
            ranked.retain(|&j| (min..=max).contains(&row[j as usize]));
            if ranked.len() < self.k {
                return Err(Error::data(
                    "negatives.hard",
                    format!(
                        "ranks {lo}..={hi} (scores {min}..={max}) hold only {} training examples for anchor {}, fewer than k = {}: widen the window or lower k",
                        ranked.len(),
                        t.anchors[r],
                        self.k
                    ),
                ));
            }
            let mut rng = stream(self.seed, "hard", r as u64);
            self.step_negatives.extend(
                sample(&mut rng, ranked.len(), self.k)
                    .into_iter()
                    .map(|j| self.train_ids[ranked[j] as usize]),
            );
        }
        self.used.extend_from_slice(&self.step_negatives);
        Ok(&self.step_negatives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_negatives_come_from_the_configured_ranks_of_the_reference() {
        use crate::model::EncoderConfig;
        use crate::spec::{EncoderKind, Loss};
        use candle_core::Device;
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let enc = Encoder::new(
            &EncoderConfig::dense(EncoderKind::Mlp, 8, 16, 4),
            0,
            &vm,
            &dev,
        )
        .unwrap();
        let inputs = Inputs::Dense(Tensor::zeros((40, 8), candle_core::DType::F32, &dev).unwrap());
        // Training examples are ids 10..40 (position = id - 10); fixed reference vectors.
        let train_ids: Vec<u32> = (10..40).collect();
        let reference = Tensor::randn(0f32, 1.0, (30, 4), &dev).unwrap();
        let r = reference.to_vec2::<f32>().unwrap();
        let loss = LossConfig {
            loss: Loss::Nce,
            temperature: 1.0,
            tau_plus: 0.0,
            beta: 0.0,
            negative_weight: 1.0,
        };
        let (lo, hi, k) = (3usize, 8usize, 4usize);
        let mut miner = HardMiner::new(
            &train_ids,
            40,
            (lo, hi),
            k,
            Reference::Fixed(reference.clone()),
            loss,
            5,
        );
        let anchors: Vec<u32> = (10..22).collect();
        let positives: Vec<u32> = anchors.iter().map(|a| a + 15).collect();
        let t = Triplets {
            anchors: &anchors,
            positives: &positives,
            negatives: &[],
            k_max: k,
        };
        let negs = miner.mine(0, 0..12, &t, &enc, &inputs).unwrap().to_vec();
        assert_eq!(negs.len(), 12 * k);
        for (row, (&a, &p)) in anchors.iter().zip(&positives).enumerate() {
            let (ai, pi) = ((a - 10) as usize, (p - 10) as usize);
            let dot = |j: usize| (0..4).map(|d| r[ai][d] * r[j][d]).sum::<f32>();
            let mut order: Vec<usize> = (0..30).filter(|&j| j != ai && j != pi).collect();
            order.sort_by(|&x, &y| dot(y).total_cmp(&dot(x)).then(x.cmp(&y)));
            let mine = &negs[row * k..(row + 1) * k];
            for &x in mine {
                let rank = order.iter().position(|&j| j == (x - 10) as usize).unwrap() + 1;
                assert!(
                    (lo..=hi).contains(&rank),
                    "row {row}: negative {x} has rank {rank}"
                );
            }
            let mut d = mine.to_vec();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), k, "drawn without replacement");
        }
        assert_eq!(miner.used, negs);
        // A score bound: every kept negative is at most that similar to its anchor.
        let cap = 0.5f32;
        let mut capped = HardMiner::new(
            &train_ids,
            40,
            (1, 29),
            2,
            Reference::Fixed(reference.clone()),
            loss,
            5,
        )
        .with_scores(None, Some(f64::from(cap)));
        let negs = capped.mine(0, 0..12, &t, &enc, &inputs).unwrap().to_vec();
        for (row, &a) in anchors.iter().enumerate() {
            let ai = (a - 10) as usize;
            for &x in &negs[row * 2..row * 2 + 2] {
                let xi = (x - 10) as usize;
                let score: f32 = (0..4).map(|d| r[ai][d] * r[xi][d]).sum();
                assert!(score <= cap, "row {row}: negative {x} scores {score}");
            }
        }
        // A window with fewer examples than k is an error naming the setting.
        let mut narrow = HardMiner::new(
            &train_ids,
            40,
            (27, 40),
            k,
            Reference::Fixed(reference),
            loss,
            5,
        );
        let err = narrow
            .mine(0, 0..12, &t, &enc, &inputs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("negatives.hard") && err.contains("fewer than k"),
            "{err}"
        );
    }

    #[test]
    fn ranked_window_keeps_the_configured_ranks() {
        let sims = [0.9f32, 0.1, 0.5, 0.95, 0.3, 0.7, 0.5, -1.0];
        // By similarity: 3, 0, 5, 2, 6 (tie, lower position first), 4, 1, 7.
        assert_eq!(ranked_window(&sims, [8, 8], 1, 3), vec![3, 0, 5]);
        assert_eq!(ranked_window(&sims, [3, 5], 1, 3), vec![0, 2, 6]);
        assert_eq!(ranked_window(&sims, [8, 8], 4, 6), vec![2, 6, 4]);
        assert_eq!(ranked_window(&sims, [0, 1], 5, 100), vec![4, 7]);
    }
}
