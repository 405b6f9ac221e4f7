//! The training step of queue points (He et al., MoCo, CVPR 2020, algorithm 1): anchors
//! through the encoder being trained, positives through the momentum encoder as keys, the
//! queue's keys as negatives; then the batch's keys join the queue.

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;

use super::{Dedup, Step, false_negatives, losses};
use crate::Result;
use crate::data::Inputs;
use crate::model::Encoder;
use crate::negatives::MomentumQueue;
use crate::objective::Triplets;

/// The loss of step `step` on rows `range` of `t` against `queue`, whose negatives each row
/// trained with are appended to `used`. The batch's positives' keys are enqueued after the
/// negatives are read; an empty queue is first filled with the keys of the first pool row's
/// `k` negatives (uniform draws), enqueued at step 0.
///
/// # Errors
/// A candle error from the encoders or the loss.
#[expect(
    clippy::too_many_arguments,
    reason = "batch_loss's arguments, plus the queue and the step"
)]
pub(super) fn loss(
    encoder: &Encoder,
    inputs: &Inputs,
    t: &Triplets<'_>,
    range: std::ops::Range<usize>,
    step: &Step<'_>,
    dedup: &mut Dedup,
    train: Option<&mut ChaCha8Rng>,
    (queue, used): (&mut MomentumQueue, &mut Vec<u32>),
    at: usize,
) -> Result<Tensor> {
    let (k, cfg) = (step.k, &step.loss);
    if queue.is_empty() {
        let seed = &t.negatives[..k];
        queue.push(seed, &queue.encode(inputs, seed)?, 0)?;
    }
    let anchors = &t.anchors[range.clone()];
    let positives = &t.positives[range];
    let b = anchors.len();
    let a_loc: Vec<u32> = anchors.iter().map(|&a| dedup.local(a)).collect();
    let x = inputs.select(&dedup.ids)?;
    dedup.reset();
    let e = cfg.represent(&encoder.encode(&x, train)?)?;
    let q = e.index_select(&Tensor::from_slice(&a_loc, b, e.device())?, 0)?;
    let keys = queue.encode(inputs, positives)?;
    let (ids, negatives) = queue.snapshot(at)?;
    queue.push(positives, &keys, at)?;
    for _ in 0..b {
        used.extend_from_slice(&ids);
    }
    let pos = (&q * &keys)?.sum_keepdim(1)?;
    let neg = q.matmul(&negatives.t()?)?;
    let scores = Tensor::cat(&[&pos, &neg], 1)?;
    let flagged = match &step.false_negatives {
        None => None,
        Some(h) => {
            // Rows of the support: anchors, then their keys, then the queue.
            let support_e = Tensor::cat(&[&q.detach(), &keys, &negatives], 0)?;
            let rows = |from: usize| (from as u32..(from + b) as u32).collect::<Vec<_>>();
            let (a_rows, p_rows) = (rows(0), rows(b));
            let n_rows: Vec<u32> = (0..b)
                .flat_map(|_| (2 * b) as u32..(2 * b + k) as u32)
                .collect();
            let flat: Vec<u32> = (0..b).flat_map(|_| ids.iter().copied()).collect();
            let support = false_negatives::Support {
                e: &support_e,
                anchors: &a_rows,
                positives: &p_rows,
                negatives: &n_rows,
            };
            let mask =
                false_negatives::detect(h, anchors, &flat, k, &support, &mut dedup.detections)?;
            Some(losses::Flagged { mask, mode: h.mode })
        }
    };
    losses::loss(&scores, k, cfg, step.learned, flagged.as_ref())
}
