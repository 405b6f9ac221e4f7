//! `hf-images`: a Hugging Face image dataset stored as Parquet.

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, counted, location, side};
use crate::data::hf_images;
use crate::data::image_files::Color;
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::HfImagesSpec;
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// Resolved `kind = "hf-images"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HfImages {
    /// The file's URL.
    pub url: String,
    /// Image column; `None`: found when the file is read.
    pub image_column: Option<String>,
    /// Label column.
    pub label_column: String,
    /// Stored side.
    pub size: u32,
    /// Grey or RGB.
    pub color: Color,
}

impl HfImages {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        h: &HfImagesSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        let size = side(h.size.unwrap_or(32), 512, key, bad);
        Self {
            url: location(&h.url, "url", key, bad),
            image_column: h.image_column.clone(),
            label_column: h.label_column.clone().unwrap_or_else(|| "label".into()),
            size,
            color: h.color.unwrap_or(Color::Rgb),
        }
    }
}

impl Kind for HfImages {
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
        vec![Input::File(self.url.clone())]
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        None
    }

    async fn check_file(&self, store: &Store, rel: &str, _: &ObjectMeta) -> Result<()> {
        let location = store.display(rel);
        let label_column = &self.label_column;
        let schema = inputs::parquet_schema(store, rel, &location).await?;
        inputs::require_columns(&location, &inputs::names_of(&schema), &[label_column])?;
        let dt = schema
            .field_with_name(label_column)
            .expect("checked above")
            .data_type()
            .clone();
        if !(dt.is_integer() || dt.is_floating()) {
            return Err(Error::data(
                &location,
                format!(
                    "label column `{label_column}` has type {dt}; an image label is a class \
                     index: an integer, or a float holding a whole number"
                ),
            ));
        }
        Ok(())
    }

    fn shape(&self) -> Shape {
        Shape::image(self.size, self.color.channels(), self.concepts())
    }

    fn check(&self, _: &dyn Fn(&str) -> String, _: &mut dyn FnMut(&str, String)) {
        // Checked as they are resolved.
    }

    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        Read::Images(Box::pin(async move {
            hf_images::read(
                &self.url,
                self.image_column.as_deref(),
                &self.label_column,
                self.size,
                self.color,
                settings,
            )
            .await
            .map(counted)
        }))
    }
}
