//! In-batch negatives: the other anchors of the minibatch (SimCLR style), k of them drawn
//! without replacement, so batch size and k are separate knobs (k < batch size). They are fixed
//! by the batches, so the sampler draws them all up front; points take the uniform pool's
//! anchors and positives.

use std::ops::Range;

use rand::seq::index::sample;

use super::{
    DataShape, GridCheck, Pool, Sampler, SamplerCtx, Strategy, Triplets, uniform::Uniform,
};
use crate::data::Inputs;
use crate::data::stream;
use crate::model::Encoder;
use crate::point::SweepPoint;
use crate::{Result, spec};

/// `strategy = "in-batch"`.
#[derive(Debug)]
pub(super) struct InBatch;

impl Strategy for InBatch {
    fn kind(&self) -> spec::Strategy {
        spec::Strategy::InBatch
    }

    fn pool(&self) -> &'static dyn Pool {
        &Uniform
    }

    fn check_grid(&self, grid: &GridCheck<'_>, bad: &mut dyn FnMut(&str, String)) {
        for &b in grid.batch_size {
            for &k in grid.k {
                if k >= b {
                    bad(
                        grid.k_key,
                        format!(
                            "k = {k} in-batch negatives need at least k + 1 anchors per batch; batch-size = {b}"
                        ),
                    );
                }
            }
        }
    }

    fn check_data(&self, p: &SweepPoint, shape: &DataShape) -> std::result::Result<(), String> {
        let (k, b) = (p.k as usize, p.batch_size as usize);
        if kept_rows(shape.rows, b, k) == 0 {
            return Err(format!(
                "in-batch negatives: k = {k} needs batches of at least {} anchors, but the \
                 training split has {} anchors ({} concepts, {} epochs) and batch-size = {b}; \
                 lower k, or use more examples per concept",
                k + 1,
                shape.n_train,
                shape.concepts,
                p.epochs
            ));
        }
        Ok(())
    }

    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>> {
        let p = cx.point;
        let k = p.k as usize;
        let (rows, negatives) = in_batch(cx.anchors, p.batch_size as usize, k, p.seed);
        Ok(Box::new(InBatchSampler { rows, negatives, k }))
    }
}

/// Rows of `rows` that batches of `batch_size` keep: a final batch of `k` rows or fewer cannot
/// supply k other anchors and is left out.
fn kept_rows(rows: usize, batch_size: usize, k: usize) -> usize {
    let full = rows / batch_size * batch_size;
    if rows - full > k { rows } else { full }
}

/// In-batch negatives for `anchors` split into batches of `batch_size` (the training steps):
/// each row's `k` negatives are the anchors of `k` other rows of its batch, drawn without
/// replacement from the row's own random stream. A final batch of `k` rows or fewer cannot
/// supply them and is left out. Returns the rows kept and their negatives, `k` per row.
///
/// # Example
///
/// ```
/// let anchors = [10, 11, 12, 13, 14, 15, 16];
/// // Batches of 3: rows 0..3 and 3..6; the last row alone has no other row to use.
/// let (rows, negs) = negsweep::negatives::in_batch(&anchors, 3, 2, 0);
/// assert_eq!(rows, 6);
/// assert!(negs[..2].iter().all(|n| [11, 12].contains(n)));
/// ```
pub fn in_batch(anchors: &[u32], batch_size: usize, k: usize, seed: u64) -> (usize, Vec<u32>) {
    let rows = kept_rows(anchors.len(), batch_size, k);
    let mut out = Vec::with_capacity(rows * k);
    for lo in (0..rows).step_by(batch_size) {
        let hi = (lo + batch_size).min(rows);
        for r in lo..hi {
            let mut rng = stream(seed, "in-batch", r as u64);
            let me = r - lo;
            for j in sample(&mut rng, hi - lo - 1, k) {
                out.push(anchors[lo + if j >= me { j + 1 } else { j }]);
            }
        }
    }
    (rows, out)
}

/// Trains each step on its rows' in-batch negatives, drawn up front.
#[derive(Debug)]
struct InBatchSampler {
    rows: usize,
    negatives: Vec<u32>,
    k: usize,
}

impl Sampler for InBatchSampler {
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
        let t = Triplets {
            negatives: &self.negatives,
            k_max: self.k,
            ..t
        };
        Ok((t, rows))
    }

    fn used<'s>(&'s self, _t: Triplets<'s>) -> (&'s [u32], usize) {
        (&self.negatives, self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_batch_negatives_are_other_members_of_the_batch() {
        let anchors: Vec<u32> = (100..150).collect();
        for (b, k) in [(8usize, 7usize), (8, 3), (16, 1), (50, 49)] {
            let (rows, negs) = in_batch(&anchors, b, k, 3);
            // A final batch of k rows or fewer is left out.
            let tail = anchors.len() % b;
            let want = if tail > k || tail == 0 {
                anchors.len()
            } else {
                anchors.len() - tail
            };
            assert_eq!(rows, want, "b={b} k={k}");
            assert_eq!(negs.len(), rows * k);
            for r in 0..rows {
                let lo = r / b * b;
                let batch = &anchors[lo..(lo + b).min(rows)];
                let mine = &negs[r * k..(r + 1) * k];
                let mut distinct = mine.to_vec();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), k, "without replacement");
                assert!(mine.iter().all(|n| batch.contains(n) && *n != anchors[r]));
            }
        }
    }
}
