//! `synthetic-text`: built-in latent-class token sequences.

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, check_generated};
use crate::Result;
use crate::data::synthetic;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::Input;
use crate::plan::memory::Shape;
use crate::spec::SyntheticTextSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "synthetic-text"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticText {
    /// Concepts generated.
    pub concepts: u32,
    /// Examples per concept.
    pub examples_per_concept: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Tokens per example.
    pub length: u32,
    /// Background mixing probability.
    pub difficulty: f64,
    /// Generator seed.
    pub seed: u64,
}

impl SyntheticText {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(t: &SyntheticTextSpec) -> Self {
        Self {
            concepts: t.concepts.unwrap_or(64),
            examples_per_concept: t.examples_per_concept.unwrap_or(64),
            vocab: t.vocab.unwrap_or(512),
            length: t.length.unwrap_or(24),
            difficulty: t.difficulty.unwrap_or(0.6),
            seed: t.seed.unwrap_or(0),
        }
    }
}

impl Kind for SyntheticText {
    fn concepts(&self) -> Option<u32> {
        Some(self.concepts)
    }

    fn image_side(&self) -> Option<u32> {
        None
    }

    fn modality(&self) -> Modality {
        Modality::Text
    }

    fn is_generated(&self) -> bool {
        true
    }

    fn location(&self) -> String {
        String::new()
    }

    fn clear_locations(&mut self) {}

    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, _: &Store, _: &str, _: &ObjectMeta) -> Result<()> {
        // No inputs: nothing to check.
        Ok(())
    }

    fn shape(&self) -> Shape {
        Shape {
            examples: Some(f64::from(self.concepts) * f64::from(self.examples_per_concept)),
            width: f64::from(self.vocab),
            tokens: f64::from(self.length),
            pixels: None,
            side: 0.0,
            channels: 1.0,
            concepts: Some(f64::from(self.concepts)),
        }
    }

    fn check(&self, key: &dyn Fn(&str) -> String, bad: &mut dyn FnMut(&str, String)) {
        check_generated(
            key,
            bad,
            self.concepts,
            self.examples_per_concept,
            self.difficulty,
        );
        if self.vocab < 2 {
            bad(
                &key("vocab"),
                format!("must be at least 2, got {}", self.vocab),
            );
        }
        if self.length < 1 {
            bad(&key("length"), "must be at least 1".into());
        }
    }

    fn read<'a>(&'a self, _: &'a StorageSettings) -> Read<'a> {
        Read::Generated(Box::new(|| {
            synthetic::text(
                self.concepts,
                self.examples_per_concept,
                self.vocab,
                self.length,
                self.difficulty,
                self.seed,
            )
        }))
    }
}
