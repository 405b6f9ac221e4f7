//! Products with bf16 operands and f32 sums, for `train.precision = "bf16"`.
//!
//! Each operand is rounded to bf16 (round to nearest even, subnormals to zero: what the
//! AVX512-BF16 conversion does) and `vdpbf16ps` sums pairs of their products into f32
//! accumulators, twice the f32 multiply-adds per instruction; measured on one Zen 4 core, 232
//! against 115 GFLOP/s at the instruction's peak. This is the mixed precision of Micikevicius et
//! al. (2018, "Mixed Precision Training") with bf16 in place of f16 (Kalamkar et al. 2019): the
//! weights, their gradients and Adam's moments stay f32, and only the operands of the dense
//! layers' products are rounded, to 8 significant bits.
//!
//! GotoBLAS blocking: per block of `2 KP` along the shared dimension, the right operand is packed
//! into panels of `NR` columns, then each band of `MR` rows of the left operand is packed and
//! multiplied with every panel by a register-tile kernel. Every output value is summed in the same
//! order whatever the thread count (the threads split the rows), so results do not depend on it.

use rayon::prelude::*;

/// Rows of a register tile.
const MR: usize = 12;
/// Columns of a register tile: two registers of 16 f32.
const NR: usize = 32;
/// Pairs of the shared dimension per block: a band of the left operand (`MR x KP` pairs, 6 KiB)
/// and a panel of the right one (`KP x NR`, 16 KiB) stay in a 32 KiB L1 cache.
const KP: usize = 128;

/// Whether this CPU has the bf16 dot product (AVX512-BF16, with AVX512F and AVX512BW). Without
/// it the products take a portable path: the same rounding of the operands, several times
/// slower than f32.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `v` rounded to bf16 as the AVX512-BF16 conversion does: to nearest, ties to even;
/// subnormals and zeros to a zero of their sign; a NaN stays a (quiet) NaN.
pub(super) fn round(v: f32) -> u16 {
    let b = v.to_bits();
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    if v.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// `(lo, hi)` rounded to bf16 as one pair of `vdpbf16ps`'s operand, `lo` in the low half.
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(round(lo)) | (u32::from(round(hi)) << 16)
}

/// `dst = lhs @ rhs` with bf16 operands and f32 sums: `dst` row-major `(m, n)`, `lhs[i][q]` at
/// `i * lhs_rs + q * lhs_cs` for `q < k`, `rhs[q][j]` at `q * rhs_rs + j * rhs_cs`. The rows
/// are split between `threads` threads of the current rayon pool.
///
/// # Panics
/// When `dst` is shorter than `m n` or an operand's last element lies outside its slice (a CPU
/// without AVX512-BF16 takes the portable path instead).
pub(super) fn gemm(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    (lhs, (lhs_rs, lhs_cs)): (&[f32], (usize, usize)),
    (rhs, (rhs_rs, rhs_cs)): (&[f32], (usize, usize)),
    threads: usize,
) {
    let fast = available();
    assert!(dst.len() >= m * n, "gemm: destination too small");
    assert!(m == 0 || k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len());
    assert!(k == 0 || n == 0 || (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len());
    let dst = &mut dst[..m * n];
    if m == 0 || n == 0 || k == 0 {
        dst.fill(0.0);
        return;
    }
    let pairs = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let bands = m.div_ceil(MR);
    // Bands per task: a few tasks per thread, each writing its own rows.
    let per_task = bands.div_ceil(threads.max(1) * 4).max(1);
    let mut packed_b = vec![0u32; panels * KP * NR];
    for kb in (0..pairs).step_by(KP) {
        let kp = KP.min(pairs - kb);
        let pack = |(panel, out): (usize, &mut [u32])| {
            pack_b(fast, out, rhs, (rhs_rs, rhs_cs), k, n, kb, kp, panel * NR);
        };
        if threads > 1 {
            packed_b.par_chunks_mut(KP * NR).enumerate().for_each(pack);
        } else {
            packed_b.chunks_mut(KP * NR).enumerate().for_each(pack);
        }
        let run = |(task, rows): (usize, &mut [f32])| {
            let mut band = vec![0u32; MR * KP];
            for (b, c) in rows.chunks_mut(MR * n).enumerate() {
                let row0 = (task * per_task + b) * MR;
                let height = c.len() / n;
                let pair_major = pack_a(
                    fast,
                    &mut band,
                    lhs,
                    (lhs_rs, lhs_cs),
                    k,
                    kb,
                    kp,
                    row0,
                    height,
                );
                for panel in 0..panels {
                    let col0 = panel * NR;
                    let width = NR.min(n - col0);
                    let b = &packed_b[panel * KP * NR..][..kp * NR];
                    let c = &mut c[col0..];
                    tile(fast, pair_major, kb == 0, kp, &band, b, c, n, height, width);
                }
            }
        };
        if threads > 1 {
            dst.par_chunks_mut(per_task * MR * n)
                .enumerate()
                .for_each(run);
        } else {
            dst.chunks_mut(per_task * MR * n).enumerate().for_each(run);
        }
    }
}

/// Packs pairs `kb..kb + kp` of rows `row0..row0 + height` of the left operand into `band`,
/// zeros beyond `k` and below `height`. Returns the layout: pair `p` of row `i` at `p * MR + i`
/// (`true`: for a left operand stored transposed, whose rows are contiguous along `i`) or at
/// `i * KP + p` (`false`).
#[allow(clippy::too_many_arguments)]
fn pack_a(
    fast: bool,
    band: &mut [u32],
    lhs: &[f32],
    (rs, cs): (usize, usize),
    k: usize,
    kb: usize,
    kp: usize,
    row0: usize,
    height: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if fast && rs == 1 {
        // SAFETY: the CPU has AVX512-BF16 and AVX512BW (`fast`); `band` holds MR x KP pairs.
        unsafe { simd::pack_pair_major(band, lhs, cs, k, kb, kp, row0, height) };
        return true;
    }
    for i in 0..MR {
        let out = &mut band[i * KP..][..kp];
        if i >= height {
            out.fill(0);
            continue;
        }
        let base = (row0 + i) * rs;
        let q0 = 2 * kb;
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if fast && cs == 1 {
            let whole = (k.saturating_sub(q0) / 32).min(kp / 16);
            // SAFETY: the CPU has AVX512-BF16 (`fast`); 32 whole values per 16
            // pairs lie inside the row, `whole * 32 <= k - q0`.
            unsafe {
                simd::pack_contiguous(&mut out[..whole * 16], &lhs[base + q0..][..whole * 32])
            };
            done = whole * 16;
        }
        for (p, o) in out.iter_mut().enumerate().skip(done) {
            let q = q0 + 2 * p;
            let at = |q: usize| if q < k { lhs[base + q * cs] } else { 0.0 };
            *o = pair(at(q), at(q + 1));
        }
    }
    false
}

/// Packs pairs `kb..kb + kp` of columns `col0..col0 + NR` of the right operand into `panel`,
/// pair `p` at `p * NR` (the kernel loads 16 columns of one pair at a time), zeros beyond `k`
/// and `n`.
#[allow(clippy::too_many_arguments)]
fn pack_b(
    fast: bool,
    panel: &mut [u32],
    rhs: &[f32],
    (rs, cs): (usize, usize),
    k: usize,
    n: usize,
    kb: usize,
    kp: usize,
    col0: usize,
) {
    let width = NR.min(n - col0);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if fast && cs == 1 && width == NR {
        // Pairs whose both rows exist.
        done = kp.min((k / 2).saturating_sub(kb));
        // SAFETY: the CPU has AVX512-BF16 and AVX512BW (`fast`); the panel holds kp x NR pairs
        // and rows `2 kb..2 (kb + done)` of the operand NR values from col0.
        unsafe { simd::pack_interleaved(panel, rhs, rs, 2 * kb, done, col0) };
    }
    for p in done..kp {
        let q = 2 * (kb + p);
        let out = &mut panel[p * NR..][..NR];
        for (j, o) in out.iter_mut().enumerate() {
            let at = |q: usize| {
                if q < k && j < width {
                    rhs[q * rs + (col0 + j) * cs]
                } else {
                    0.0
                }
            };
            *o = pair(at(q), at(q + 1));
        }
    }
}

/// `c[i][j] (+)= sum_p band[i][p] . panel[p][j]` for `i < height`, `j < width` (`=` for the
/// `first` block of pairs), the band laid out as [`pack_a`] says (`pair_major`): the register
/// tile where `fast`, else f32 multiply-adds of the pairs' halves, high first as the
/// instruction does (its flushing of subnormal sums aside).
#[allow(clippy::too_many_arguments)]
fn tile(
    fast: bool,
    pair_major: bool,
    first: bool,
    kp: usize,
    band: &[u32],
    panel: &[u32],
    c: &mut [f32],
    ldc: usize,
    height: usize,
    width: usize,
) {
    assert!(band.len() >= MR * KP && panel.len() >= kp * NR && height <= MR && width <= NR);
    assert!(height >= 1 && c.len() >= (height - 1) * ldc + width);
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: the CPU has AVX512-BF16 (`fast`); the lengths are asserted above.
        return unsafe {
            if pair_major {
                simd::tile::<MR, 1>(first, kp, band, panel, c, ldc, height, width)
            } else {
                simd::tile::<1, KP>(first, kp, band, panel, c, ldc, height, width)
            }
        };
    }
    let (ps, is) = if pair_major { (MR, 1) } else { (1, KP) };
    let half = |v: u32, h: u32| f32::from_bits((v >> (16 * h)) << 16);
    for i in 0..height {
        for j in 0..width {
            let mut acc = 0f32;
            for p in 0..kp {
                let (a, b) = (band[p * ps + i * is], panel[p * NR + j]);
                // `vdpbf16ps`'s order: the high halves' product first (measured on Zen 4).
                acc = half(a, 1).mul_add(half(b, 1), acc);
                acc = half(a, 0).mul_add(half(b, 0), acc);
            }
            let c = &mut c[i * ldc + j];
            *c = if first { acc } else { *c + acc };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// `out[p] = pair(v[2p], v[2p + 1])` for 16 pairs at a time.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16; `v` holds `2 out.len()` values and `out.len()` is a multiple
    /// of 16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_contiguous(out: &mut [u32], v: &[f32]) {
        for (o, v) in out.chunks_exact_mut(16).zip(v.chunks_exact(32)) {
            // SAFETY: 32 values in, 16 pairs out.
            unsafe {
                let (lo, hi) = (
                    _mm512_loadu_ps(v.as_ptr()),
                    _mm512_loadu_ps(v.as_ptr().add(16)),
                );
                // The first argument fills the upper half: values 0..16 land in 0..16.
                let b: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(o.as_mut_ptr().cast(), b);
            }
        }
    }

    /// [`super::pack_a`] for a left operand stored transposed (`lhs[i][q]` at `i + q cs`):
    /// pair `p` of band row `i` at `p MR + i`, from rows `q` and `q + 1` of the stored matrix.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16 and AVX512BW; `band` holds MR x KP pairs, `kp <= KP`,
    /// `height <= MR`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn pack_pair_major(
        band: &mut [u32],
        lhs: &[f32],
        cs: usize,
        k: usize,
        kb: usize,
        kp: usize,
        row0: usize,
        height: usize,
    ) {
        let mask: __mmask16 = (1u16 << height.min(MR)) - 1;
        let order = interleave_order();
        for (p, out) in band.chunks_exact_mut(MR).take(kp).enumerate() {
            let q = 2 * (kb + p);
            let (lo, hi) = (q < k, q + 1 < k);
            let lo = if lo {
                &lhs[row0 + q * cs..][..height]
            } else {
                &[][..]
            };
            let hi = if hi {
                &lhs[row0 + (q + 1) * cs..][..height]
            } else {
                &[][..]
            };
            // SAFETY: the masked loads read `height` values of slices that hold them (or none),
            // the store MR = 12 lanes of `out`.
            unsafe {
                let load = |s: &[f32]| {
                    if s.is_empty() {
                        _mm512_setzero_ps()
                    } else {
                        _mm512_maskz_loadu_ps(mask, s.as_ptr())
                    }
                };
                let b: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(load(hi), load(lo)));
                let b = _mm512_permutexvar_epi16(order, b);
                _mm512_mask_storeu_epi32(out.as_mut_ptr().cast(), (1 << MR) - 1, b);
            }
        }
    }

    /// The bf16 lanes `lo[0], hi[0], lo[1], ...` of `cvtne2ps_pbh(hi, lo)`, whose lanes 0..16
    /// hold `lo` and 16..32 `hi`.
    #[target_feature(enable = "avx512f")]
    fn interleave_order() -> __m512i {
        _mm512_set_epi16(
            31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20,
            4, 19, 3, 18, 2, 17, 1, 16, 0,
        )
    }

    /// `panel[p][j] = pair(rhs[q0 + 2p][col0 + j], rhs[q0 + 2p + 1][col0 + j])` for `p < pairs`
    /// and NR columns, row `q` of `rhs` at `q rs`.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16 and AVX512BW; `panel` holds `pairs x NR` values.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn pack_interleaved(
        panel: &mut [u32],
        rhs: &[f32],
        rs: usize,
        q0: usize,
        pairs: usize,
        col0: usize,
    ) {
        let order = interleave_order();
        for (p, out) in panel.chunks_exact_mut(NR).take(pairs).enumerate() {
            let q = q0 + 2 * p;
            let (lo, hi) = (
                &rhs[q * rs + col0..][..NR],
                &rhs[(q + 1) * rs + col0..][..NR],
            );
            for h in 0..NR / 16 {
                // SAFETY: 16 values from 16 h in each row slice, 16 pairs out.
                unsafe {
                    let b: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(
                        _mm512_loadu_ps(hi.as_ptr().add(16 * h)),
                        _mm512_loadu_ps(lo.as_ptr().add(16 * h)),
                    ));
                    let b = _mm512_permutexvar_epi16(order, b);
                    _mm512_storeu_si512(out.as_mut_ptr().add(16 * h).cast(), b);
                }
            }
        }
    }

    /// `c[i][j] (+)= sum_p band[i][p] . panel[p][j]` for `i < height`, `j < width` (`=` where
    /// `first`), the row stride of `c` being `ldc`: a tile of MR x NR f32 sums in 24 registers. Pair `p` of row
    /// `i` lies at `p PS + i IS` in the band.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16; `band` holds MR x KP pairs, `panel` kp x NR, and `c` the tile's
    /// rows: `(height - 1) ldc + width` values, `height <= MR`, `width <= NR`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile<const PS: usize, const IS: usize>(
        first: bool,
        kp: usize,
        band: &[u32],
        panel: &[u32],
        c: &mut [f32],
        ldc: usize,
        height: usize,
        width: usize,
    ) {
        let (a, b) = (band.as_ptr(), panel.as_ptr());
        let z = _mm512_setzero_ps();
        // Named accumulators: an array of them is kept in memory across the loop.
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
        let (mut c60, mut c61, mut c70, mut c71, mut c80, mut c81) = (z, z, z, z, z, z);
        let (mut c90, mut c91, mut ca0, mut ca1, mut cb0, mut cb1) = (z, z, z, z, z, z);
        for p in 0..kp {
            // SAFETY: p < kp; the panel's pair p holds NR = 32 values, the band MR x KP pairs.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
                macro_rules! row {
                    ($i:expr, $lo:ident, $hi:ident) => {
                        let ai: __m512bh =
                            std::mem::transmute(_mm512_set1_epi32(*a.add(p * PS + $i * IS) as i32));
                        $lo = _mm512_dpbf16_ps($lo, ai, b0);
                        $hi = _mm512_dpbf16_ps($hi, ai, b1);
                    };
                }
                row!(0, c00, c01);
                row!(1, c10, c11);
                row!(2, c20, c21);
                row!(3, c30, c31);
                row!(4, c40, c41);
                row!(5, c50, c51);
                row!(6, c60, c61);
                row!(7, c70, c71);
                row!(8, c80, c81);
                row!(9, c90, c91);
                row!(10, ca0, ca1);
                row!(11, cb0, cb1);
            }
        }
        let acc = [
            [c00, c01],
            [c10, c11],
            [c20, c21],
            [c30, c31],
            [c40, c41],
            [c50, c51],
            [c60, c61],
            [c70, c71],
            [c80, c81],
            [c90, c91],
            [ca0, ca1],
            [cb0, cb1],
        ];
        if width == NR {
            for (i, acc) in acc.iter().enumerate().take(height) {
                for (h, v) in acc.iter().enumerate() {
                    // SAFETY: row i < height of the tile, 16 columns from 16 h < width.
                    unsafe {
                        let at = c.as_mut_ptr().add(i * ldc + 16 * h);
                        let v = if first {
                            *v
                        } else {
                            _mm512_add_ps(_mm512_loadu_ps(at), *v)
                        };
                        _mm512_storeu_ps(at, v);
                    }
                }
            }
        } else {
            let mut row = [0f32; NR];
            for (i, acc) in acc.iter().enumerate().take(height) {
                // SAFETY: `row` holds NR = 32 values.
                unsafe {
                    _mm512_storeu_ps(row.as_mut_ptr(), acc[0]);
                    _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[1]);
                }
                for (c, v) in c[i * ldc..][..width].iter_mut().zip(row) {
                    *c = if first { v } else { *c + v };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The products of bf16-rounded operands summed in f64, against which the f32 sums may
    /// differ by their own rounding.
    fn reference(
        (m, n, k): (usize, usize, usize),
        lhs: impl Fn(usize, usize) -> f32,
        rhs: impl Fn(usize, usize) -> f32,
    ) -> Vec<f64> {
        let up = |v: f32| f64::from(f32::from_bits(u32::from(round(v)) << 16));
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|q| up(lhs(i, q)) * up(rhs(q, j))).sum();
            }
        }
        out
    }

    fn value(i: usize, salt: usize) -> f32 {
        let h = (i.wrapping_mul(2_654_435_761) ^ salt).wrapping_mul(40_503) % 20_011;
        h as f32 / 10_005.5 - 1.0
    }

    /// Every layout the layers use (plain, left transposed, right transposed), at sizes with
    /// edges in every dimension and more than one block of the shared one, on one and two
    /// threads: within f32 rounding of exact sums of the bf16 products, and the same bits on
    /// both thread counts. On a CPU with AVX512-BF16 the fast path, else the portable one.
    #[test]
    fn products_equal_sums_of_rounded_operands() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (m, n, k) in [(1, 1, 1), (13, 33, 7), (29, 70, 301), (25, 64, 256)] {
            let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
            // (lhs strides, rhs strides): row-major, lhs stored transposed, rhs stored transposed.
            for (ls, rs) in [((k, 1), (n, 1)), ((1, m), (n, 1)), ((k, 1), (1, k))] {
                let want = reference(
                    (m, n, k),
                    |i, q| a[i * ls.0 + q * ls.1],
                    |q, j| b[q * rs.0 + j * rs.1],
                );
                let mut one = vec![f32::NAN; m * n];
                gemm(&mut one, (m, n, k), (&a, ls), (&b, rs), 1);
                let mut two = vec![f32::NAN; m * n];
                pool.install(|| gemm(&mut two, (m, n, k), (&a, ls), (&b, rs), 2));
                for (at, (&got, &want)) in one.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (k as f64) + 1e-6 * want.abs();
                    assert!(
                        (f64::from(got) - want).abs() <= tol,
                        "({m}, {n}, {k}) {ls:?} {rs:?} at {at}: {got} against {want}"
                    );
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&two), "one thread against two");
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even_with_subnormals_to_zero() {
        let bf = |bits: u16| f32::from_bits(u32::from(bits) << 16);
        assert_eq!(bf(round(1.0)), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(bf(round(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(bf(round(1.0 + 3.0 / 256.0)), 1.0 + 2.0 / 128.0);
        assert_eq!(round(1e-40), 0);
        assert_eq!(round(-1e-40), 0x8000);
        assert!(bf(round(f32::NAN)).is_nan());
        assert_eq!(bf(round(f32::MAX)), f32::INFINITY);
    }
}
