//! Negative sampling, one file per strategy. A strategy implements [`Strategy`]: the pool its
//! points train on (and how that pool's rows draw their negatives), its checks against the
//! sweep grid and against the data, and the [`Sampler`] the training loop asks for each step's
//! negatives. [`REGISTRY`] lists them; `spec::Strategy` names them in pipeline files.
//!
//! A new strategy is one file here, one line in [`REGISTRY`] and one variant of
//! `spec::Strategy`.

mod collision_free;
mod hard;
mod in_batch;
mod queue;
mod uniform;

use std::fmt::Debug;
use std::ops::Range;

use rand_chacha::ChaCha8Rng;

pub use hard::{HardMiner, Reference, ranked_window};
pub use in_batch::in_batch;
pub use queue::MomentumQueue;

use crate::Result;
use crate::data::Inputs;
use crate::model::{Encoder, EncoderConfig};
use crate::objective::{LossConfig, Triplets};
use crate::point::{HardConfig, SweepPoint};
use crate::spec;

/// Every strategy. Grid checks run in this order, so their diagnostics keep a stable order
/// (hard before in-batch, as they always came).
pub static REGISTRY: &[&dyn Strategy] = &[
    &uniform::Uniform,
    &collision_free::CollisionFree,
    &hard::Hard,
    &in_batch::InBatch,
    &queue::Queue,
];

/// The strategy `kind` names.
pub fn strategy(kind: spec::Strategy) -> &'static dyn Strategy {
    *REGISTRY
        .iter()
        .find(|s| s.kind() == kind)
        .expect("every spec strategy is registered (tested in negatives::tests)")
}

/// One way of choosing negatives.
pub trait Strategy: Debug + Send + Sync {
    /// The pipeline-file name it implements.
    fn kind(&self) -> spec::Strategy;

    /// The pool its points train on: they always take its anchors and positives, and its
    /// negatives unless their sampler supplies its own.
    fn pool(&self) -> &'static dyn Pool;

    /// Checks the grid's settings for this strategy; called when the grid lists it. Each problem
    /// goes to `bad` as (setting, message).
    fn check_grid(&self, grid: &GridCheck<'_>, bad: &mut dyn FnMut(&str, String)) {
        let _ = (grid, bad);
    }

    /// The setting a data shortfall of [`Strategy::check_data`] (or an empty training split)
    /// is reported against.
    fn setting(&self) -> &'static str {
        "negatives.k"
    }

    /// Checks, before any training, that point `p` on data of `shape` can supply every step's
    /// negatives.
    ///
    /// # Errors
    /// What falls short, with the settings and the numbers.
    fn check_data(&self, p: &SweepPoint, shape: &DataShape) -> std::result::Result<(), String> {
        let _ = (p, shape);
        Ok(())
    }

    /// The sampler that supplies the negatives of each training step of `cx.point`.
    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>>;
}

/// A precomputed pool: every training anchor and pass gets a positive and `k_max` negatives,
/// drawn once per (dataset, N, seed) and shared by every k.
pub trait Pool: Debug + Send + Sync {
    /// Name in the pool's key. Pool keys name the strategy that draws them, so this is that
    /// strategy's pipeline-file name, which keeps older keys valid.
    fn name(&self) -> &'static str;

    /// Appends `k_max` negatives for an anchor of class `class` to `out`, drawing from `rng`
    /// (the row's stream, after its positive).
    fn draw_row(
        &self,
        from: &Candidates<'_>,
        class: usize,
        k_max: usize,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u32>,
    );
}

/// The training examples a pool row's negatives come from.
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    /// Training ids in split order.
    pub train: &'a [u32],
    /// Training ids grouped by class.
    pub grouped: &'a [u32],
    /// Where each class's run lies in `grouped`.
    pub runs: &'a [Range<usize>],
}

/// What a grid check sees: the swept values and the resolved settings strategies read.
#[derive(Debug, Clone, Copy)]
pub struct GridCheck<'a> {
    /// Every k of the grid.
    pub k: &'a [u32],
    /// Every batch size of the grid.
    pub batch_size: &'a [u32],
    /// The setting the k values came from (`sweep.k` or `negatives.k`).
    pub k_key: &'a str,
    /// Resolved `[negatives.hard]`.
    pub hard: &'a HardConfig,
}

/// The size of a point's data, for [`Strategy::check_data`].
#[derive(Debug, Clone, Copy)]
pub struct DataShape {
    /// Pool rows the point trains on (its epochs times the training anchors).
    pub rows: usize,
    /// Training examples.
    pub n_train: usize,
    /// Concepts chosen.
    pub concepts: usize,
}

/// What a strategy builds its sampler from.
#[derive(Debug, Clone, Copy)]
pub struct SamplerCtx<'a> {
    /// The point.
    pub point: &'a SweepPoint,
    /// Anchors of the pool rows the point trains on.
    pub anchors: &'a [u32],
    /// Training example ids.
    pub train_ids: &'a [u32],
    /// Encoder inputs of every example.
    pub inputs: &'a Inputs,
    /// The encoder being trained (a reference encoder is built like it).
    pub encoder: &'a EncoderConfig,
    /// The point's loss (its representation measures similarity).
    pub loss: LossConfig,
    /// safetensors bytes of a reference checkpoint, when the point names one.
    pub reference: Option<&'a [u8]>,
}

/// Supplies each training step's negatives.
pub trait Sampler {
    /// Pool rows trained on: the first this many of the rows it was built for (a strategy may
    /// leave a tail out).
    fn rows(&self) -> usize;

    /// The triplets of step `step` (rows `rows` of `t`) and the range of them to train on.
    fn batch<'s>(
        &'s mut self,
        step: usize,
        rows: Range<usize>,
        t: Triplets<'s>,
        encoder: &Encoder,
        inputs: &Inputs,
    ) -> Result<(Triplets<'s>, Range<usize>)>;

    /// The negatives trained with (of the rows of `t`) and how many each row holds, for the
    /// collision accounting.
    fn used<'s>(&'s self, t: Triplets<'s>) -> (&'s [u32], usize);

    /// The queue of keys each step's negatives come from, and the record of the negatives each
    /// row trained with (which the training step fills), for queue samplers.
    fn queue(&mut self) -> Option<(&mut MomentumQueue, &mut Vec<u32>)> {
        None
    }

    /// Mean age in steps of the negatives trained with; NaN where negatives are not kept from
    /// earlier steps.
    fn staleness(&self) -> f64 {
        f64::NAN
    }
}

/// The sampler of pool strategies: each step trains on its rows' pool negatives.
#[derive(Debug, Clone, Copy)]
pub struct PoolSampler {
    rows: usize,
}

impl PoolSampler {
    /// A sampler over `rows` pool rows.
    pub fn new(rows: usize) -> Self {
        Self { rows }
    }
}

impl Sampler for PoolSampler {
    fn rows(&self) -> usize {
        self.rows
    }

    fn batch<'s>(
        &'s mut self,
        _step: usize,
        rows: Range<usize>,
        t: Triplets<'s>,
        _encoder: &Encoder,
        _inputs: &Inputs,
    ) -> Result<(Triplets<'s>, Range<usize>)> {
        Ok((t, rows))
    }

    fn used<'s>(&'s self, t: Triplets<'s>) -> (&'s [u32], usize) {
        (t.negatives, t.k_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the spec accepts, read from its JSON Schema (the wire format), so a variant
    /// added to the spec without a registered strategy fails here.
    fn spec_names() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(spec::Strategy)).unwrap();
        let mut names = Vec::new();
        // A variant is a `const` (a documented one) or an item of an `enum` list.
        let mut collect = |v: &serde_json::Value| {
            if let Some(c) = v.get("const") {
                names.push(c.as_str().unwrap().to_owned());
            }
            for e in v
                .get("enum")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
            {
                names.push(e.as_str().unwrap().to_owned());
            }
        };
        collect(&schema);
        for alt in schema["oneOf"].as_array().into_iter().flatten() {
            collect(alt);
        }
        names
    }

    #[test]
    fn the_registry_covers_every_strategy_the_spec_accepts() {
        let names = spec_names();
        assert!(
            names.contains(&"uniform".to_owned()),
            "schema read: {names:?}"
        );
        for name in &names {
            let kind: spec::Strategy = serde_json::from_value(name.as_str().into()).unwrap();
            let s = strategy(kind);
            assert_eq!(s.kind(), kind);
            assert_eq!(kind.as_str(), name);
            assert_eq!(
                REGISTRY.iter().filter(|r| r.kind() == kind).count(),
                1,
                "{name} is registered once"
            );
            // A pool is named after the strategy that draws it, which draws into its own.
            let owner: spec::Strategy = serde_json::from_value(s.pool().name().into()).unwrap();
            assert_eq!(strategy(owner).pool().name(), s.pool().name());
        }
        assert_eq!(REGISTRY.len(), names.len());
    }

    fn hard(min_rank: u32, max_rank: u32) -> HardConfig {
        HardConfig {
            min_rank,
            max_rank,
            reference: None,
            refresh: 50,
            max_score: None,
            min_score: None,
        }
    }

    fn grid_problems(kind: spec::Strategy, grid: &GridCheck<'_>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        strategy(kind).check_grid(grid, &mut |key, msg| out.push((key.to_owned(), msg)));
        out
    }

    #[test]
    fn grid_checks_reject_impossible_grids_with_the_documented_messages() {
        let h = hard(4, 10);
        let grid = GridCheck {
            k: &[2, 8],
            batch_size: &[8],
            k_key: "sweep.k",
            hard: &h,
        };
        // Pool strategies draw any k from any grid.
        assert!(grid_problems(spec::Strategy::Uniform, &grid).is_empty());
        assert!(grid_problems(spec::Strategy::CollisionFree, &grid).is_empty());
        assert_eq!(
            grid_problems(spec::Strategy::InBatch, &grid),
            [(
                "sweep.k".to_owned(),
                "k = 8 in-batch negatives need at least k + 1 anchors per batch; batch-size = 8"
                    .to_owned()
            )]
        );
        assert_eq!(
            grid_problems(spec::Strategy::Hard, &grid),
            [(
                "sweep.k".to_owned(),
                "k = 8 exceeds the 7 ranks of the hard-negative window (negatives.hard: \
                 min-rank = 4, max-rank = 10)"
                    .to_owned()
            )]
        );
        let mut broken = hard(0, 10);
        broken.refresh = 0;
        broken.min_score = Some(0.5);
        broken.max_score = Some(0.1);
        let grid = GridCheck {
            k: &[1],
            hard: &broken,
            ..grid
        };
        assert_eq!(
            grid_problems(spec::Strategy::Hard, &grid),
            [
                (
                    "negatives.hard".to_owned(),
                    "needs 1 <= min-rank <= max-rank, got min-rank = 0 and max-rank = 10"
                        .to_owned()
                ),
                (
                    "negatives.hard.refresh".to_owned(),
                    "must be at least 1".to_owned()
                ),
                (
                    "negatives.hard".to_owned(),
                    "needs min-score <= max-score, got 0.5 and 0.1".to_owned()
                ),
            ]
        );
    }
}
