//! False-negative detection (Huynh et al., "Boosting Contrastive Self-Supervised Learning with
//! False Negative Cancellation", WACV 2022): which of each anchor's negatives share its concept,
//! by the true concepts (the oracle) or by similarity to a support set, and how well a detector
//! did against the true concepts.

use candle_core::Tensor;

use crate::Result;
use crate::spec::{Detector, FalseNegatives};

/// A point's false-negative handling, with the concepts the oracle and the counts read.
#[derive(Debug, Clone, Copy)]
pub struct FalseNegativeHandling<'a> {
    /// Elimination or attraction (`Keep` detects and counts, and leaves the loss as it is).
    pub mode: FalseNegatives,
    /// Which detector.
    pub detector: Detector,
    /// Cosine threshold of the similarity detector.
    pub threshold: f64,
    /// Concept of every example id (`u32::MAX` for examples outside the chosen concepts).
    pub concepts: &'a [u32],
}

/// Detections of one or more batches against the true concepts: a detector's confusion
/// counts over every (anchor, negative) pair it saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detections {
    /// Pairs flagged as false negatives.
    pub flagged: u64,
    /// Flagged pairs that share the anchor's concept.
    pub correct: u64,
    /// Pairs that share the anchor's concept.
    pub actual: u64,
}

impl Detections {
    /// Share of flagged pairs that are true false negatives; NaN when nothing was flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.flagged)
    }

    /// Share of true false negatives that were flagged; NaN when there were none.
    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.actual)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Flags each anchor's negatives: `anchors` and `negatives` (`k` per anchor, row-major) are
/// example ids, `support` (`(B (k + 2), ..)` rows of `e`) where the similarity detector finds
/// each pair's representations. Returns the `(B, k + 1)` f32 mask (column 0, the positive,
/// always 0) and adds the batch's counts to `counts`.
///
/// The similarity detector flags a negative when its mean cosine to the anchor and to the
/// anchor's positive (Huynh et al. 2022, section 3.2: the support set, here the one other view
/// the step has) is at least the threshold.
///
/// # Errors
/// A candle error if `e` is not a 2-D f32 tensor holding the rows `support` names.
pub(crate) fn detect(
    h: &FalseNegativeHandling<'_>,
    anchors: &[u32],
    negatives: &[u32],
    k: usize,
    support: &Support<'_>,
    counts: &mut Detections,
) -> Result<Tensor> {
    let b = anchors.len();
    let unit = match h.detector {
        Detector::Oracle => None,
        Detector::Similarity => Some(unit_rows(support.e)?),
    };
    let mut mask = vec![0f32; b * (k + 1)];
    for (r, &a) in anchors.iter().enumerate() {
        let concept = h.concepts[a as usize];
        for j in 0..k {
            let n = negatives[r * k + j];
            let same = concept != u32::MAX && h.concepts[n as usize] == concept;
            let flag = match &unit {
                None => same,
                Some((rows, dim)) => {
                    let row = |i: u32| &rows[i as usize * dim..(i as usize + 1) * dim];
                    let neg = row(support.negatives[r * k + j]);
                    let score = (dot(neg, row(support.anchors[r]))
                        + dot(neg, row(support.positives[r])))
                        / 2.0;
                    f64::from(score) >= h.threshold
                }
            };
            counts.actual += u64::from(same);
            counts.flagged += u64::from(flag);
            counts.correct += u64::from(flag && same);
            if flag {
                mask[r * (k + 1) + 1 + j] = 1.0;
            }
        }
    }
    Ok(Tensor::from_vec(mask, (b, k + 1), support.e.device())?)
}

/// Where the similarity detector finds each pair's representations: rows of `e`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Support<'a> {
    /// The step's encoded distinct examples, `(U, dim)`.
    pub(crate) e: &'a Tensor,
    /// Row of each anchor.
    pub(crate) anchors: &'a [u32],
    /// Row of each anchor's positive.
    pub(crate) positives: &'a [u32],
    /// Row of each negative, `k` per anchor.
    pub(crate) negatives: &'a [u32],
}

/// `e`'s rows scaled to unit length (detached), flat, with the width.
fn unit_rows(e: &Tensor) -> Result<(Vec<f32>, usize)> {
    let (_, dim) = e.dims2()?;
    let mut v = e.detach().flatten_all()?.to_vec1::<f32>()?;
    for row in v.chunks_mut(dim) {
        let norm = dot(row, row).sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
    Ok((v, dim))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Four examples of concepts 0, 0, 1, 1 at known angles: example 1 sits next to example 0,
    /// example 3 next to 0 as well though it is of another concept, example 2 far away.
    fn case() -> (Tensor, Vec<u32>) {
        let e = Tensor::from_vec(
            vec![1f32, 0.0, 0.9, 0.1, -1.0, 0.2, 0.95, -0.05],
            (4, 2),
            &Device::Cpu,
        )
        .unwrap();
        (e, vec![0, 0, 1, 1])
    }

    #[test]
    fn the_oracle_flags_exactly_the_same_concept_negatives() {
        let (e, concepts) = case();
        let h = FalseNegativeHandling {
            mode: FalseNegatives::Eliminate,
            detector: Detector::Oracle,
            threshold: 0.0,
            concepts: &concepts,
        };
        // Anchor 0 (positive 1) against negatives 1, 2, 3; anchor 2 (positive 3) against 0, 3, 1.
        let (anchors, positives, negatives) = ([0u32, 2], [1u32, 3], [1u32, 2, 3, 0, 3, 1]);
        let support = Support {
            e: &e,
            anchors: &anchors,
            positives: &positives,
            negatives: &negatives,
        };
        let mut counts = Detections::default();
        let mask = detect(&h, &anchors, &negatives, 3, &support, &mut counts).unwrap();
        assert_eq!(
            mask.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 1.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 0.0]]
        );
        assert_eq!(
            counts,
            Detections {
                flagged: 2,
                correct: 2,
                actual: 2
            }
        );
        assert_eq!((counts.precision(), counts.recall()), (1.0, 1.0));
    }

    #[test]
    fn the_similarity_detector_is_scored_against_the_true_concepts() {
        let (e, concepts) = case();
        let h = FalseNegativeHandling {
            mode: FalseNegatives::Eliminate,
            detector: Detector::Similarity,
            threshold: 0.9,
            concepts: &concepts,
        };
        // Anchor 0 with positive 1 (rows 0 and 1): negative 1 is a true false negative and
        // close (flagged), negative 3 is of another concept but close (a false alarm),
        // negative 2 is far. Anchor 2 (rows 2, 3) against 3 and 0: its true false negative 3
        // points elsewhere (missed).
        let (anchors, positives) = ([0u32, 2], [1u32, 3]);
        let negatives = [1u32, 3, 2, 3, 0, 0];
        let support = Support {
            e: &e,
            anchors: &anchors,
            positives: &positives,
            negatives: &negatives,
        };
        let mut counts = Detections::default();
        let mask = detect(&h, &anchors, &negatives, 3, &support, &mut counts).unwrap();
        assert_eq!(
            mask.to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 1.0, 1.0, 0.0], vec![0.0, 0.0, 0.0, 0.0]]
        );
        assert_eq!(
            counts,
            Detections {
                flagged: 2,
                correct: 1,
                actual: 2
            }
        );
        assert_eq!((counts.precision(), counts.recall()), (0.5, 0.5));
    }
}
