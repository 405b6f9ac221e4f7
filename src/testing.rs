//! Helpers shared by unit tests.

use candle_core::Tensor;
use candle_core::backprop::GradStore;

/// Asserts that `var`'s gradients in two stores agree within `abs + rel * |b|`.
pub(crate) fn assert_grads_close(
    a: &GradStore,
    b: &GradStore,
    var: &Tensor,
    abs: f32,
    rel: f32,
    what: &str,
) {
    let flat = |g: &GradStore| {
        g.get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    for (p, q) in flat(a).iter().zip(&flat(b)) {
        assert!(
            (p - q).abs() < abs + rel * q.abs(),
            "{what}: gradient {p} vs {q}"
        );
    }
}
