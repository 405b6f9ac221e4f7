//! The GRU's per-element gate math for one example at one step, forward and backward (see
//! `gru::GruScan`), with AVX2 + FMA forms: this crate is built for the baseline x86-64 CPU,
//! whose vectors hold four f32, and libm's `expf` and `tanhf` are scalar calls. Scalar, these passes took a quarter of the GRU step.
//!
//! The AVX2 `exp` is Cephes' `expf` (range reduction by ln 2, a degree-5 polynomial), within 2
//! ulp of libm's; every form is deterministic, so results depend only on the CPU's features.

/// One example's gate outputs at one step, each `hidden` long.
pub(super) struct Gates<'a> {
    pub(super) r: &'a mut [f32],
    pub(super) z: &'a mut [f32],
    pub(super) n: &'a mut [f32],
    /// `h W_hn + b_hn`.
    pub(super) hn: &'a mut [f32],
}

/// One example's step: the gates from its input gates `gi` and state product `gh` (both `3
/// hidden`, r z n), the state bias `bh`, and the state `s` (`hidden`) advanced in place:
/// `r = sigmoid(i_r + g_r + b_r)`, `z = sigmoid(i_z + g_z + b_z)`, `n = tanh(i_n + r (g_n +
/// b_n))`, `h' = n + z (h - n)` (PyTorch's `nn.GRU`).
pub(super) fn forward(out: Gates<'_>, s: &mut [f32], gi: &[f32], gh: &[f32], bh: &[f32]) {
    let h = s.len();
    assert!(gi.len() >= 3 * h && gh.len() >= 3 * h && bh.len() >= 3 * h);
    assert!(out.r.len() >= h && out.z.len() >= h && out.n.len() >= h && out.hn.len() >= h);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above); the asserts above bound
        // every slice the kernel reads or writes by `h`.
        done = unsafe { simd::forward(&out, s, gi, gh, bh) };
    }
    for c in done..h {
        let r = sigmoid(gi[c] + (gh[c] + bh[c]));
        let z = sigmoid(gi[h + c] + (gh[h + c] + bh[h + c]));
        let hn = gh[2 * h + c] + bh[2 * h + c];
        let n = tanh(gi[2 * h + c] + r * hn);
        let prev = s[c];
        s[c] = n + z * (prev - n);
        (out.r[c], out.z[c], out.n[c], out.hn[c]) = (r, z, n, hn);
    }
}

/// One example's step back. In: `dh`, the gradient of the state after the step, and what the
/// forward pass saved (`prev`, the state before it; r, z, n, hn). Out: `dgh` (`3 hidden`),
/// the gradient of the state product (its r and z parts are the input gates' too), `dgn`, the
/// n input gate's, and `dh` replaced by the part that flows straight to the previous state,
/// `dh z`.
pub(super) fn backward(dh: &mut [f32], dgh: &mut [f32], dgn: &mut [f32], saved: Saved<'_>) {
    let h = dh.len();
    assert!(dgh.len() >= 3 * h && dgn.len() >= h);
    let Saved { prev, r, z, n, hn } = saved;
    assert!(prev.len() >= h && r.len() >= h && z.len() >= h && n.len() >= h && hn.len() >= h);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: as in `forward`.
        done = unsafe { simd::backward(dh, dgh, dgn, &saved) };
    }
    for c in done..h {
        let d = dh[c];
        let dn = d * (1.0 - z[c]) * (1.0 - n[c] * n[c]);
        let dz = d * (prev[c] - n[c]) * z[c] * (1.0 - z[c]);
        dgh[c] = dn * hn[c] * r[c] * (1.0 - r[c]);
        dgh[h + c] = dz;
        dgh[2 * h + c] = dn * r[c];
        dgn[c] = dn;
        dh[c] = d * z[c];
    }
}

/// What the forward pass saved of one example's step, each `hidden` long.
#[derive(Clone, Copy)]
pub(super) struct Saved<'a> {
    pub(super) prev: &'a [f32],
    pub(super) r: &'a [f32],
    pub(super) z: &'a [f32],
    pub(super) n: &'a [f32],
    pub(super) hn: &'a [f32],
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `tanh x` through one `exp`, within 2e-7 of libm's `tanhf` (absolute), which goes through
/// `expm1f` and took a quarter of the GRU step's time. Saturates to -1 and 1 without NaN.
pub(super) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + (2.0 * x).exp())
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    use super::{Gates, Saved};

    /// Eight lanes of `exp x` (Cephes `expf`): `x = m ln 2 + f`, a polynomial in f, then m
    /// added to the exponent. Clamped to the f32 range with NaN kept (NaN is the second
    /// operand of max/min, which they return).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_set1_ps(88.376_26),
            _mm256_max_ps(_mm256_set1_ps(-87.336_55), x),
        );
        let m = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        // ln 2 in two parts, so that f keeps its low bits.
        let f = _mm256_fnmadd_ps(m, _mm256_set1_ps(0.693_359_4), x);
        let f = _mm256_fnmadd_ps(m, _mm256_set1_ps(-2.121_944_4e-4), f);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(
            _mm256_fmadd_ps(_mm256_mul_ps(p, f), f, f),
            _mm256_set1_ps(1.0),
        );
        let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(m),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(y, _mm256_castsi256_ps(pow2))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn sigmoid(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        // SAFETY: this function has the features `exp` needs.
        _mm256_div_ps(
            one,
            _mm256_add_ps(one, unsafe { exp(_mm256_sub_ps(_mm256_setzero_ps(), x)) }),
        )
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tanh(x: __m256) -> __m256 {
        let (one, two) = (_mm256_set1_ps(1.0), _mm256_set1_ps(2.0));
        // SAFETY: this function has the features `exp` needs.
        let e = unsafe { exp(_mm256_mul_ps(two, x)) };
        _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, e)))
    }

    /// [`super::forward`] over the first multiple of eight elements; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `gi`, `gh` and `bh` hold `3 s.len()` values and the gates
    /// `s.len()` each.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward(
        out: &Gates<'_>,
        s: &mut [f32],
        gi: &[f32],
        gh: &[f32],
        bh: &[f32],
    ) -> usize {
        let h = s.len();
        let done = h / 8 * 8;
        let ld = |v: &[f32], i: usize| unsafe { _mm256_loadu_ps(v.as_ptr().add(i)) };
        let mut c = 0;
        while c < done {
            // SAFETY: c + 8 <= h, and every slice holds h (gates, s) or 3 h values (the
            // caller's contract); the outputs are written through their raw pointers.
            unsafe {
                let r = sigmoid(_mm256_add_ps(
                    ld(gi, c),
                    _mm256_add_ps(ld(gh, c), ld(bh, c)),
                ));
                let z = sigmoid(_mm256_add_ps(
                    ld(gi, h + c),
                    _mm256_add_ps(ld(gh, h + c), ld(bh, h + c)),
                ));
                let hn = _mm256_add_ps(ld(gh, 2 * h + c), ld(bh, 2 * h + c));
                let n = tanh(_mm256_fmadd_ps(r, hn, ld(gi, 2 * h + c)));
                let prev = ld(s, c);
                _mm256_storeu_ps(
                    s.as_mut_ptr().add(c),
                    _mm256_fmadd_ps(z, _mm256_sub_ps(prev, n), n),
                );
                _mm256_storeu_ps(out.r.as_ptr().add(c).cast_mut(), r);
                _mm256_storeu_ps(out.z.as_ptr().add(c).cast_mut(), z);
                _mm256_storeu_ps(out.n.as_ptr().add(c).cast_mut(), n);
                _mm256_storeu_ps(out.hn.as_ptr().add(c).cast_mut(), hn);
            }
            c += 8;
        }
        done
    }

    /// [`super::backward`] over the first multiple of eight elements; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `dgh` holds `3 dh.len()` values, `dgn` and the saved slices
    /// `dh.len()` each.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn backward(
        dh: &mut [f32],
        dgh: &mut [f32],
        dgn: &mut [f32],
        saved: &Saved<'_>,
    ) -> usize {
        let h = dh.len();
        let done = h / 8 * 8;
        let ld = |v: &[f32], i: usize| unsafe { _mm256_loadu_ps(v.as_ptr().add(i)) };
        let one = _mm256_set1_ps(1.0);
        let mut c = 0;
        while c < done {
            // SAFETY: c + 8 <= h and the caller's contract bounds every slice.
            unsafe {
                let d = ld(dh, c);
                let (r, z, n) = (ld(saved.r, c), ld(saved.z, c), ld(saved.n, c));
                let dn = _mm256_mul_ps(
                    _mm256_mul_ps(d, _mm256_sub_ps(one, z)),
                    _mm256_fnmadd_ps(n, n, one),
                );
                let dz = _mm256_mul_ps(
                    _mm256_mul_ps(_mm256_mul_ps(d, _mm256_sub_ps(ld(saved.prev, c), n)), z),
                    _mm256_sub_ps(one, z),
                );
                let dr = _mm256_mul_ps(
                    _mm256_mul_ps(_mm256_mul_ps(dn, ld(saved.hn, c)), r),
                    _mm256_sub_ps(one, r),
                );
                _mm256_storeu_ps(dgh.as_mut_ptr().add(c), dr);
                _mm256_storeu_ps(dgh.as_mut_ptr().add(h + c), dz);
                _mm256_storeu_ps(dgh.as_mut_ptr().add(2 * h + c), _mm256_mul_ps(dn, r));
                _mm256_storeu_ps(dgn.as_mut_ptr().add(c), dn);
                _mm256_storeu_ps(dh.as_mut_ptr().add(c), _mm256_mul_ps(d, z));
            }
            c += 8;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize, f: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * f).sin() * 6.0).collect()
    }

    /// Against libm's `exp` and `tanh`, element by element: a hidden width of 21 runs two
    /// eight-lane vectors and a scalar tail of five.
    #[test]
    fn gates_equal_the_formulas_in_the_lanes_and_the_tail() {
        let h = 21;
        let (gi, gh, bh, s0) = (
            wave(3 * h, 0.37),
            wave(3 * h, 0.91),
            wave(3 * h, 0.13),
            wave(h, 0.7),
        );
        let mut s = s0.clone();
        let (mut r, mut z, mut n, mut hn) =
            (vec![0.0; h], vec![0.0; h], vec![0.0; h], vec![0.0; h]);
        forward(
            Gates {
                r: &mut r,
                z: &mut z,
                n: &mut n,
                hn: &mut hn,
            },
            &mut s,
            &gi,
            &gh,
            &bh,
        );
        let dh0 = wave(h, 1.3);
        let (mut dh, mut dgh, mut dgn) = (dh0.clone(), vec![0.0; 3 * h], vec![0.0; h]);
        let saved = Saved {
            prev: &s0,
            r: &r,
            z: &z,
            n: &n,
            hn: &hn,
        };
        backward(&mut dh, &mut dgh, &mut dgn, saved);
        for c in 0..h {
            let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
            let rr = sig(gi[c] + gh[c] + bh[c]);
            let zz = sig(gi[h + c] + gh[h + c] + bh[h + c]);
            let hh = gh[2 * h + c] + bh[2 * h + c];
            let nn = (gi[2 * h + c] + rr * hh).tanh();
            let d = dh0[c];
            let dn = d * (1.0 - zz) * (1.0 - nn * nn);
            let want = [
                (s[c], nn + zz * (s0[c] - nn), "h'"),
                (r[c], rr, "r"),
                (z[c], zz, "z"),
                (n[c], nn, "n"),
                (hn[c], hh, "hn"),
                (dgh[c], dn * hh * rr * (1.0 - rr), "dr"),
                (dgh[h + c], d * (s0[c] - nn) * zz * (1.0 - zz), "dz"),
                (dgh[2 * h + c], dn * rr, "dgh_n"),
                (dgn[c], dn, "dn"),
                (dh[c], d * zz, "dh"),
            ];
            for (got, want, what) in want {
                assert!(
                    (got - want).abs() <= 2e-6 * (1.0 + want.abs()),
                    "{what}[{c}]: {got} vs {want}"
                );
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_lane_exp_is_within_two_ulp_and_keeps_nan() {
        use std::arch::x86_64::*;
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            panic!("this test needs AVX2 and FMA, which negsweep's x86-64 kernels assume");
        }
        let xs: Vec<f32> = (-8_700..=8_800).map(|i| i as f32 * 0.01).collect();
        let mut worst = 0f32;
        for c in xs.chunks_exact(8) {
            let mut got = [0f32; 8];
            // SAFETY: AVX2 and FMA checked above; `c` and `got` hold eight f32.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), simd::exp(_mm256_loadu_ps(c.as_ptr()))) };
            for (g, &x) in got.iter().zip(c) {
                let want = x.exp();
                worst = worst.max((g - want).abs() / want);
            }
        }
        assert!(worst <= 2.5e-7, "relative error {worst}");
        let mut got = [0f32; 8];
        let nan = [
            f32::NAN,
            1.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
            0.0,
            -100.0,
            100.0,
            0.5,
        ];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(got.as_mut_ptr(), simd::exp(_mm256_loadu_ps(nan.as_ptr()))) };
        assert!(got[0].is_nan(), "NaN in, NaN out");
        assert!(
            got[2] > 0.0 && got[2] <= 1.2e-38,
            "clamped to the least normal: {}",
            got[2]
        );
        assert!(
            got[3].is_finite() && got[3] > 1e38,
            "clamped, not infinite: {}",
            got[3]
        );
    }

    #[test]
    fn tanh_through_exp_stays_within_2e7_of_libm() {
        let worst = (-20_000..=20_000)
            .map(|i| i as f32 * 1e-3)
            .chain([-1e30, -90.0, 1e-30, 90.0, 1e30])
            .map(|x| (tanh(x) - x.tanh()).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 2e-7, "{worst}");
        assert_eq!((tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0));
    }
}
