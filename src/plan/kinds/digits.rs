//! `digits`: the UCI handwritten digits CSV (8 x 8 grey, 10 classes).

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
use crate::spec::DigitsSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "digits"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digits {
    /// The file's URL.
    pub url: String,
}

impl Digits {
    /// The spec's settings.
    pub(super) fn resolve(
        d: &DigitsSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        Self {
            url: location(&d.url, "url", key, bad),
        }
    }
}

impl Kind for Digits {
    fn concepts(&self) -> Option<u32> {
        Some(10)
    }

    fn image_side(&self) -> Option<u32> {
        Some(8)
    }

    fn modality(&self) -> Modality {
        Modality::Image
    }

    fn is_generated(&self) -> bool {
        false
    }

    fn location(&self) -> String {
        self.url.clone()
    }

    fn clear_locations(&mut self) {
        self.url.clear();
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::File(self.url.clone())]
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        inputs::require_bytes(store, rel, meta)
    }

    fn shape(&self) -> Shape {
        Shape::image(8, 1, self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            let (bytes, location) = fetch(&self.url, settings).await?;
            images::digits_csv(&bytes, &location).map(counted)
        }))
    }
}
