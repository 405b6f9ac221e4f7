//! Collision-free negatives: k draws from the training examples of the other concepts, the
//! oracle that removes false negatives. They have a pool of their own.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Candidates, Pool, PoolSampler, Sampler, SamplerCtx, Strategy};
use crate::{Result, spec};

/// `strategy = "collision-free"`.
#[derive(Debug)]
pub(super) struct CollisionFree;

impl Strategy for CollisionFree {
    fn kind(&self) -> spec::Strategy {
        spec::Strategy::CollisionFree
    }

    fn pool(&self) -> &'static dyn Pool {
        &CollisionFree
    }

    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>> {
        Ok(Box::new(PoolSampler::new(cx.anchors.len())))
    }
}

impl Pool for CollisionFree {
    fn name(&self) -> &'static str {
        spec::Strategy::CollisionFree.as_str()
    }

    fn draw_row(
        &self,
        from: &Candidates<'_>,
        class: usize,
        k_max: usize,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u32>,
    ) {
        // A draw from the grouped list with the anchor's run cut out.
        let run = &from.runs[class];
        let (start, len) = (run.start, run.len());
        let grouped = from.grouped;
        out.extend((0..k_max).map(|_| {
            let j = rng.random_range(0..grouped.len() - len);
            grouped[if j >= start { j + len } else { j }]
        }));
    }
}
