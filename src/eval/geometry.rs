//! The geometry of held-out representations: alignment and uniformity (Wang and Isola,
//! "Understanding Contrastive Representation Learning through Alignment and Uniformity on the
//! Hypersphere", ICML 2020, section 4.1) and the effective rank (Garrido et al., "RankMe:
//! Assessing the Downstream Performance of Pretrained Self-Supervised Representations by Their
//! Rank", ICML 2023, eq. 1).

use candle_core::{D, Tensor};
use nalgebra::{DMatrix, SymmetricEigen};

use crate::Result;

/// Rows `uniformity` compares pairwise at most: the pairs grow as the square of the rows, so
/// larger test splits are thinned to an evenly spaced subset.
pub(crate) const UNIFORMITY_ROWS: usize = 2048;

/// Rows scaled to unit length, `(n, d)` in and out.
fn unit(f: &Tensor) -> Result<Tensor> {
    let norm = f
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(f.broadcast_div(&norm)?)
}

/// Alignment `E ||f(x) - f(y)||^alpha` over positive pairs `(x, y)`, on unit-normalised rows of
/// `f` (`(n, d)`); `pairs` index rows. Wang and Isola, eq. 4; they use `alpha = 2`. Lower is
/// better aligned; the range is `[0, 2^alpha]`. NaN when there are no pairs.
///
/// # Errors
/// A candle error if a pair indexes past `n`.
pub fn alignment(f: &Tensor, pairs: &[(u32, u32)], alpha: f64) -> Result<f64> {
    if pairs.is_empty() {
        return Ok(f64::NAN);
    }
    let u = unit(f)?;
    let dev = f.device();
    let (a, b): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
    let a = u.index_select(&Tensor::new(a, dev)?, 0)?;
    let b = u.index_select(&Tensor::new(b, dev)?, 0)?;
    let d2 = (a - b)?.sqr()?.sum(1)?.to_vec1::<f32>()?;
    let sum: f64 = d2
        .iter()
        .map(|&d| f64::from(d).max(0.0).powf(alpha / 2.0))
        .sum();
    Ok(sum / pairs.len() as f64)
}

/// Uniformity `log E exp(-t ||f(x) - f(y)||^2)` over distinct pairs of unit-normalised rows of
/// `f` (`(n, d)`). Wang and Isola, eq. 5; they use `t = 2`. Lower is more uniform; the minimum
/// for `n` points on the sphere approaches `-t * 2 n / (n - 1)` when they sit at the vertices of
/// a regular simplex. Over [`UNIFORMITY_ROWS`] rows, every `ceil(n / UNIFORMITY_ROWS)`-th row is
/// used. NaN for fewer than two rows.
///
/// # Errors
/// A candle error from the Gram matrix.
pub fn uniformity(f: &Tensor, t: f64) -> Result<f64> {
    let n = f.dim(0)?;
    if n < 2 {
        return Ok(f64::NAN);
    }
    let stride = n.div_ceil(UNIFORMITY_ROWS);
    let u = if stride > 1 {
        let rows: Vec<u32> = (0..n).step_by(stride).map(|i| i as u32).collect();
        unit(&f.index_select(&Tensor::new(rows, f.device())?, 0)?)?
    } else {
        unit(f)?
    };
    let gram = u.matmul(&u.t()?)?.to_vec2::<f32>()?;
    // ||x - y||^2 = 2 - 2 x.y for unit rows; the sum is taken in f64, largest terms stay exact.
    let (mut sum, mut pairs) = (0f64, 0usize);
    for (i, row) in gram.iter().enumerate() {
        for &dot in &row[i + 1..] {
            let d2 = (2.0 - 2.0 * f64::from(dot)).max(0.0);
            sum += (-t * d2).exp();
            pairs += 1;
        }
    }
    Ok((sum / pairs as f64).ln())
}

/// Effective rank of the rows of `f` (`(n, d)`, as evaluated: unit-normalised for the
/// temperature losses, raw for NCE): `exp(-sum_k p_k log p_k)` with `p_k = s_k / ||s||_1 + 1e-7`
/// over the singular values `s` of `f` (RankMe, Garrido et al. 2023, eq. 1). From 1 (every row
/// on one line) to `min(n, d)` (all singular values equal). The singular values are the square
/// roots of the eigenvalues of the `d x d` Gram matrix `f^T f`, taken in f64. NaN for no rows.
///
/// # Errors
/// A candle error from the Gram matrix.
pub fn effective_rank(f: &Tensor) -> Result<f64> {
    let (n, d) = f.dims2()?;
    if n == 0 {
        return Ok(f64::NAN);
    }
    let gram = f.t()?.matmul(f)?.to_vec2::<f32>()?;
    let m = DMatrix::from_fn(d, d, |i, j| {
        // Symmetrised: the f32 product need not be exactly symmetric.
        0.5 * (f64::from(gram[i][j]) + f64::from(gram[j][i]))
    });
    let s: Vec<f64> = SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = s.iter().sum();
    if total <= 0.0 {
        return Ok(1.0);
    }
    let entropy: f64 = s
        .iter()
        .map(|&v| {
            let p = v / total + 1e-7;
            -p * p.ln()
        })
        .sum();
    Ok(entropy.exp())
}

/// Positive pairs among held-out examples: each example with the next one of its concept (in
/// the order given), the last with the first, so every example of a concept with at least two
/// is in two pairs. `cls` is each row's concept; concepts with one example give no pair.
pub fn same_concept_pairs(cls: &[u32]) -> Vec<(u32, u32)> {
    let mut by: std::collections::BTreeMap<u32, Vec<u32>> = std::collections::BTreeMap::new();
    for (i, &c) in cls.iter().enumerate() {
        by.entry(c).or_default().push(i as u32);
    }
    let mut pairs = Vec::new();
    for rows in by.values().filter(|r| r.len() > 1) {
        // Two rows make one pair, not the same pair twice.
        let count = if rows.len() == 2 { 1 } else { rows.len() };
        for i in 0..count {
            pairs.push((rows[i], rows[(i + 1) % rows.len()]));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn alignment_on_hand_made_pairs() {
        // (1, 0) with (0, 1): squared distance 2; (2, 0) with (1, 0): same direction, 0.
        let f = t(&[[1.0, 0.0], [0.0, 3.0], [2.0, 0.0], [1.0, 0.0]]);
        let a = alignment(&f, &[(0, 1), (2, 3)], 2.0).unwrap();
        assert!((a - 1.0).abs() < 1e-6, "{a}");
        // alpha = 1: distances sqrt(2) and 0.
        let a = alignment(&f, &[(0, 1), (2, 3)], 1.0).unwrap();
        assert!((a - 2f64.sqrt() / 2.0).abs() < 1e-6, "{a}");
        assert!(alignment(&f, &[], 2.0).unwrap().is_nan());
    }

    #[test]
    fn uniformity_on_hand_made_points() {
        // Two antipodal points: one pair at squared distance 4, log exp(-2 * 4) = -8.
        let u = uniformity(&t(&[[1.0, 0.0], [-3.0, 0.0]]), 2.0).unwrap();
        assert!((u + 8.0).abs() < 1e-6, "{u}");
        // Four points at the compass directions: 4 pairs at distance^2 2, 2 pairs at 4.
        let f = t(&[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]);
        let want = ((4.0 * (-4f64).exp() + 2.0 * (-8f64).exp()) / 6.0).ln();
        let u = uniformity(&f, 2.0).unwrap();
        assert!((u - want).abs() < 1e-6, "{u} vs {want}");
        // One point everywhere: every distance 0, log 1 = 0.
        let u = uniformity(&t(&[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), 2.0).unwrap();
        assert!(u.abs() < 1e-6, "{u}");
        assert!(uniformity(&t(&[[1.0, 0.0]]), 2.0).unwrap().is_nan());
    }

    #[test]
    fn effective_rank_on_hand_made_matrices() {
        // Rank one: singular values (s, 0); p = (1 + 1e-7, 1e-7).
        let one = effective_rank(&t(&[[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]])).unwrap();
        let p: [f64; 2] = [1.0 + 1e-7, 1e-7];
        let want = (-p.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        assert!((one - want).abs() < 1e-4, "{one} vs {want}");
        // Orthogonal rows of equal length: two equal singular values, rank 2.
        let two = effective_rank(&t(&[[3.0, 0.0], [0.0, 3.0]])).unwrap();
        assert!((two - 2.0).abs() < 1e-5, "{two}");
        // Singular values 3 and 1: p = (3/4, 1/4).
        let r = effective_rank(&t(&[[3.0, 0.0], [0.0, 1.0]])).unwrap();
        let want = (-(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln())).exp();
        assert!((r - want).abs() < 1e-5, "{r} vs {want}");
    }

    #[test]
    fn pairs_link_each_concept_in_a_ring() {
        let pairs = same_concept_pairs(&[0, 1, 0, 2, 0, 1]);
        assert_eq!(pairs, vec![(0, 2), (2, 4), (4, 0), (1, 5)]);
    }
}
