//! `synthetic-image`: built-in latent-class grey images.

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, check_generated};
use crate::Result;
use crate::data::synthetic;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::Input;
use crate::plan::memory::Shape;
use crate::spec::SyntheticImageSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "synthetic-image"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticImage {
    /// Concepts generated.
    pub concepts: u32,
    /// Examples per concept.
    pub examples_per_concept: u32,
    /// Image side in pixels.
    pub size: u32,
    /// Deformation and noise strength.
    pub difficulty: f64,
    /// Generator seed.
    pub seed: u64,
}

impl SyntheticImage {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(t: &SyntheticImageSpec) -> Self {
        Self {
            concepts: t.concepts.unwrap_or(32),
            examples_per_concept: t.examples_per_concept.unwrap_or(64),
            size: t.size.unwrap_or(16),
            difficulty: t.difficulty.unwrap_or(0.5),
            seed: t.seed.unwrap_or(0),
        }
    }
}

impl Kind for SyntheticImage {
    fn concepts(&self) -> Option<u32> {
        Some(self.concepts)
    }

    fn image_side(&self) -> Option<u32> {
        Some(self.size)
    }

    fn modality(&self) -> Modality {
        Modality::Image
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
        let size = f64::from(self.size);
        Shape {
            examples: Some(f64::from(self.concepts) * f64::from(self.examples_per_concept)),
            width: size * size,
            tokens: 0.0,
            pixels: Some(size * size),
            side: size,
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
        if !(4..=128).contains(&self.size) {
            bad(
                &key("size"),
                format!("must be in 4..=128, got {}", self.size),
            );
        }
    }

    fn read<'a>(&'a self, _: &'a StorageSettings) -> Read<'a> {
        Read::Generated(Box::new(|| {
            synthetic::image(
                self.concepts,
                self.examples_per_concept,
                self.size,
                self.difficulty,
                self.seed,
            )
        }))
    }
}
