//! `glyphs`: characters rendered from the font files in a folder (concept = character,
//! instance = font face).

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, location, side};
use crate::Result;
use crate::data::glyphs::Charset;
use crate::data::image_ingest::glyph_folder;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::GlyphsSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "glyphs"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Glyphs {
    /// Folder of font files.
    pub url: String,
    /// Characters.
    pub charset: Charset,
    /// Image side.
    pub size: u32,
}

impl Glyphs {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        g: &GlyphsSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        let size = side(g.size.unwrap_or(16), 128, key, bad);
        Self {
            url: location(
                g.fonts.as_deref().unwrap_or("/usr/share/fonts"),
                "fonts",
                key,
                bad,
            ) + "/",
            charset: g.charset.unwrap_or(Charset::Both),
            size,
        }
    }
}

impl Kind for Glyphs {
    fn concepts(&self) -> Option<u32> {
        Some(self.charset.chars().len() as u32)
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
        Shape::image(self.size, 1, self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            glyph_folder(
                &Store::open_str(&self.url, settings)?,
                self.charset,
                self.size,
            )
            .await
        }))
    }
}
