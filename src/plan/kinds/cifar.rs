//! `cifar`: CIFAR-10 or CIFAR-100 binary batches (32 x 32 RGB).

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, counted, location};
use crate::Result;
use crate::data::image_ingest::fetch;
use crate::data::images::{self, CifarLabels};
use crate::data::tokenize::TokenizeConfig;
use crate::data::{Examples, Features};
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::CifarSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "cifar"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cifar {
    /// File URLs.
    pub files: Vec<String>,
    /// Which labels.
    pub labels: CifarLabels,
}

impl Cifar {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        d: &CifarSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        if d.files.is_empty() {
            bad(&key("files"), "must list at least one file".into());
        }
        Self {
            files: d
                .files
                .iter()
                .map(|f| location(f, "files", key, bad))
                .collect(),
            labels: d.labels.unwrap_or(CifarLabels::Ten),
        }
    }
}

impl Kind for Cifar {
    fn concepts(&self) -> Option<u32> {
        Some(match self.labels {
            CifarLabels::Ten => 10,
            CifarLabels::Coarse => 20,
            CifarLabels::Fine => 100,
        })
    }

    fn image_side(&self) -> Option<u32> {
        Some(32)
    }

    fn modality(&self) -> Modality {
        Modality::Image
    }

    fn is_generated(&self) -> bool {
        false
    }

    fn location(&self) -> String {
        self.files.join(", ")
    }

    fn clear_locations(&mut self) {
        self.files.iter_mut().for_each(String::clear);
    }

    fn inputs(&self) -> Vec<Input> {
        self.files.iter().cloned().map(Input::File).collect()
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        inputs::require_bytes(store, rel, meta)
    }

    fn shape(&self) -> Shape {
        Shape::image(32, 3, self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            let classes = match self.labels {
                CifarLabels::Ten => images::CIFAR10.iter().map(|s| (*s).to_owned()).collect(),
                CifarLabels::Coarse => (0..20).map(|c| format!("coarse-{c}")).collect(),
                CifarLabels::Fine => (0..100).map(|c| format!("fine-{c}")).collect(),
            };
            let mut ex = Examples {
                labels: Vec::new(),
                concept_names: classes,
                features: Features::Pixels {
                    side: 32,
                    channels: 3,
                    data: Vec::new(),
                },
            };
            for f in &self.files {
                let (bytes, location) = fetch(f, settings).await?;
                images::cifar(&bytes, self.labels, &location, &mut ex)?;
            }
            Ok(counted(ex))
        }))
    }
}
