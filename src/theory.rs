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
