//! `text-folder`: class subfolders of `.txt` files, one example per file.

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, TextRecords, location, tokenize};
use crate::Result;
use crate::data::sources::{self, TextInput};
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::TextFolderSpec;
use crate::storage::{StorageSettings, Store};

/// Resolved `kind = "text-folder"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextFolder {
    /// The folder's URL.
    pub url: String,
    /// Tokenization.
    pub tokenize: TokenizeConfig,
}

impl TextFolder {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        t: &TextFolderSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        Self {
            url: location(&t.url, "url", key, bad),
            tokenize: tokenize(&t.tokenize, key, bad),
        }
    }
}

impl Kind for TextFolder {
    fn concepts(&self) -> Option<u32> {
        None
    }

    fn image_side(&self) -> Option<u32> {
        None
    }

    fn modality(&self) -> Modality {
        Modality::Text
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
        Some(&self.tokenize)
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        inputs::require_bytes(store, rel, meta)
    }

    fn shape(&self) -> Shape {
        Shape::text(&self.tokenize, self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Text {
            tokenize: self.tokenize,
            records: Box::pin(async move {
                let store = Store::open_str(&self.url, settings)?;
                Ok(TextRecords {
                    batches: sources::stream(&TextInput::Folder { store }),
                    wordnet: None,
                })
            }),
        }
    }
}
