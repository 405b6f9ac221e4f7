//! The dense layers' row loops: bias and ReLU on the way forward, the ReLU's gradient and the
//! bias gradient's sums on the way back. They run over every element of a layer's output each
//! step (11% of a one-thread MLP step as scalar loops) and this crate is built for the baseline
//! x86-64 CPU, whose vectors hold four f32, so they have AVX2 forms, with the same results as the
//! portable ones: element-wise, and sums over rows in row order for each column.

use std::mem::MaybeUninit;

/// `o += b`, then ReLU, for one row `o` of `b.len()` values, pushing onto `zeros` the columns
/// where the pre-activation `o + b` was exactly 0 (the output alone cannot tell those from
/// negative values), in order.
pub(super) fn bias_relu_row(o: &mut [f32], b: &[f32], zeros: &mut Vec<usize>) {
    assert_eq!(o.len(), b.len(), "one bias per column");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); both slices are equally long.
        done = unsafe { simd::bias_relu_row(o, b, zeros) };
    }
    for (c, (o, &bj)) in o.iter_mut().zip(b).enumerate().skip(done) {
        let v = *o + bj;
        if v == 0.0 {
            zeros.push(c);
        }
        *o = relu_of(v);
    }
}

/// `o += b` for one row `o` of `b.len()` values.
pub(super) fn bias_row(o: &mut [f32], b: &[f32]) {
    assert_eq!(o.len(), b.len(), "one bias per column");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); both slices are equally long.
        done = unsafe { simd::bias_row(o, b) };
    }
    for (o, &bj) in o.iter_mut().zip(b).skip(done) {
        *o += bj;
    }
}

/// ReLU with `_mm256_max_ps(v, 0)`'s rule: 0 for a NaN, +0 for -0.
fn relu_of(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// `d = g` where `r > 0`, else 0 (the ReLU's gradient given its output `r`), over rows of `n`,
/// and `sums += ` the column sums of `d`, row by row in order. Every element of `d` is
/// written; returns it as written.
pub(super) fn relu_grad_rows<'d>(
    d: &'d mut [MaybeUninit<f32>],
    g: &[f32],
    r: &[f32],
    sums: &mut [f32],
) -> &'d mut [f32] {
    let n = sums.len();
    assert!(d.len() == g.len() && g.len() == r.len() && d.len().is_multiple_of(n.max(1)));
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); the lengths are asserted above.
        done = unsafe { simd::relu_grad_rows(d, g, r, sums) };
    }
    for row in 0..d.len() / n.max(1) {
        for (c, s) in sums.iter_mut().enumerate().skip(done) {
            let at = row * n + c;
            let v = if r[at] > 0.0 { g[at] } else { 0.0 };
            d[at].write(v);
            *s += v;
        }
    }
    // SAFETY: every element was written: the first `done` columns of each row above by the
    // AVX2 form, the rest by the loop.
    unsafe { &mut *(d as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// `sums += ` the column sums of `m` (rows of `sums.len()`), row by row in order.
pub(super) fn add_rows(sums: &mut [f32], m: &[f32]) {
    let n = sums.len();
    assert!(m.len().is_multiple_of(n.max(1)), "whole rows");
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); `m` holds whole rows.
        done = unsafe { simd::add_rows(sums, m) };
    }
    for row in m.chunks(n.max(1)) {
        for c in done..n {
            sums[c] += row[c];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// [`super::bias_relu_row`] over the first multiple of eight columns; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2; `o` and `b` are equally long.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn bias_relu_row(o: &mut [f32], b: &[f32], zeros: &mut Vec<usize>) -> usize {
        let chunks = o.len() / 8 * 8;
        let zero = _mm256_setzero_ps();
        let mut i = 0;
        while i < chunks {
            // SAFETY: i + 8 <= chunks <= both lengths; `o` is borrowed mutably, so no alias.
            unsafe {
                let v = _mm256_add_ps(
                    _mm256_loadu_ps(o.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                );
                let exact = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(v, zero));
                if exact != 0 {
                    zeros.extend((0..8).filter(|l| exact >> l & 1 == 1).map(|l| i + l));
                }
                // max(v, 0) returns its second operand for a NaN and for -0.
                _mm256_storeu_ps(o.as_mut_ptr().add(i), _mm256_max_ps(v, zero));
            }
            i += 8;
        }
        chunks
    }

    /// [`super::bias_row`] over the first multiple of eight columns; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2; `o` and `b` are equally long.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn bias_row(o: &mut [f32], b: &[f32]) -> usize {
        let chunks = o.len() / 8 * 8;
        let mut i = 0;
        while i < chunks {
            // SAFETY: i + 8 <= chunks <= both lengths; `o` is borrowed mutably, so no alias.
            unsafe {
                let v = _mm256_add_ps(
                    _mm256_loadu_ps(o.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                );
                _mm256_storeu_ps(o.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        chunks
    }

    /// [`super::relu_grad_rows`] over the first multiple of eight columns; returns how many.
    /// Row by row, the sums loaded and stored in L1.
    ///
    /// # Safety
    /// The CPU has AVX2; `d`, `g` and `r` are equally long, whole rows of `sums.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relu_grad_rows(
        d: &mut [std::mem::MaybeUninit<f32>],
        g: &[f32],
        r: &[f32],
        sums: &mut [f32],
    ) -> usize {
        let n = sums.len();
        let chunks = n / 8 * 8;
        let zero = _mm256_setzero_ps();
        let s = sums.as_mut_ptr();
        let mut at = 0;
        while at + n <= g.len() && chunks > 0 {
            let mut c = 0;
            while c < chunks {
                // SAFETY: at + c + 8 <= at + n <= every length, and c + 8 <= n = sums.len();
                // `d` and `sums` are borrowed mutably, so nothing aliases.
                unsafe {
                    let pass =
                        _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(r.as_ptr().add(at + c)), zero);
                    let v = _mm256_and_ps(_mm256_loadu_ps(g.as_ptr().add(at + c)), pass);
                    _mm256_storeu_ps(d.as_mut_ptr().add(at + c).cast::<f32>(), v);
                    _mm256_storeu_ps(s.add(c), _mm256_add_ps(_mm256_loadu_ps(s.add(c)), v));
                }
                c += 8;
            }
            at += n;
        }
        chunks
    }

    /// [`super::add_rows`] over the first multiple of eight columns; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2; `m` holds whole rows of `sums.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn add_rows(sums: &mut [f32], m: &[f32]) -> usize {
        let n = sums.len();
        let chunks = n / 8 * 8;
        let s = sums.as_mut_ptr();
        let mut at = 0;
        while at + n <= m.len() && chunks > 0 {
            let mut c = 0;
            while c < chunks {
                // SAFETY: at + c + 8 <= at + n <= m.len(), and c + 8 <= n = sums.len().
                unsafe {
                    let v = _mm256_loadu_ps(m.as_ptr().add(at + c));
                    _mm256_storeu_ps(s.add(c), _mm256_add_ps(_mm256_loadu_ps(s.add(c)), v));
                }
                c += 8;
            }
            at += n;
        }
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with exact zeros, negatives, a NaN and a -0 among them, `rows x n`.
    fn grid(rows: usize, n: usize, salt: u32) -> Vec<f32> {
        (0..rows * n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(salt) >> 20;
                match h % 13 {
                    0 => 0.0,
                    1 => -0.0,
                    2 if i % 97 == 5 => f32::NAN,
                    _ => (h as f32 / 512.0) - 4.0,
                }
            })
            .collect()
    }

    /// The AVX2 forms against scalar loops written out here, bit for bit, at widths with and
    /// without a remainder and wider than one register block.
    #[test]
    fn rows_equal_scalar_loops() {
        for n in [3, 8, 19, 64, 150] {
            let rows = 7;
            let (g, r) = (grid(rows, n, 1), grid(rows, n, 2));
            let bias = grid(1, n, 3);
            for relu in [false, true] {
                let mut fast = g.clone();
                let mut zeros_fast = Vec::new();
                for (row, o) in fast.chunks_mut(n).enumerate() {
                    let mut zeros = Vec::new();
                    if relu {
                        bias_relu_row(o, &bias, &mut zeros);
                    } else {
                        bias_row(o, &bias);
                    }
                    zeros_fast.extend(zeros.iter().map(|c| row * n + c));
                }
                let mut zeros_slow = Vec::new();
                let slow: Vec<f32> = g
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let v = v + bias[i % n];
                        if v == 0.0 {
                            zeros_slow.push(i);
                        }
                        if !relu || v > 0.0 { v } else { 0.0 }
                    })
                    .collect();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow), "n = {n}, relu = {relu}");
                if relu {
                    assert!(!zeros_slow.is_empty(), "the grid has exact zeros");
                    assert_eq!(zeros_fast, zeros_slow);
                }
            }
            let start = grid(1, n, 4);
            let (mut d, mut sums) = (vec![MaybeUninit::uninit(); rows * n], start.clone());
            let d = relu_grad_rows(&mut d, &g, &r, &mut sums);
            let mut want = start.clone();
            for i in 0..rows * n {
                let v = if r[i] > 0.0 { g[i] } else { 0.0 };
                assert_eq!(d[i].to_bits(), v.to_bits(), "n = {n}, at {i}");
                want[i % n] += v;
            }
            assert_eq!(
                sums.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
            let mut sums = start.clone();
            add_rows(&mut sums, &g);
            let mut want = start;
            for (i, &v) in g.iter().enumerate() {
                want[i % n] += v;
            }
            assert_eq!(
                sums.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
