//! Uniform negatives: k draws from the training marginal, collisions with the anchor's concept
//! allowed (the theory's model). They are drawn into the shared pool that in-batch and hard
//! points also take their anchors and positives from.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Candidates, Pool, PoolSampler, Sampler, SamplerCtx, Strategy};
use crate::{Result, spec};

/// `strategy = "uniform"`.
#[derive(Debug)]
pub(super) struct Uniform;

impl Strategy for Uniform {
    fn kind(&self) -> spec::Strategy {
        spec::Strategy::Uniform
    }

    fn pool(&self) -> &'static dyn Pool {
        &Uniform
    }

    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>> {
        Ok(Box::new(PoolSampler::new(cx.anchors.len())))
    }
}

impl Pool for Uniform {
    fn name(&self) -> &'static str {
        spec::Strategy::Uniform.as_str()
    }

    fn draw_row(
        &self,
        from: &Candidates<'_>,
        _class: usize,
        k_max: usize,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u32>,
    ) {
        let train = from.train;
        out.extend((0..k_max).map(|_| train[rng.random_range(0..train.len())]));
    }
}
