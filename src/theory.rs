//! Closed forms of the collision-coverage trade-off (Ash et al. 2021), for uniform concepts and
//! for measured class frequencies `rho` (which sum to 1).
//!
//! Coverage (k negatives hit every concept other than the anchor's) is an occupancy
//! probability. By inclusion-exclusion it is `sum_A (-1)^|A| (1 - rho(A))^k` over sets A of
//! other concepts, whose terms cancel catastrophically when many concepts are likely to be
//! missed. The absolute values of the terms sum to at most `exp(mu)`, with
//! `mu = sum_{j != c} (1 - rho_j)^k` the expected number of missed concepts, so the sum is exact
//! to about `1e-16 exp(mu)`; and because occupancy indicators are negatively associated
//! (Dubhashi and Ranjan 1998), coverage is at most `exp(-mu)`. So this module sums
//! inclusion-exclusion where `mu <= MU_EXACT` and returns 0 beyond it: the absolute error is
//! below 1e-6 everywhere, and each value costs microseconds.

/// Above this many expected missed concepts coverage is below `exp(-16) = 1.1e-7` and is
/// returned as 0; below it, rounding in inclusion-exclusion costs at most about
/// `100 eps exp(16) = 2e-7`.
const MU_EXACT: f64 = 16.0;

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
/// anchor's (coverage). Inclusion-exclusion in log space where it is well conditioned, 0 where
/// coverage is below `exp(-16)` (see the module notes): absolute error below 1e-6, a few
/// microseconds per value even at `n = 1000, k = 20 000`.
///
/// # Example
///
/// ```
/// // Two concepts: coverage fails only if every draw hits the anchor's concept.
/// let p = negsweep::theory::coverage_probability(2, 3);
/// assert!((p - (1.0 - 0.5f64.powi(3))).abs() < 1e-12);
/// ```
pub fn coverage_probability(n: u32, k: u32) -> f64 {
    let m = n.saturating_sub(1);
    if m == 0 {
        return 1.0;
    }
    if k < m {
        return 0.0;
    }
    let (nf, kf, mf) = (f64::from(n), f64::from(k), f64::from(m));
    let mu = mf * (kf * (-1.0 / nf).ln_1p()).exp();
    if mu > MU_EXACT {
        return 0.0;
    }
    // Term j: C(m, j) (1 - j/n)^k, with sign (-1)^j; after j > mu they shrink at least by
    // mu / (j + 1) each, so the loop stops after a few dozen terms.
    let (mut sum, mut log_binom) = (1.0, 0.0);
    for j in 1..=m {
        let jf = f64::from(j);
        log_binom += ((mf - jf + 1.0) / jf).ln();
        let term = (log_binom + kf * (-jf / nf).ln_1p()).exp();
        sum += if j % 2 == 1 { -term } else { term };
        if term < 1e-18 && jf > 2.0 * mu {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

/// Coverage for measured class frequencies given as per-concept example counts (`rho_c =
/// counts_c / total`), averaged over the anchor's concept drawn with frequency `rho`.
///
/// For an anchor of concept c the inclusion-exclusion terms depend on the other concepts only
/// through the count sum of the missed set, so they are gathered by a subset-sum polynomial
/// `prod_j (1 - x^{count_j})`, truncated where `(1 - s/total)^k` has become negligible, and
/// divided by `(1 - x^{count_c})` per anchor concept. Absolute error below 1e-5 (see the module
/// notes); cost O(concepts x truncation degree).
pub fn coverage_probability_counts(counts: &[u64], k: u32) -> f64 {
    let counts: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    let n = counts.len();
    if n <= 1 {
        return 1.0;
    }
    if (k as usize) < n - 1 {
        return 0.0;
    }
    let total: u64 = counts.iter().sum();
    let (tf, kf) = (total as f64, f64::from(k));
    let miss = |c: u64| (kf * (-(c as f64) / tf).ln_1p()).exp();
    let mu_all: f64 = counts.iter().map(|&c| miss(c)).sum();
    // Every anchor concept beyond the exact regime: coverage is below exp(-16) for all.
    let smallest_mu = mu_all - counts.iter().map(|&c| miss(c)).fold(0.0, f64::max);
    if smallest_mu > MU_EXACT {
        return 0.0;
    }
    // Terms of missed sets with count sum above `top` add up to less than exp(-45) (a Chernoff
    // bound with weights exp(k s / 2 total)).
    let half: f64 = counts
        .iter()
        .map(|&c| (-kf * c as f64 / (2.0 * tf)).exp())
        .sum();
    let top = ((2.0 * tf * (half + 45.0) / kf).ceil() as u64).min(total) as usize;
    let mut poly = vec![0f64; top + 1];
    poly[0] = 1.0;
    for &c in &counts {
        let c = c as usize;
        for s in (c..=top).rev() {
            poly[s] -= poly[s - c];
        }
    }
    let weight: Vec<f64> = (0..=top)
        .map(|s| (kf * (-(s as f64) / tf).ln_1p()).exp())
        .collect();
    // Anchors of equal count have equal coverage.
    let mut by_count = std::collections::BTreeMap::<u64, u64>::new();
    for &c in &counts {
        *by_count.entry(c).or_default() += 1;
    }
    let mut rest = vec![0f64; top + 1];
    let mut coverage = 0.0;
    for (&c, &times) in &by_count {
        if mu_all - miss(c) > MU_EXACT {
            continue;
        }
        let cu = c as usize;
        let mut p = 0.0;
        for s in 0..=top {
            rest[s] = poly[s] + if s >= cu { rest[s - cu] } else { 0.0 };
            p += rest[s] * weight[s];
        }
        coverage += (times * c) as f64 / tf * p.clamp(0.0, 1.0);
    }
    coverage.clamp(0.0, 1.0)
}

/// Expected fraction of the other `N - 1` concepts that `k` draws from `rho` hit, the anchor's
/// concept drawn from `rho`: `sum_c rho_c sum_{j != c} (1 - (1 - rho_j)^k) / (N - 1)`.
pub fn expected_covered_fraction(rho: &[f64], k: u32) -> f64 {
    if rho.len() < 2 {
        return 1.0;
    }
    let hit: Vec<f64> = rho
        .iter()
        .map(|&r| -(k as f64 * (-r).ln_1p()).exp_m1())
        .collect();
    let all: f64 = hit.iter().sum();
    let own: f64 = rho.iter().zip(&hit).map(|(r, h)| r * h).sum();
    ((all - own) / (rho.len() - 1) as f64).clamp(0.0, 1.0)
}

/// Expected number of uniform draws until all `n` concepts have been seen: `n H_n`.
pub fn expected_draws_to_cover(n: u32) -> f64 {
    f64::from(n) * (1..=n).map(|i| 1.0 / f64::from(i)).sum::<f64>()
}

/// Expected number of draws from `rho` until every concept has been seen:
/// `integral_0^inf (1 - prod_c (1 - exp(-rho_c t))) dt` (Flajolet, Gardy and Thimonier 1992),
/// by Simpson's rule on a log grid of t (relative error below 1e-6).
pub fn expected_draws_to_cover_rho(rho: &[f64]) -> f64 {
    let rho: Vec<f64> = rho.iter().copied().filter(|&r| r > 0.0).collect();
    let (lo, hi) = rho
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    if rho.is_empty() {
        return 0.0;
    }
    // t = exp(u): the integrand is ~1 below t = 1e-4 / max rho and ~0 beyond 60 / min rho.
    let (a, b) = ((1e-4 / hi).ln(), (60.0 / lo).ln());
    let steps = 4000;
    let h = (b - a) / steps as f64;
    let g = |u: f64| {
        let t = u.exp();
        let covered: f64 = rho.iter().map(|&r| -(-r * t).exp_m1()).product();
        (1.0 - covered) * t
    };
    let inner: f64 = (1..steps)
        .map(|i| g(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    // The integrand is 1 on [0, exp(a)].
    a.exp() + h / 3.0 * (g(a) + inner + g(b))
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

    /// The occupancy recursion over how many other concepts are covered: exact, O(k n); its
    /// state after each draw is the coverage at every k up to `k_max`.
    fn coverage_by_recursion(n: u32, k_max: u32) -> Vec<f64> {
        let others = n as usize - 1;
        let nf = f64::from(n);
        let mut state = vec![0f64; others + 1];
        state[0] = 1.0;
        let mut out = vec![state[others]];
        for _ in 0..k_max {
            for j in (0..=others).rev() {
                let from_below = if j > 0 {
                    state[j - 1] * (others - (j - 1)) as f64 / nf
                } else {
                    0.0
                };
                let stay = if j == others {
                    1.0
                } else {
                    (j as f64 + 1.0) / nf
                };
                state[j] = state[j] * stay + from_below;
            }
            out.push(state[others]);
        }
        out
    }

    /// Ks to check for `n`: every k up to 3n, then a geometric ladder to 20n.
    fn grid_ks(n: u32) -> Vec<u32> {
        let mut ks: Vec<u32> = (0..=3 * n).step_by((n as usize / 50).max(1)).collect();
        let mut k = 3.0 * f64::from(n);
        while k < 20.0 * f64::from(n) {
            k *= 1.07;
            ks.push((k as u32).min(20 * n));
        }
        ks
    }

    #[test]
    fn coverage_equals_the_exact_recursion_on_the_grid() {
        for n in [2u32, 10, 100, 1000] {
            let exact = coverage_by_recursion(n, 20 * n);
            for k in grid_ks(n) {
                let p = coverage_probability(n, k);
                assert!((0.0..=1.0).contains(&p), "N={n} k={k}: {p}");
                let want = exact[k as usize];
                assert!(
                    (p - want).abs() < 1e-6,
                    "N={n} k={k}: {p} vs recursion {want}"
                );
            }
        }
    }

    #[test]
    fn coverage_matches_monte_carlo_on_the_grid() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Draws until the (j + 1)-th other concept is covered, from j covered: geometric with
        // success (n - 1 - j) / n, sampled by inversion.
        let geometric = |rng: &mut rand_chacha::ChaCha8Rng, p: f64| -> f64 {
            if p >= 1.0 {
                return 1.0;
            }
            let u: f64 = 1.0 - rng.random::<f64>();
            (u.ln() / (1.0 - p).ln()).ceil().max(1.0)
        };
        let mut worst_sigma = 0f64;
        for (n, trials) in [
            (2u32, 16_000_000usize),
            (10, 1_000_000),
            (100, 1_000_000),
            (1000, 200_000),
        ] {
            let nf = f64::from(n);
            let ks = grid_ks(n);
            let t = trials as f64;
            let mut estimates: Vec<(f64, f64)> = Vec::new();
            if n == 2 {
                // One stage: plain sampling of the cover time.
                let mut times: Vec<f64> = (0..trials).map(|_| geometric(&mut rng, 0.5)).collect();
                times.sort_unstable_by(f64::total_cmp);
                for &k in &ks {
                    let mc = times.partition_point(|&x| x <= f64::from(k)) as f64 / t;
                    estimates.push((mc, (mc * (1.0 - mc) / t).sqrt()));
                }
            } else {
                // Conditional Monte Carlo: sample the fast stages (at least half of them), and
                // take the probability that the slowest ones (successes 1/n .. 20/n at most)
                // end within the draws left exactly, from the distribution of a sum of
                // geometrics with distinct successes:
                // P(sum > r) = sum_i q_i^r prod_{j != i} p_j / (p_j - p_i)
                // (weights up to C(20, 10) = 2e5: about 1e-11 lost to cancellation).
                let slow: Vec<f64> = (1..=20.min((n - 1) / 2))
                    .map(|j| f64::from(j) / nf)
                    .collect();
                let weight: Vec<f64> = (0..slow.len())
                    .map(|i| {
                        (0..slow.len())
                            .filter(|&j| j != i)
                            .map(|j| slow[j] / (slow[j] - slow[i]))
                            .product()
                    })
                    .collect();
                let tail_ends_by = |r: f64| -> f64 {
                    if r < 1.0 {
                        return 0.0;
                    }
                    let over: f64 = slow
                        .iter()
                        .zip(&weight)
                        .map(|(p, w)| w * (r * (-p).ln_1p()).exp())
                        .sum();
                    (1.0 - over).clamp(0.0, 1.0)
                };
                // The draws left are whole numbers: tabulate once.
                let table: Vec<f64> = (0..=20 * n).map(|r| tail_ends_by(f64::from(r))).collect();
                let fast = n - 1 - slow.len() as u32;
                let (mut sum, mut sq) = (vec![0f64; ks.len()], vec![0f64; ks.len()]);
                for _ in 0..trials {
                    let before: f64 = (0..fast)
                        .map(|j| geometric(&mut rng, f64::from(n - 1 - j) / nf))
                        .sum();
                    for (i, &k) in ks.iter().enumerate() {
                        let left = f64::from(k) - before;
                        let p = if left < 1.0 {
                            0.0
                        } else {
                            table[left as usize]
                        };
                        sum[i] += p;
                        sq[i] += p * p;
                    }
                }
                for i in 0..ks.len() {
                    let mc = sum[i] / t;
                    estimates.push((mc, ((sq[i] / t - mc * mc).max(0.0) / t).sqrt()));
                }
            }
            for (&k, &(mc, sigma)) in ks.iter().zip(&estimates) {
                let p = coverage_probability(n, k);
                // 2 / trials: the resolution of a sample mean (sigma is 0 when trials agree).
                assert!(
                    (p - mc).abs() <= 4.0 * sigma + 2.0 / t,
                    "N={n} k={k}: {p} vs Monte Carlo {mc} +- {sigma} ({trials} trials)"
                );
                worst_sigma = worst_sigma.max(sigma);
                {
                    assert!(
                        (p - mc).abs() < 5e-4,
                        "N={n} k={k}: {p} vs Monte Carlo {mc}: not equal to 3 decimals"
                    );
                }
            }
        }
        // Every estimate is within 5e-4 with a standard error below 2e-4.
        assert!(worst_sigma < 2e-4, "Monte Carlo std error {worst_sigma}");
    }

    #[test]
    fn coverage_from_counts_agrees_with_uniform_enumeration_and_sampling() {
        // Equal counts: the uniform closed form.
        for (n, k) in [(2usize, 3u32), (10, 25), (10, 60), (100, 500), (100, 900)] {
            let p = coverage_probability_counts(&vec![7; n], k);
            let want = coverage_probability(n as u32, k);
            assert!((p - want).abs() < 1e-9, "N={n} k={k}: {p} vs {want}");
        }
        // Skewed counts: every missed set enumerated.
        let counts = [9u64, 5, 3, 2, 1, 1];
        let total: u64 = counts.iter().sum();
        for k in [5u32, 8, 20, 60, 200] {
            let mut want = 0.0;
            for (c, &cc) in counts.iter().enumerate() {
                let others: Vec<usize> = (0..counts.len()).filter(|&j| j != c).collect();
                let mut p = 0.0;
                for mask in 0u32..1 << others.len() {
                    let s: u64 = others
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| mask >> b & 1 == 1)
                        .map(|(_, &j)| counts[j])
                        .sum();
                    let sign = if mask.count_ones() % 2 == 1 {
                        -1.0
                    } else {
                        1.0
                    };
                    p += sign * (1.0 - s as f64 / total as f64).powi(k as i32);
                }
                want += cc as f64 / total as f64 * p;
            }
            let got = coverage_probability_counts(&counts, k);
            assert!((got - want).abs() < 1e-9, "k={k}: {got} vs {want}");
        }
        // And by sampling.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let k = 40;
        let trials = 200_000;
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
            let mut x = rng.random_range(0..total);
            counts
                .iter()
                .position(|&c| {
                    x < c || {
                        x -= c;
                        false
                    }
                })
                .unwrap()
        };
        let hits = (0..trials)
            .filter(|_| {
                let anchor = draw(&mut rng);
                let mut seen = [false; 6];
                for _ in 0..k {
                    seen[draw(&mut rng)] = true;
                }
                (0..6).all(|j| j == anchor || seen[j])
            })
            .count();
        let mc = hits as f64 / trials as f64;
        let p = coverage_probability_counts(&counts, k);
        let sigma = (p * (1.0 - p) / trials as f64).sqrt();
        assert!((p - mc).abs() < 4.0 * sigma, "{p} vs Monte Carlo {mc}");
        // Large and skewed stays finite and in range.
        let big: Vec<u64> = (1..=1000).map(|i| 5 + i % 37).collect();
        for k in [999, 5000, 20_000] {
            let p = coverage_probability_counts(&big, k);
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
        assert!(coverage_probability_counts(&big, 20_000) > 0.5);
    }

    #[test]
    fn expected_covered_fraction_matches_its_definition() {
        // Uniform: 1 - (1 - 1/N)^k.
        let rho = vec![0.1; 10];
        assert!((expected_covered_fraction(&rho, 7) - (1.0 - 0.9f64.powi(7))).abs() < 1e-12);
        // Two concepts: the other one is hit with 1 - (1 - rho_other)^k.
        let got = expected_covered_fraction(&[0.25, 0.75], 3);
        let want = 0.25 * (1.0 - 0.25f64.powi(3)) + 0.75 * (1.0 - 0.75f64.powi(3));
        assert!((got - want).abs() < 1e-12);
    }

    #[test]
    fn expected_cover_time() {
        assert!((expected_draws_to_cover(10) - 29.289_682_539_682_54).abs() < 1e-9);
        for n in [2u32, 10, 173] {
            let rho = vec![1.0 / f64::from(n); n as usize];
            let (got, want) = (
                expected_draws_to_cover_rho(&rho),
                expected_draws_to_cover(n),
            );
            assert!((got / want - 1.0).abs() < 1e-6, "N={n}: {got} vs {want}");
        }
        // Two concepts with frequencies p, 1 - p: 1/p + 1/(1-p) - 1.
        let got = expected_draws_to_cover_rho(&[0.1, 0.9]);
        let want = 10.0 + 1.0 / 0.9 - 1.0;
        assert!((got / want - 1.0).abs() < 1e-6, "{got} vs {want}");
        assert!(arora_coefficient(0.5, 0.0).is_infinite());
        assert!((arora_coefficient(0.5, 0.5) - 4.0).abs() < 1e-12);
        assert_eq!(
            coverage_probability(10, 8),
            0.0,
            "fewer draws than concepts"
        );
        assert_eq!(coverage_probability(1, 0), 1.0);
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
