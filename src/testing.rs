//! Helpers shared by unit tests.

use candle_core::Tensor;
use candle_core::backprop::GradStore;

/// Asserts that two tensors agree elementwise within `abs + rel * |b|`.
pub(crate) fn assert_close(a: &Tensor, b: &Tensor, abs: f32, rel: f32, what: &str) {
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (p, q) in flat(a).iter().zip(&flat(b)) {
        assert!((p - q).abs() < abs + rel * q.abs(), "{what}: {p} vs {q}");
    }
}

/// Asserts that `var`'s gradients in two stores agree within `abs + rel * |b|`.
pub(crate) fn assert_grads_close(
    a: &GradStore,
    b: &GradStore,
    var: &Tensor,
    abs: f32,
    rel: f32,
    what: &str,
) {
    assert_close(a.get(var).unwrap(), b.get(var).unwrap(), abs, rel, what);
}

/// Gradients of `sum(t * weights)`: every output gets its own weight, so a gradient that is
/// wrong anywhere shows.
pub(crate) fn weighted_grads(t: Tensor, weights: &Tensor) -> GradStore {
    (t * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}
