//! In-memory examples and the built-in generators.

pub mod augment;
pub mod folders;
pub mod glyphs;
pub mod hf_images;
pub mod image_files;
pub mod image_ingest;
pub mod images;
mod interner;
mod json_fields;
pub mod labels;
pub mod sources;
pub mod synthetic;
pub mod tokenize;
pub mod wordnet;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// An independent random stream for (`seed`, `domain`, `index`): draws for one pool row do not
/// depend on how many rows or negatives are drawn elsewhere.
pub fn stream(seed: u64, domain: &str, index: u64) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    h.update(&seed.to_le_bytes());
    h.update(&index.to_le_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// Token ids of a batch of examples, CSR: example `i` is `tokens[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenBatch {
    /// `len + 1` offsets into `tokens`.
    pub offsets: Vec<usize>,
    /// All token ids.
    pub tokens: Vec<u32>,
}

impl TokenBatch {
    /// The batch of `rows`, in order.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut b = TokenBatch {
            offsets: vec![0],
            tokens: Vec::new(),
        };
        for r in rows {
            b.tokens.extend_from_slice(r);
            b.offsets.push(b.tokens.len());
        }
        b
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens of example `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.tokens[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// What each example holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// Token ids, one sequence per example.
    Tokens {
        /// Vocabulary size (ids are below it).
        vocab: u32,
        /// One sequence per example.
        seqs: Vec<Vec<u32>>,
    },
    /// Square images, row-major u8, channels last: `side * side * channels` bytes per example.
    Pixels {
        /// Image side in pixels.
        side: u32,
        /// 1 (grey) or 3 (RGB).
        channels: u32,
        /// All images, concatenated.
        data: Vec<u8>,
    },
}

/// A dataset in memory. Example ids are row positions: `labels[id]` is the concept of example
/// `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    /// Concept index of each example.
    pub labels: Vec<u32>,
    /// Name of each concept index.
    pub concept_names: Vec<String>,
    /// Features of each example.
    pub features: Features,
}

impl Examples {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image channels (1 for text).
    pub fn channels(&self) -> u32 {
        match &self.features {
            Features::Pixels { channels, .. } => *channels,
            Features::Tokens { .. } => 1,
        }
    }

    /// Width of the dense input row an encoder sees.
    pub fn input_dim(&self) -> usize {
        match &self.features {
            Features::Tokens { vocab, .. } => *vocab as usize,
            Features::Pixels { side, channels, .. } => (*side * *side * *channels) as usize,
        }
    }

    /// Dense encoder inputs, one row per example: for text the normalised bag of words (so that
    /// `row @ E` is exactly the mean of the token embeddings), for images pixels scaled to [0, 1].
    pub fn input_matrix(&self, device: &Device) -> Result<Tensor> {
        let n = self.len();
        let d = self.input_dim();
        let mut dense = vec![0f32; n * d];
        match &self.features {
            Features::Tokens { seqs, .. } => {
                for (row, seq) in dense.chunks_mut(d).zip(seqs) {
                    let w = 1.0 / seq.len().max(1) as f32;
                    for &t in seq {
                        row[t as usize] += w;
                    }
                }
            }
            Features::Pixels { data, .. } => {
                for (x, &p) in dense.iter_mut().zip(data) {
                    *x = f32::from(p) / 255.0;
                }
            }
        }
        Ok(Tensor::from_vec(dense, (n, d), device)?)
    }
}

/// Encoder inputs of every example of a dataset, built once and shared by its points.
#[derive(Debug)]
pub enum Inputs {
    /// One dense row per example (images).
    Dense(Tensor),
    /// Token ids (text).
    Tokens {
        /// Vocabulary size.
        vocab: usize,
        /// Every example's tokens.
        all: TokenBatch,
        /// Where batches go.
        device: Device,
    },
}

/// The inputs of some examples, in the order asked for.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Dense rows.
    Dense(Tensor),
    /// Token ids (shared with the bag op's backward pass, not copied).
    Tokens(std::sync::Arc<TokenBatch>),
}

impl Inputs {
    /// Inputs of every example of `ex`.
    pub fn new(ex: &Examples, device: &Device) -> Result<Self> {
        Ok(match &ex.features {
            Features::Tokens { vocab, seqs } => {
                let mut all = TokenBatch {
                    offsets: Vec::with_capacity(seqs.len() + 1),
                    tokens: Vec::with_capacity(seqs.iter().map(Vec::len).sum()),
                };
                all.offsets.push(0);
                for s in seqs {
                    all.tokens.extend_from_slice(s);
                    all.offsets.push(all.tokens.len());
                }
                Inputs::Tokens {
                    vocab: *vocab as usize,
                    all,
                    device: device.clone(),
                }
            }
            Features::Pixels { .. } => Inputs::Dense(ex.input_matrix(device)?),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Dense(x) => x.dims()[0],
            Inputs::Tokens { all, .. } => all.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of a row: pixels, or the vocabulary size.
    pub fn width(&self) -> usize {
        match self {
            Inputs::Dense(x) => x.dims()[1],
            Inputs::Tokens { vocab, .. } => *vocab,
        }
    }

    /// The device batches are built on.
    pub fn device(&self) -> &Device {
        match self {
            Inputs::Dense(x) => x.device(),
            Inputs::Tokens { device, .. } => device,
        }
    }

    /// One augmented view of each image `ids` (dense inputs only): `side x side x channels`
    /// rows.
    pub fn select_views(
        &self,
        ids: &[u32],
        aug: &augment::Augment,
        (side, channels): (usize, usize),
        rng: &mut impl rand::Rng,
    ) -> Result<Batch> {
        let Inputs::Dense(x) = self else {
            return Err(crate::Error::Internal("augmentation needs images".into()));
        };
        let idx = Tensor::from_slice(ids, ids.len(), x.device())?;
        let src = x.index_select(&idx, 0)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; src.len()];
        let per = side * side * channels;
        for (s, d) in src.chunks(per).zip(out.chunks_mut(per)) {
            aug.view(s, d, side, channels, rng);
        }
        Ok(Batch::Dense(Tensor::from_vec(
            out,
            (ids.len(), per),
            x.device(),
        )?))
    }

    /// The inputs of examples `ids`.
    pub fn select(&self, ids: &[u32]) -> Result<Batch> {
        Ok(match self {
            Inputs::Dense(x) => {
                let idx = Tensor::from_slice(ids, ids.len(), x.device())?;
                Batch::Dense(x.index_select(&idx, 0)?)
            }
            Inputs::Tokens { all, .. } => {
                let mut b = TokenBatch {
                    offsets: Vec::with_capacity(ids.len() + 1),
                    tokens: Vec::new(),
                };
                b.offsets.push(0);
                for &i in ids {
                    b.tokens.extend_from_slice(all.row(i as usize));
                    b.offsets.push(b.tokens.len());
                }
                Batch::Tokens(std::sync::Arc::new(b))
            }
        })
    }
}

/// Threads of [`ingest_pool`], set by [`set_ingest_threads`].
static INGEST_THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Sizes the ingest threads ([`ingest_pool`]) to `cores`, the process's share of the machine
/// ([`crate::cli::ThreadPlan::cores`]), before any ingest starts; later calls have no effect.
/// The command sets it before it gives each concurrent point its share of the cores, so an
/// ingest uses the whole allotment (`SLURM_CPUS_PER_TASK`, `RAYON_NUM_THREADS`) however the
/// points are split. Unset, the pool takes [`crate::cli::cores`] when it starts.
pub fn set_ingest_threads(cores: usize) {
    let _ = INGEST_THREADS.set(cores.max(1));
}

/// The threads that parse and tokenize text ingests and decode images: the process's cores
/// (see [`set_ingest_threads`]), whatever share a point would get. One pool for every stage,
/// so that parsing one block and tokenizing the one before share the cores instead of
/// competing for them.
///
/// # Errors
/// An internal error when the threads cannot start.
pub(crate) fn ingest_pool() -> crate::Result<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let threads = INGEST_THREADS
        .get()
        .copied()
        .unwrap_or_else(crate::cli::cores);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ingest-{i}"))
        .build()
        .map_err(|e| crate::Error::Internal(format!("cannot start the ingest threads: {e}")))?;
    tracing::debug!(threads, "ingest threads started");
    Ok(POOL.get_or_init(|| pool))
}
