//! Candle encoders. Weights are created from the sweep point's seed (candle's own CPU RNG
//! cannot be seeded), and live in a `VarMap` with stable names so checkpoints round-trip.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

pub mod conv;
mod fused;
mod ops;

pub(crate) use fused::PairScores;
pub mod text;

use conv::Conv;
use text::{Gru, bag_mean};

use crate::data::Batch;

use crate::Result;
use crate::spec::EncoderKind;

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
        }
    }
}

/// A trainable encoder f.
#[derive(Debug)]
pub enum Encoder {
    /// Mean of token embeddings, then a linear projection.
    EmbeddingBag {
        /// Embedding matrix, `input x hidden`.
        emb: Tensor,
        /// Projection to `dim`.
        proj: Dense,
        /// Dropout rate on the mean embedding while training.
        dropout: f32,
    },
    /// Token embeddings through a one-layer GRU; the last state, projected.
    Gru {
        /// Embedding matrix, `input x hidden`.
        emb: Tensor,
        /// The recurrent cell, `hidden` wide.
        gru: Gru,
        /// Projection to `dim`.
        proj: Dense,
        /// Dropout rate on the last state while training.
        dropout: f32,
    },
    /// Two-layer ReLU MLP.
    Mlp {
        /// First layer.
        fc1: Dense,
        /// Output layer.
        fc2: Dense,
    },
    /// 3 x 3 conv-relu-maxpool blocks, then a linear layer.
    Cnn {
        /// The convolutions, with each one's input height, width and output channels.
        convs: Vec<(Conv, usize, usize, usize)>,
        /// Linear layer to the output dimension.
        head: Dense,
        /// Run on candle's stock ops instead (NCHW `conv2d`, `max_pool2d`): the straightforward
        /// implementation, kept as the reference for tests and benchmarks.
        stock: bool,
    },
}

fn var(
    varmap: &VarMap,
    name: &str,
    values: Vec<f32>,
    shape: (usize, usize),
    device: &Device,
) -> Result<Tensor> {
    let v = Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?;
    let t = v.as_tensor().clone();
    varmap
        .data()
        .lock()
        .expect("the varmap lock is never poisoned: nothing panics while holding it")
        .insert(name.to_owned(), v);
    Ok(t)
}

/// A fully connected layer whose weight is stored pre-transposed, `(input, output)`, so the
/// forward product reads it contiguously.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `(input, output)`.
    pub weight: Tensor,
    /// `(output)`.
    pub bias: Tensor,
}

impl Module for Dense {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        // Data inputs (a first layer) get no gradient: see `fused::DataMatmul`.
        xs.contiguous()?
            .apply_op2(&self.weight, fused::DataMatmul)?
            .broadcast_add(&self.bias)
    }
}

/// PyTorch-style default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
fn linear(
    varmap: &VarMap,
    name: &str,
    input: usize,
    output: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Dense> {
    let bound = 1.0 / (input as f32).sqrt();
    let w = (0..input * output)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let b = (0..output)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let w = var(
        varmap,
        &format!("{name}.weight"),
        w,
        (input, output),
        device,
    )?;
    let b = var(varmap, &format!("{name}.bias"), b, (1, output), device)?;
    Ok(Dense {
        weight: w,
        bias: b.reshape(output)?,
    })
}

impl Encoder {
    /// Creates an encoder with weights drawn from `seed`, registering them in `varmap`.
    pub fn new(cfg: &EncoderConfig, seed: u64, varmap: &VarMap, device: &Device) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(match cfg.kind {
            EncoderKind::EmbeddingBag | EncoderKind::Gru => {
                let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
                let emb = (0..cfg.input * cfg.hidden)
                    .map(|_| normal.sample(&mut rng))
                    .collect();
                let emb = var(varmap, "emb.weight", emb, (cfg.input, cfg.hidden), device)?;
                if cfg.kind == EncoderKind::Gru {
                    let h = cfg.hidden;
                    let gru = Gru {
                        input: linear(varmap, "gru.input", h, 3 * h, &mut rng, device)?,
                        state: linear(varmap, "gru.state", h, 3 * h, &mut rng, device)?,
                    };
                    let proj = linear(varmap, "proj", h, cfg.dim, &mut rng, device)?;
                    Encoder::Gru {
                        emb,
                        gru,
                        proj,
                        dropout: cfg.dropout,
                    }
                } else {
                    let proj = linear(varmap, "proj", cfg.hidden, cfg.dim, &mut rng, device)?;
                    Encoder::EmbeddingBag {
                        emb,
                        proj,
                        dropout: cfg.dropout,
                    }
                }
            }
            EncoderKind::Mlp => Encoder::Mlp {
                fc1: linear(varmap, "fc1", cfg.input, cfg.hidden, &mut rng, device)?,
                fc2: linear(varmap, "fc2", cfg.hidden, cfg.dim, &mut rng, device)?,
            },
            EncoderKind::Cnn => {
                let side = ((cfg.input / cfg.in_channels.max(1)) as f64).sqrt().round() as usize;
                let (mut h, mut cin) = (side, cfg.in_channels);
                let mut convs = Vec::new();
                for (i, &cout) in cfg.channels.iter().enumerate() {
                    let fan_in = 9 * cin;
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    let w = (0..fan_in * cout)
                        .map(|_| rng.random_range(-bound..bound))
                        .collect();
                    let b = (0..cout).map(|_| rng.random_range(-bound..bound)).collect();
                    let w = var(
                        varmap,
                        &format!("conv{i}.weight"),
                        w,
                        (fan_in, cout),
                        device,
                    )?;
                    let b = var(varmap, &format!("conv{i}.bias"), b, (1, cout), device)?;
                    convs.push((Conv::new(w, b.reshape(cout)?, cin, h, h, 3)?, h, h, cout));
                    h /= 2;
                    cin = cout;
                }
                let head = linear(varmap, "head", h * h * cin, cfg.dim, &mut rng, device)?;
                Encoder::Cnn {
                    convs,
                    head,
                    stock: false,
                }
            }
        })
    }
}

/// Inverted dropout with masks drawn from a seeded stream (candle's own RNG cannot be seeded).
fn dropout(x: &Tensor, rate: f32, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
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
    x * Tensor::from_vec(mask, x.shape(), x.device())?
}

impl Encoder {
    /// Encodes a batch. With `train` (a dropout stream) dropout is applied; without, the
    /// encoder is deterministic (evaluation).
    pub fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let pooled = |features: Tensor, rate: f32, proj: &Dense| {
            let features = match train {
                Some(rng) if rate > 0.0 => dropout(&features, rate, rng)?,
                _ => features,
            };
            proj.forward(&features)
        };
        match (self, x) {
            (Encoder::EmbeddingBag { emb, proj, dropout }, Batch::Tokens(t)) => {
                pooled(bag_mean(emb, t)?, *dropout, proj)
            }
            (Encoder::EmbeddingBag { emb, proj, dropout }, Batch::Dense(x)) => pooled(
                x.contiguous()?.apply_op2(emb, fused::DataMatmul)?,
                *dropout,
                proj,
            ),
            (
                Encoder::Gru {
                    emb,
                    gru,
                    proj,
                    dropout,
                },
                Batch::Tokens(t),
            ) => pooled(gru.forward(emb, t)?, *dropout, proj),
            (Encoder::Mlp { .. } | Encoder::Cnn { .. }, Batch::Dense(x)) => self.forward(x),
            _ => candle_core::bail!("this encoder does not take these inputs"),
        }
    }
}

impl Module for Encoder {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Encoder::EmbeddingBag { emb, proj, .. } => {
                proj.forward(&xs.contiguous()?.apply_op2(emb, fused::DataMatmul)?)
            }
            Encoder::Gru { .. } => candle_core::bail!("the GRU encoder takes token ids"),
            Encoder::Mlp { fc1, fc2 } => fc2.forward(&fc1.forward(xs)?.relu()?),
            Encoder::Cnn {
                convs,
                head,
                stock: false,
            } => {
                let mut x = xs.clone();
                for (conv, ..) in convs {
                    x = conv.forward_pooled(&x)?;
                }
                head.forward(&x)
            }
            Encoder::Cnn {
                convs,
                head,
                stock: true,
            } => {
                let b = xs.dim(0)?;
                let (h, w, _) = (convs[0].1, convs[0].2, convs[0].3);
                let cin = xs.dim(1)? / (h * w);
                let mut x = xs
                    .reshape((b, h, w, cin))?
                    .permute((0, 3, 1, 2))?
                    .contiguous()?;
                for (conv, ..) in convs {
                    x = conv.forward_nchw(&x)?.relu()?.max_pool2d(2)?;
                }
                // Back to HWC rows so that the head sees the same layout as the fast path.
                let flat = x.dims()[1..].iter().product::<usize>();
                head.forward(&x.permute((0, 2, 3, 1))?.reshape((b, flat))?)
            }
        }
    }
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
    use super::*;

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
        let cfg = EncoderConfig {
            kind: EncoderKind::Cnn,
            input: 8 * 8 * 2,
            hidden: 0,
            dim: 5,
            channels: vec![3, 4],
            in_channels: 2,
            dropout: 0.0,
        };
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let mut enc = Encoder::new(&cfg, 4, &vm, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 8 * 8 * 2), &dev).unwrap();
        let fast = enc.forward(&x).unwrap();
        if let Encoder::Cnn { stock, .. } = &mut enc {
            *stock = true;
        }
        let stock = enc.forward(&x).unwrap();
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
        let Encoder::EmbeddingBag { emb, .. } = &enc else {
            panic!("embedding-bag")
        };
        // Tokens [1, 3, 3]: bag row has 1/3 at 1 and 2/3 at 3.
        let bag = Tensor::new(&[[0f32, 1.0 / 3.0, 0.0, 2.0 / 3.0, 0.0, 0.0]], &dev).unwrap();
        let via_bag = bag.matmul(emb).unwrap().to_vec2::<f32>().unwrap();
        let e = emb.to_vec2::<f32>().unwrap();
        for j in 0..4 {
            let mean = (e[1][j] + e[3][j] + e[3][j]) / 3.0;
            assert!((via_bag[0][j] - mean).abs() < 1e-6);
        }
    }
}
