//! In-memory examples and the built-in generators.

pub mod synthetic;

use candle_core::{Device, Tensor};

use crate::Result;

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
    /// Square grey images, row-major u8, `side * side` bytes per example.
    Pixels {
        /// Image side in pixels.
        side: u32,
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

    /// Width of the dense input row an encoder sees.
    pub fn input_dim(&self) -> usize {
        match &self.features {
            Features::Tokens { vocab, .. } => *vocab as usize,
            Features::Pixels { side, .. } => (*side * *side) as usize,
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
