//! Candle encoders, one file each, built from a `VarBuilder` as candle's own models are.
//!
//! An encoder is a type implementing [`Encode`] with a `fn new(cfg: &EncoderConfig, vb:
//! VarBuilder) -> candle_core::Result<Self>` constructor that asks `vb` for its parameters by
//! name (the names checkpoints use). [`Encoder::build`] maps the pipeline's encoder name to
//! its constructor. Training uses [`seeded`], a `VarBuilder` that draws the weights from the
//! sweep point's seed (candle's own CPU RNG cannot be seeded) and registers them in a
//! `VarMap`.
//!
//! Adding an encoder: a file here with its type and its `Encode` impl, a variant of
//! [`EncoderKind`], and its arm in [`Encoder::build`].

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

mod bag;
mod bf16;
mod cnn;
pub mod conv;
mod dense;
mod fused;
mod gates;
mod gru;
mod init;
mod mlp;
mod ops;
mod rows;
pub mod text;

pub use bag::EmbeddingBag;
pub use cnn::Cnn;
pub use dense::Dense;
pub(crate) use fused::PairScores;
pub use gru::Gru;
pub use init::seeded;
pub use mlp::Mlp;
pub(crate) use ops::with_f32;

use crate::Result;
use crate::data::Batch;
use crate::spec::{EncoderKind, Precision};

/// Shape of an encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Architecture.
    pub kind: EncoderKind,
    /// Width of an input row (vocabulary size, or pixels).
    pub input: usize,
    /// Embedding width (text) or hidden layer (MLP).
    pub hidden: usize,
    /// Output dimension.
    pub dim: usize,
    /// CNN only: output channels of each conv-relu-pool block.
    pub channels: Vec<usize>,
    /// CNN only: input channels (inputs are `side x side x in_channels`, channels last).
    pub in_channels: usize,
    /// Text only: dropout rate on the pooled features while training.
    pub dropout: f32,
    /// Number format of the fully connected layers' products.
    pub precision: Precision,
}

impl EncoderConfig {
    /// An embedding-bag or MLP encoder (no convolution blocks).
    pub fn dense(kind: EncoderKind, input: usize, hidden: usize, dim: usize) -> Self {
        Self {
            kind,
            input,
            hidden,
            dim,
            channels: Vec::new(),
            in_channels: 1,
            dropout: 0.0,
            precision: Precision::F32,
        }
    }
}

/// One encoder architecture: maps a batch of examples to their representations.
pub trait Encode: std::fmt::Debug + Send + Sync {
    /// Encodes the `B` examples of `x` into `(B, dim)` representations. With `train` (the
    /// point's dropout stream) dropout is applied; without, the encoder is deterministic
    /// (evaluation).
    ///
    /// # Errors
    ///
    /// When `x` is not a kind of input this encoder takes (token ids to an image encoder), a
    /// token id is outside the vocabulary, or a shape does not fit the encoder.
    fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor>;
}

/// A trainable encoder f: whichever [`Encode`] type the point's settings name.
#[derive(Debug)]
pub struct Encoder(Box<dyn Encode>);

impl Encoder {
    /// Creates the encoder `cfg` names with weights drawn from `seed`, registering them in
    /// `varmap` (see [`seeded`]).
    ///
    /// # Errors
    ///
    /// When `cfg` has a zero or inconsistent size, or a variable already in `varmap` has a
    /// different shape.
    pub fn new(cfg: &EncoderConfig, seed: u64, varmap: &VarMap, device: &Device) -> Result<Self> {
        Self::build(cfg, seeded(varmap, seed, device))
    }

    /// Creates the encoder `cfg.kind` names, with its parameters from `vb`: the registry of
    /// encoders.
    ///
    /// # Errors
    ///
    /// Those of the encoder's constructor: `vb` cannot supply a parameter.
    pub fn build(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        // No wildcard arm: a new kind does not compile until it is registered here.
        let encoder: Box<dyn Encode> = match cfg.kind {
            EncoderKind::EmbeddingBag => Box::new(EmbeddingBag::new(cfg, vb)?),
            EncoderKind::Gru => Box::new(Gru::new(cfg, vb)?),
            EncoderKind::Mlp => Box::new(Mlp::new(cfg, vb)?),
            EncoderKind::Cnn => Box::new(Cnn::new(cfg, vb)?),
        };
        Ok(Self(encoder))
    }

    /// Encodes a batch: see [`Encode::encode`].
    ///
    /// # Errors
    ///
    /// Those of [`Encode::encode`].
    pub fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        self.0.encode(x, train)
    }
}

impl<E: Encode + 'static> From<E> for Encoder {
    fn from(encoder: E) -> Self {
        Self(Box::new(encoder))
    }
}

impl Module for Encoder {
    /// Encodes dense `(B, input)` rows for evaluation (no dropout): `(B, dim)`.
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.encode(&Batch::Dense(xs.clone()), None)
    }
}

/// Inverted dropout at `rate` with masks drawn from the training stream (candle's own RNG
/// cannot be seeded); `x` unchanged without a stream or at rate 0.
fn dropout(x: Tensor, rate: f32, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
    let Some(rng) = train.filter(|_| rate > 0.0) else {
        return Ok(x);
    };
    let keep = 1.0 - rate;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.random::<f32>() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    x * mask
}

/// Serialises every variable of `varmap` as safetensors bytes (sorted by name).
pub fn checkpoint_bytes(varmap: &VarMap) -> Result<Vec<u8>> {
    let data = varmap
        .data()
        .lock()
        .expect("the varmap lock is never poisoned: nothing panics while holding it");
    let mut named: Vec<(String, Tensor)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().to_dtype(DType::F32)))
        .map(|(k, t)| t.map(|t| (k, t)))
        .collect::<candle_core::Result<_>>()?;
    named.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(named, None)
        .map_err(|e| crate::Error::Internal(format!("safetensors: {e}")))
}

/// Loads weights saved by [`checkpoint_bytes`] into `varmap`, whose variables must all be in
/// the checkpoint with the same shapes; `what` names the checkpoint in errors.
pub fn load_checkpoint(varmap: &VarMap, bytes: &[u8], what: &str) -> Result<()> {
    let bad = |m: String| crate::Error::data(what, m);
    let saved = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| bad(format!("not a safetensors checkpoint: {e}")))?;
    let data = varmap
        .data()
        .lock()
        .expect("the varmap lock is never poisoned: nothing panics while holding it");
    for (name, var) in data.iter() {
        let t = saved.get(name).ok_or_else(|| {
            bad(format!(
                "has no tensor `{name}`: was it saved by a point with the same encoder?"
            ))
        })?;
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, the encoder needs {:?}: the reference must use the same encoder settings",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    use super::text::TokenBatch;
    use super::*;

    /// Every kind, and so every registered encoder: the match makes a new kind fail to compile
    /// here until it is listed.
    fn all_kinds() -> Vec<EncoderKind> {
        let all = vec![
            EncoderKind::EmbeddingBag,
            EncoderKind::Gru,
            EncoderKind::Mlp,
            EncoderKind::Cnn,
        ];
        for k in &all {
            match k {
                EncoderKind::EmbeddingBag
                | EncoderKind::Gru
                | EncoderKind::Mlp
                | EncoderKind::Cnn => {}
            }
        }
        all
    }

    /// A small config of `kind`, an input batch of 3 examples it takes, and its documented
    /// parameters with their shapes.
    fn example(kind: EncoderKind) -> (EncoderConfig, Batch, Vec<(&'static str, Vec<usize>)>) {
        let dev = Device::Cpu;
        let tokens = Batch::Tokens(Arc::new(TokenBatch {
            offsets: vec![0, 3, 3, 5],
            tokens: vec![1, 4, 4, 0, 5],
        }));
        let dense = |width: usize| Batch::Dense(Tensor::rand(0f32, 1.0, (3, width), &dev).unwrap());
        match kind {
            EncoderKind::EmbeddingBag => (
                EncoderConfig::dense(kind, 6, 4, 5),
                tokens,
                vec![
                    ("emb.weight", vec![6, 4]),
                    ("proj.weight", vec![4, 5]),
                    ("proj.bias", vec![1, 5]),
                ],
            ),
            EncoderKind::Gru => (
                EncoderConfig::dense(kind, 6, 4, 5),
                tokens,
                vec![
                    ("emb.weight", vec![6, 4]),
                    ("gru.input.weight", vec![4, 12]),
                    ("gru.input.bias", vec![1, 12]),
                    ("gru.state.weight", vec![4, 12]),
                    ("gru.state.bias", vec![1, 12]),
                    ("proj.weight", vec![4, 5]),
                    ("proj.bias", vec![1, 5]),
                ],
            ),
            EncoderKind::Mlp => (
                EncoderConfig::dense(kind, 7, 4, 5),
                dense(7),
                vec![
                    ("fc1.weight", vec![7, 4]),
                    ("fc1.bias", vec![1, 4]),
                    ("fc2.weight", vec![4, 5]),
                    ("fc2.bias", vec![1, 5]),
                ],
            ),
            EncoderKind::Cnn => (
                EncoderConfig {
                    kind,
                    input: 8 * 8 * 2,
                    hidden: 0,
                    dim: 5,
                    channels: vec![3, 4],
                    in_channels: 2,
                    dropout: 0.0,
                    precision: Precision::F32,
                },
                dense(8 * 8 * 2),
                vec![
                    ("conv0.weight", vec![18, 3]),
                    ("conv0.bias", vec![1, 3]),
                    ("conv1.weight", vec![27, 4]),
                    ("conv1.bias", vec![1, 4]),
                    ("head.weight", vec![2 * 2 * 4, 5]),
                    ("head.bias", vec![1, 5]),
                ],
            ),
        }
    }

    fn shapes(vm: &VarMap) -> Vec<(String, Vec<usize>)> {
        let mut v: Vec<_> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_registered_encoder_builds_from_a_var_builder_with_the_documented_shapes() {
        let dev = Device::Cpu;
        for kind in all_kinds() {
            let (cfg, x, params) = example(kind);
            let mut want: Vec<_> = params
                .iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect();
            want.sort();
            // candle's own VarMap backend and the seeded one build the same variables.
            let stock = VarMap::new();
            let vb = VarBuilder::from_varmap(&stock, DType::F32, &dev);
            let enc = Encoder::build(&cfg, vb).unwrap();
            assert_eq!(
                enc.encode(&x, None).unwrap().dims(),
                &[3, cfg.dim],
                "{kind:?}"
            );
            assert_eq!(shapes(&stock), want, "{kind:?}");
            let vm = VarMap::new();
            let enc = Encoder::new(&cfg, 1, &vm, &dev).unwrap();
            assert_eq!(shapes(&vm), want, "{kind:?}");
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let y = enc.encode(&x, Some(&mut rng)).unwrap();
            assert_eq!(y.dims(), &[3, cfg.dim], "{kind:?} while training");
            let wrong = match x {
                Batch::Tokens(_) => Batch::Dense(Tensor::zeros((3, 6), DType::F32, &dev).unwrap()),
                Batch::Dense(_) => Batch::Tokens(Arc::new(TokenBatch::default())),
            };
            // Every encoder takes one kind of input except the bag, which also takes dense
            // bag-of-words rows.
            assert_eq!(
                enc.encode(&wrong, None).is_ok(),
                kind == EncoderKind::EmbeddingBag,
                "{kind:?}"
            );
        }
    }

    /// The weights drawn as they were before encoders asked a `VarBuilder` for them: one
    /// stream from the seed, token embeddings N(0, 1) first, then each linear or conv layer's
    /// weight and bias in build order, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    fn drawn_by_hand(cfg: &EncoderConfig, seed: u64) -> Vec<(String, Vec<f32>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        let mut uniform = |name: &str, fan_in: usize, weights: usize, rng: &mut ChaCha8Rng| {
            let bound = 1.0 / (fan_in as f32).sqrt();
            for (part, n) in [("weight", weights), ("bias", weights / fan_in)] {
                let v = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                out.push((format!("{name}.{part}"), v));
            }
        };
        let (i, h, d) = (cfg.input, cfg.hidden, cfg.dim);
        let mut emb = Vec::new();
        match cfg.kind {
            EncoderKind::EmbeddingBag | EncoderKind::Gru => {
                let normal = Normal::new(0.0f32, 1.0).unwrap();
                emb = (0..i * h).map(|_| normal.sample(&mut rng)).collect();
                if cfg.kind == EncoderKind::Gru {
                    uniform("gru.input", h, h * 3 * h, &mut rng);
                    uniform("gru.state", h, h * 3 * h, &mut rng);
                }
                uniform("proj", h, h * d, &mut rng);
            }
            EncoderKind::Mlp => {
                uniform("fc1", i, i * h, &mut rng);
                uniform("fc2", h, h * d, &mut rng);
            }
            EncoderKind::Cnn => {
                let mut side = ((i / cfg.in_channels) as f64).sqrt().round() as usize;
                let mut cin = cfg.in_channels;
                for (l, &cout) in cfg.channels.iter().enumerate() {
                    uniform(&format!("conv{l}"), 9 * cin, 9 * cin * cout, &mut rng);
                    (side, cin) = (side / 2, cout);
                }
                uniform("head", side * side * cin, side * side * cin * d, &mut rng);
            }
        }
        if !emb.is_empty() {
            out.push(("emb.weight".into(), emb));
        }
        out
    }

    #[test]
    fn seeded_weights_are_the_draws_of_one_stream_in_build_order() {
        for kind in all_kinds() {
            let (cfg, ..) = example(kind);
            let vm = VarMap::new();
            Encoder::new(&cfg, 11, &vm, &Device::Cpu).unwrap();
            let data = vm.data().lock().unwrap();
            let want = drawn_by_hand(&cfg, 11);
            assert_eq!(want.len(), data.len(), "{kind:?}");
            for (name, values) in want {
                let got = data[&name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&values), "{kind:?} {name}");
            }
        }
    }

    #[test]
    fn same_seed_same_weights_and_shapes() {
        let cfg = EncoderConfig::dense(EncoderKind::Mlp, 9, 5, 3);
        let dev = Device::Cpu;
        let (a, b) = (VarMap::new(), VarMap::new());
        let ea = Encoder::new(&cfg, 7, &a, &dev).unwrap();
        let eb = Encoder::new(&cfg, 7, &b, &dev).unwrap();
        let x = Tensor::ones((2, 9), DType::F32, &dev).unwrap();
        let ya = ea.forward(&x).unwrap();
        assert_eq!(ya.dims(), &[2, 3]);
        assert_eq!(
            ya.to_vec2::<f32>().unwrap(),
            eb.forward(&x).unwrap().to_vec2::<f32>().unwrap()
        );
        assert_eq!(a.all_vars().len(), 4);
        let bytes = checkpoint_bytes(&a).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("fc1.weight").unwrap().shape(), &[9, 5]);
    }

    #[test]
    fn fast_cnn_equals_the_stock_candle_cnn_with_gradients() {
        let (cfg, ..) = example(EncoderKind::Cnn);
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let fast_cnn = Cnn::new(&cfg, seeded(&vm, 4, &dev)).unwrap();
        // The second build finds every variable in `vm`: the same weights.
        let stock_cnn = Cnn::new(&cfg, seeded(&vm, 4, &dev)).unwrap().stock();
        let x = Batch::Dense(Tensor::randn(0f32, 1.0, (3, 8 * 8 * 2), &dev).unwrap());
        let fast = fast_cnn.encode(&x, None).unwrap();
        let stock = stock_cnn.encode(&x, None).unwrap();
        let diff = (&fast - &stock).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        let loss = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gs) = (loss(&fast), loss(&stock));
        // candle 0.11's max_pool2d backward scales the gradient of a unique maximum by 1/4 (it
        // multiplies by the mean of the max mask instead of dividing by the number of maxima), so
        // a stock gradient that crosses p pooling layers is 4^-p of the true one, which the
        // fast path computes (checked against plain reductions in `conv`).
        let data = vm.data().lock().unwrap();
        for (name, factor) in [
            ("head.weight", 1.0),
            ("head.bias", 1.0),
            ("conv1.weight", 4.0),
            ("conv1.bias", 4.0),
            ("conv0.weight", 16.0),
            ("conv0.bias", 16.0),
        ] {
            let v = data[name].as_tensor();
            let scaled = gs.get(v).unwrap().affine(factor, 0.0).unwrap();
            crate::testing::assert_close(gf.get(v).unwrap(), &scaled, 1e-4, 1e-4, name);
        }
    }

    #[test]
    fn embedding_bag_is_mean_of_token_embeddings() {
        let cfg = EncoderConfig::dense(EncoderKind::EmbeddingBag, 6, 4, 4);
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let enc = Encoder::new(&cfg, 1, &vm, &dev).unwrap();
        let emb = vm.data().lock().unwrap()["emb.weight"].as_tensor().clone();
        // Tokens [1, 3, 3]: bag row has 1/3 at 1 and 2/3 at 3; tokens and bag rows encode alike.
        let bag = Tensor::new(&[[0f32, 1.0 / 3.0, 0.0, 2.0 / 3.0, 0.0, 0.0]], &dev).unwrap();
        let via_bag = bag.matmul(&emb).unwrap().to_vec2::<f32>().unwrap();
        let e = emb.to_vec2::<f32>().unwrap();
        for j in 0..4 {
            let mean = (e[1][j] + e[3][j] + e[3][j]) / 3.0;
            assert!((via_bag[0][j] - mean).abs() < 1e-6);
        }
        let tokens = Batch::Tokens(Arc::new(TokenBatch {
            offsets: vec![0, 3],
            tokens: vec![1, 3, 3],
        }));
        let (a, b) = (
            enc.encode(&tokens, None).unwrap(),
            enc.encode(&Batch::Dense(bag), None).unwrap(),
        );
        crate::testing::assert_close(&a, &b, 1e-6, 1e-6, "tokens vs bag rows");
    }
}
