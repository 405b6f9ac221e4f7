//! Closed forms of the collision-coverage trade-off (Ash et al. 2021), for measured class
//! frequencies `rho` (which sum to 1).

/// Probability that at least one of `k` negatives shares the anchor's concept:
/// `tau_k = 1 - sum_c rho_c (1 - rho_c)^k`.
///
/// # Example
///
/// ```
/// // Ten equally frequent concepts, four negatives: 1 - 0.9^4.
/// let tau = negsweep::theory::collision_probability(&[0.1; 10], 4);
/// assert!((tau - 0.3439).abs() < 1e-12);
/// ```
pub fn collision_probability(rho: &[f64], k: u32) -> f64 {
    let kept: f64 = rho.iter().map(|&r| r * (1.0 - r).powi(k as i32)).sum();
    (1.0 - kept).clamp(0.0, 1.0)
}

/// Expected number of colliding negatives among `k`: `k sum_c rho_c^2`.
pub fn expected_collisions(rho: &[f64], k: u32) -> f64 {
    f64::from(k) * rho.iter().map(|r| r * r).sum::<f64>()
}

/// Probability that `k` uniform draws over `n` concepts hit every concept other than the
/// anchor's (coverage). Computed by the occupancy recursion over how many of the other `n - 1`
/// concepts are covered so far: only sums of non-negative terms, so it is stable for large `n`
/// and `k` where inclusion-exclusion cancels catastrophically. O(k n) time.
///
/// # Example
///
/// ```
/// // Two concepts: coverage fails only if every draw hits the anchor's concept.
/// let p = negsweep::theory::coverage_probability(2, 3);
/// assert!((p - (1.0 - 0.5f64.powi(3))).abs() < 1e-12);
/// ```
pub fn coverage_probability(n: u32, k: u32) -> f64 {
    let others = n.saturating_sub(1) as usize;
    if others == 0 {
        return 1.0;
    }
    if (k as usize) < others {
        return 0.0;
    }
    // state[j]: probability that exactly j of the other concepts are covered.
    let mut state = vec![0f64; others + 1];
    state[0] = 1.0;
    let nf = f64::from(n);
    for _ in 0..k {
        // Descending j, so each draw moves mass up by at most one.
        for j in (0..=others).rev() {
            let stay = (j as f64 + 1.0) / nf;
            let from_below = if j > 0 {
                state[j - 1] * (others - (j - 1)) as f64 / nf
            } else {
                0.0
            };
            state[j] = if j == others {
                state[j] + from_below
            } else {
                state[j] * stay + from_below
            };
        }
    }
    state[others].clamp(0.0, 1.0)
}

/// Expected number of uniform draws until all `n` concepts have been seen: `n H_n`.
pub fn expected_draws_to_cover(n: u32) -> f64 {
    f64::from(n) * (1..=n).map(|i| 1.0 / f64::from(i)).sum::<f64>()
}

/// Arora et al.'s comparison coefficient `1 / ((1 - tau_k) coverage)`: infinite when coverage
/// is 0.
pub fn arora_coefficient(tau_k: f64, coverage: f64) -> f64 {
    let d = (1.0 - tau_k) * coverage;
    if d > 0.0 { 1.0 / d } else { f64::INFINITY }
}

/// The coefficient of Ash et al.'s bound on the mean classifier's supervised loss (uniform
/// version): `2 max(1, 2 (N - 1) H_{N-1} / k) / (1 - tau_k)`. Coverage pushes it down as k
/// grows to about `2 (N - 1) H_{N-1}`, collisions push it up: minimised near k = N.
///
/// # Example
///
/// ```
/// use negsweep::theory::{ash_coefficient, collision_probability};
/// let n = 16;
/// let rho = vec![1.0 / n as f64; n];
/// let c = |k| ash_coefficient(n as u32, k, collision_probability(&rho, k));
/// assert!(c(16) < c(2) && c(16) < c(256));
/// ```
pub fn ash_coefficient(n: u32, k: u32, tau_k: f64) -> f64 {
    let harmonic: f64 = (1..n).map(|i| 1.0 / f64::from(i)).sum();
    let coverage = (2.0 * f64::from(n.saturating_sub(1)) * harmonic / f64::from(k.max(1))).max(1.0);
    2.0 * coverage / (1.0 - tau_k).max(f64::MIN_POSITIVE)
}

/// The k among `ks` with the smallest [`ash_coefficient`], given each k's `tau_k`.
pub fn predicted_best_k(n: u32, ks_and_tau: impl IntoIterator<Item = (u32, f64)>) -> Option<u32> {
    ks_and_tau
        .into_iter()
        .map(|(k, tau)| (k, ash_coefficient(n, k, tau)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_matches_closed_form() {
        let n = 10;
        let rho = vec![0.1; n];
        for k in [1, 4, 16, 256] {
            let want = 1.0 - 0.9f64.powi(k as i32);
            assert!((collision_probability(&rho, k) - want).abs() < 1e-12);
            assert!((expected_collisions(&rho, k) - f64::from(k) / 10.0).abs() < 1e-12);
        }
    }

    #[test]
    fn coverage_matches_monte_carlo_and_known_values() {
        use rand::{Rng, SeedableRng};
        assert_eq!(
            coverage_probability(10, 8),
            0.0,
            "fewer draws than concepts"
        );
        assert_eq!(coverage_probability(1, 0), 1.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (n, k) in [(2u32, 3u32), (5, 10), (10, 30), (10, 60)] {
            let trials = 100_000;
            let hits = (0..trials)
                .filter(|_| {
                    let mut seen = vec![false; n as usize];
                    for _ in 0..k {
                        seen[rng.random_range(0..n as usize)] = true;
                    }
                    // Concept 0 is the anchor's.
                    seen[1..].iter().all(|&s| s)
                })
                .count();
            let mc = hits as f64 / f64::from(trials);
            let p = coverage_probability(n, k);
            assert!(
                (p - mc).abs() < 0.006,
                "N={n} k={k}: {p} vs Monte Carlo {mc}"
            );
        }
        // Large N stays finite and in range.
        let p = coverage_probability(1000, 20_000);
        assert!((0.0..=1.0).contains(&p) && p > 0.99, "{p}");
        assert!((expected_draws_to_cover(10) - 29.289_682_539_682_54).abs() < 1e-9);
        assert!(arora_coefficient(0.5, 0.0).is_infinite());
        assert!((arora_coefficient(0.5, 0.5) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn predicted_best_k_grows_with_n() {
        let ks: Vec<u32> = (0..11).map(|i| 1 << i).collect();
        let best = |n: usize| {
            let rho = vec![1.0 / n as f64; n];
            predicted_best_k(
                n as u32,
                ks.iter().map(|&k| (k, collision_probability(&rho, k))),
            )
            .unwrap()
        };
        let (b4, b32, b256) = (best(4), best(32), best(256));
        assert!(b4 < b32 && b32 < b256, "{b4} {b32} {b256}");
    }

    #[test]
    fn bounds_hold_for_skewed_rho() {
        let rho = [0.7, 0.2, 0.05, 0.05];
        let mut last = 0.0;
        for k in [0, 1, 2, 8, 64, 10_000] {
            let t = collision_probability(&rho, k);
            assert!((0.0..=1.0).contains(&t) && t >= last);
            last = t;
        }
        assert_eq!(collision_probability(&rho, 0), 0.0);
    }
}
