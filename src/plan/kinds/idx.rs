//! `idx`: an IDX image file and its label file (MNIST, Fashion-MNIST).

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, counted, location};
use crate::Result;
use crate::data::image_ingest::fetch;
use crate::data::images;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::IdxSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "idx"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Idx {
    /// Image file URL.
    pub images: String,
    /// Label file URL.
    pub labels: String,
    /// Class names by label, if given.
    pub classes: Option<Vec<String>>,
}

impl Idx {
    /// The spec's settings.
    pub(super) fn resolve(
        d: &IdxSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        Self {
            images: location(&d.images, "images", key, bad),
            labels: location(&d.labels, "labels", key, bad),
            classes: d.classes.clone(),
        }
    }
}

impl Kind for Idx {
    fn concepts(&self) -> Option<u32> {
        None
    }

    fn image_side(&self) -> Option<u32> {
        // The image file carries its side in its header.
        None
    }

    fn modality(&self) -> Modality {
        Modality::Image
    }

    fn is_generated(&self) -> bool {
        false
    }

    fn location(&self) -> String {
        format!("{} and {}", self.images, self.labels)
    }

    fn clear_locations(&mut self) {
        self.images.clear();
        self.labels.clear();
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::File(self.images.clone()),
            Input::File(self.labels.clone()),
        ]
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        inputs::require_bytes(store, rel, meta)
    }

    fn shape(&self) -> Shape {
        // The header is not read yet: 32 is the estimate's guess.
        Shape::image(32, 1, self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            let ((ib, il), (lb, ll)) = (
                fetch(&self.images, settings).await?,
                fetch(&self.labels, settings).await?,
            );
            let names: Option<Vec<&str>> = self
                .classes
                .as_ref()
                .map(|c| c.iter().map(String::as_str).collect());
            images::idx(&ib, &lb, (&il, &ll), names.as_deref()).map(counted)
        }))
    }
}
