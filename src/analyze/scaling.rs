//! How best k scales with N.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{PerN, mean};

/// How best k scales with N within one family of groups (the same dataset and settings, N
/// varying): the least-squares slope of log2 best-k against log2 N, with a 95% bootstrap
/// interval from resampling the seeds (each N's best k recomputed per resample; seeds are
/// resampled by position, shared by every N).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// The N values, ascending.
    pub ns: Vec<u32>,
    /// Best k per N, on all seeds.
    pub best_k: Vec<u32>,
    /// Slope of log2 best-k on log2 N.
    pub slope: f64,
    /// 95% percentile bootstrap interval of the slope.
    pub ci: (f64, f64),
    /// The family's other settings, `name=value` (empty when built from bare cells).
    pub settings: Vec<String>,
    /// The theory's k* per N among the swept k (Ash et al. 2021, Theorem 3's coefficient, with
    /// the measured `tau_k`); `None` where the results carry no `tau_k`.
    pub theory_k: Vec<Option<u32>>,
    /// Slope of log2 theory k* on log2 N, when every N has one.
    pub theory_slope: Option<f64>,
}

/// Least-squares slope of `y` on `x`.
pub(super) fn slope(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

/// The scaling of best k with N: `per_n[j] = (N, ks, values[k][seed])` for each N (at least
/// two), higher values better; `None` with fewer than two N.
pub fn scaling(per_n: &[PerN], resamples: usize, seed: u64) -> Option<Scaling> {
    if per_n.len() < 2 {
        return None;
    }
    let best_of = |ks: &[u32], values: &[Vec<f64>], pick: &[usize]| -> u32 {
        let m: Vec<f64> = values
            .iter()
            .map(|v| pick.iter().map(|&s| v[s]).sum::<f64>() / pick.len() as f64)
            .collect();
        ks[super::best_index(&m).expect("a k")]
    };
    let x: Vec<f64> = per_n.iter().map(|(n, ..)| f64::from(*n).log2()).collect();
    let fit = |picks: &dyn Fn(usize) -> Vec<usize>| -> (Vec<u32>, f64) {
        let best: Vec<u32> = per_n
            .iter()
            .enumerate()
            .map(|(j, (_, ks, values))| best_of(ks, values, &picks(j)))
            .collect();
        let y: Vec<f64> = best.iter().map(|&k| f64::from(k).log2()).collect();
        (best, slope(&x, &y))
    };
    let (best_k, s) = fit(&|j| (0..per_n[j].2[0].len()).collect());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // One resample of seed positions per round, shared by every N (seeds pair across N too).
    let most = per_n.iter().map(|(_, _, v)| v[0].len()).max().unwrap_or(0);
    let mut slopes: Vec<f64> = (0..resamples)
        .map(|_| {
            let pick: Vec<usize> = (0..most).map(|_| rng.random_range(0..most)).collect();
            fit(&|j| {
                let seeds = per_n[j].2[0].len();
                pick[..seeds].iter().map(|&p| p % seeds).collect()
            })
            .1
        })
        .collect();
    slopes.sort_by(f64::total_cmp);
    let at = |q: f64| slopes[((slopes.len() - 1) as f64 * q).round() as usize];
    let ci = if slopes.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (at(0.025), at(0.975))
    };
    Some(Scaling {
        ns: per_n.iter().map(|(n, ..)| *n).collect(),
        best_k,
        slope: s,
        ci,
        settings: Vec::new(),
        theory_k: vec![None; per_n.len()],
        theory_slope: None,
    })
}

#[cfg(test)]
mod scaling_tests {
    use super::*;

    #[test]
    fn the_slope_recovers_a_known_exponent() {
        // Accuracy peaks at k = N / 2 (exponent 1) for N = 4, 16, 64, 256; seed noise is small
        // against the peak, so every resample finds the same best k.
        let ks: Vec<u32> = (0..10).map(|e| 1u32 << e).collect();
        let per_n: Vec<PerN> = [4u32, 16, 64, 256]
            .iter()
            .map(|&n| {
                let peak = f64::from(n / 2).log2();
                let values = ks
                    .iter()
                    .map(|&k| {
                        (0..5)
                            .map(|s| {
                                1.0 - (f64::from(k).log2() - peak).abs() * 0.1 + 0.001 * s as f64
                            })
                            .collect()
                    })
                    .collect();
                (n, ks.clone(), values)
            })
            .collect();
        let s = scaling(&per_n, 500, 3).unwrap();
        assert_eq!(s.best_k, [2, 8, 32, 128]);
        assert!((s.slope - 1.0).abs() < 1e-12, "{s:?}");
        assert!(
            (s.ci.0 - 1.0).abs() < 1e-12 && (s.ci.1 - 1.0).abs() < 1e-12,
            "{s:?}"
        );
        // Best k = sqrt(N): exponent 1/2.
        let half: Vec<PerN> = [4u32, 16, 64, 256]
            .iter()
            .map(|&n| {
                let peak = f64::from(n).log2() / 2.0;
                let values = ks
                    .iter()
                    .map(|&k| vec![1.0 - (f64::from(k).log2() - peak).abs(); 3])
                    .collect();
                (n, ks.clone(), values)
            })
            .collect();
        assert!((scaling(&half, 100, 1).unwrap().slope - 0.5).abs() < 1e-12);
        assert!(scaling(&half[..1], 100, 1).is_none());
    }
}
