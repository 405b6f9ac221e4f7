//! `image-folder`: class subfolders of image files (torchvision's ImageFolder layout).

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, location, side};
use crate::Result;
use crate::data::image_files::Color;
use crate::data::image_ingest::image_folder;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::ImageFolderSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "image-folder"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageFolder {
    /// The folder's URL.
    pub url: String,
    /// Stored side.
    pub size: u32,
    /// Grey or RGB.
    pub color: Color,
}

impl ImageFolder {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        f: &ImageFolderSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        let size = side(f.size.unwrap_or(32), 512, key, bad);
        Self {
            url: location(&f.url, "url", key, bad) + "/",
            size,
            color: f.color.unwrap_or(Color::Rgb),
        }
    }
}

impl Kind for ImageFolder {
    fn concepts(&self) -> Option<u32> {
        None
    }

    fn image_side(&self) -> Option<u32> {
        Some(self.size)
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
        vec![Input::Folder(self.url.clone())]
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        inputs::require_bytes(store, rel, meta)
    }

    fn shape(&self) -> Shape {
        Shape::image(self.size, self.color.channels(), self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            image_folder(
                &Store::open_str(&self.url, settings)?,
                self.size,
                self.color,
            )
            .await
        }))
    }
}
