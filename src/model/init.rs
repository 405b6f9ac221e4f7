//! Seeded initialisation behind a `VarBuilder`: encoders ask for their weights by name, shape
//! and [`Init`] hint, as candle's own models do, and this backend draws the values from one
//! seeded stream (candle's CPU RNG cannot be seeded) and registers them in a `VarMap`.
//!
//! Values are drawn in the order the weights are requested, so an encoder's constructor fixes
//! its initialisation by the order in which it builds its layers.

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap, var_builder::SimpleBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A `VarBuilder` whose missing variables are drawn from a stream seeded by `seed` and added
/// to `varmap`; a variable already in `varmap` is returned as it is (as `VarBuilder::
/// from_varmap` does).
///
/// Supported hints: [`Init::Uniform`] (f32 draws in `[lo, up)`), [`Init::Randn`] and
/// [`Init::Const`]. Any other hint, or a dtype other than f32, is an error when the variable
/// is requested.
///
/// # Example
///
/// ```
/// use candle_nn::{Init, VarMap};
/// let (a, b) = (VarMap::new(), VarMap::new());
/// let draw = |vm: &VarMap| {
///     negsweep::model::seeded(vm, 7, &candle_core::Device::Cpu)
///         .get_with_hints((2, 3), "w", Init::Randn { mean: 0.0, stdev: 1.0 })
///         .unwrap()
///         .to_vec2::<f32>()
///         .unwrap()
/// };
/// assert_eq!(draw(&a), draw(&b));
/// assert!(a.data().lock().unwrap().contains_key("w"));
/// ```
pub fn seeded(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = Seeded {
        varmap: varmap.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}

/// PyTorch's default for a layer with `fan_in` inputs: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn fan_in_uniform(fan_in: usize) -> Init {
    // The bound is an f32 so that the draws are those of an f32 range; it survives the f64
    // round trip through `Init` exactly.
    let bound = 1.0 / (fan_in as f32).sqrt();
    Init::Uniform {
        lo: f64::from(-bound),
        up: f64::from(bound),
    }
}

struct Seeded {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SimpleBackend for Seeded {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .expect("the varmap lock is never poisoned: nothing panics while holding it");
        if let Some(v) = vars.get(name) {
            if v.shape() != &shape {
                candle_core::bail!("shape mismatch on {name}: {shape:?} <> {:?}", v.shape())
            }
            return Ok(v.as_tensor().clone());
        }
        if dtype != DType::F32 {
            candle_core::bail!("seeded init of {name}: f32 only, not {dtype:?}")
        }
        let n = shape.elem_count();
        let mut rng = self.rng.lock().expect("never poisoned: draws do not panic");
        let values: Vec<f32> = match init {
            Init::Uniform { lo, up } => {
                let (lo, up) = (lo as f32, up as f32);
                (0..n).map(|_| rng.random_range(lo..up)).collect()
            }
            Init::Randn { mean, stdev } => {
                let normal = Normal::new(mean as f32, stdev as f32)
                    .map_err(|e| candle_core::Error::Msg(format!("init of {name}: {e}")))?;
                (0..n).map(|_| normal.sample(&mut *rng)).collect()
            }
            Init::Const(c) => vec![c as f32; n],
            Init::Kaiming { .. } => {
                candle_core::bail!("seeded init of {name}: Kaiming hints are not supported")
            }
        };
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, dev)?)?;
        let t = var.as_tensor().clone();
        vars.insert(name.to_owned(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("seeded init of {name}: the shape is needed, use `get`")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .expect("the varmap lock is never poisoned: nothing panics while holding it")
            .contains_key(name)
    }
}
