//! Where a dataset's examples come from, fully resolved.

use serde::Serialize;

use super::{Modality, files};
use crate::data::sources::TableFormat;
use crate::data::tokenize::TokenizeConfig;

/// Fully resolved generator settings of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// Built-in latent-class text.
    SyntheticText {
        /// Concepts generated.
        concepts: u32,
        /// Examples per concept.
        examples_per_concept: u32,
        /// Vocabulary size.
        vocab: u32,
        /// Tokens per example.
        length: u32,
        /// Background mixing probability.
        difficulty: f64,
        /// Generator seed.
        seed: u64,
    },
    /// Built-in latent-class images.
    SyntheticImage {
        /// Concepts generated.
        concepts: u32,
        /// Examples per concept.
        examples_per_concept: u32,
        /// Image side in pixels.
        size: u32,
        /// Deformation and noise strength.
        difficulty: f64,
        /// Generator seed.
        seed: u64,
    },
    /// A CSV, JSONL or Parquet file.
    Table {
        /// Format.
        format: TableFormat,
        /// The file's URL.
        url: String,
        /// Text column.
        text_column: String,
        /// Label column.
        label_column: String,
        /// Tokenization.
        tokenize: TokenizeConfig,
    },
    /// A folder of class subfolders of `.txt` files.
    TextFolder {
        /// The folder's URL.
        url: String,
        /// Tokenization.
        tokenize: TokenizeConfig,
    },
    /// The UCI digits CSV.
    Digits {
        /// The file's URL.
        url: String,
    },
    /// An IDX image and label file pair.
    Idx {
        /// Image file URL.
        images: String,
        /// Label file URL.
        labels: String,
        /// Class names by label, if given.
        classes: Option<Vec<String>>,
    },
    /// CIFAR binary batches.
    Cifar {
        /// File URLs.
        files: Vec<String>,
        /// Which labels.
        labels: crate::data::images::CifarLabels,
    },
    /// A folder of class subfolders of encoded images.
    ImageFolder {
        /// The folder's URL.
        url: String,
        /// Stored side.
        size: u32,
        /// Grey or RGB.
        color: crate::data::image_files::Color,
    },
    /// A Hugging Face image Parquet file.
    HfImages {
        /// The file's URL.
        url: String,
        /// Image column.
        image_column: Option<String>,
        /// Label column.
        label_column: String,
        /// Stored side.
        size: u32,
        /// Grey or RGB.
        color: crate::data::image_files::Color,
    },
    /// Glyphs rendered from fonts.
    Glyphs {
        /// Folder of font files.
        url: String,
        /// Characters.
        charset: crate::data::glyphs::Charset,
        /// Image side.
        size: u32,
    },
    /// WordNet glosses and examples.
    Wordnet {
        /// Database, part of speech, granularity.
        wordnet: files::WordnetSource,
        /// Tokenization.
        tokenize: TokenizeConfig,
    },
}

impl DataSource {
    /// Number of concepts the source provides, when known before reading it.
    pub fn concepts(&self) -> Option<u32> {
        use crate::data::images::CifarLabels;
        match self {
            DataSource::SyntheticText { concepts, .. }
            | DataSource::SyntheticImage { concepts, .. } => Some(*concepts),
            DataSource::Digits { .. } => Some(10),
            DataSource::Glyphs { charset, .. } => Some(charset.chars().len() as u32),
            DataSource::Cifar { labels, .. } => Some(match labels {
                CifarLabels::Ten => 10,
                CifarLabels::Coarse => 20,
                CifarLabels::Fine => 100,
            }),
            DataSource::Table { .. }
            | DataSource::TextFolder { .. }
            | DataSource::Wordnet { .. }
            | DataSource::Idx { .. }
            | DataSource::ImageFolder { .. }
            | DataSource::HfImages { .. } => None,
        }
    }

    /// Image side in pixels, when known before reading the data.
    pub fn image_side(&self) -> Option<u32> {
        match self {
            DataSource::SyntheticImage { size, .. } => Some(*size),
            DataSource::Digits { .. } => Some(8),
            DataSource::Glyphs { size, .. }
            | DataSource::ImageFolder { size, .. }
            | DataSource::HfImages { size, .. } => Some(*size),
            DataSource::Cifar { .. } => Some(32),
            // IDX images carry their side in the file's header.
            DataSource::Idx { .. } => None,
            DataSource::SyntheticText { .. }
            | DataSource::Table { .. }
            | DataSource::TextFolder { .. }
            | DataSource::Wordnet { .. } => None,
        }
    }

    /// Whether the examples are generated (built-in data) rather than read.
    pub fn is_generated(&self) -> bool {
        match self {
            DataSource::SyntheticText { .. } | DataSource::SyntheticImage { .. } => true,
            DataSource::Table { .. }
            | DataSource::TextFolder { .. }
            | DataSource::Wordnet { .. }
            | DataSource::Digits { .. }
            | DataSource::Idx { .. }
            | DataSource::Cifar { .. }
            | DataSource::Glyphs { .. }
            | DataSource::ImageFolder { .. }
            | DataSource::HfImages { .. } => false,
        }
    }

    /// The input the user named (a file, folder or list of files), for messages; empty for
    /// generated data.
    pub fn location(&self) -> String {
        match self {
            DataSource::SyntheticText { .. } | DataSource::SyntheticImage { .. } => String::new(),
            DataSource::Table { url, .. }
            | DataSource::TextFolder { url, .. }
            | DataSource::Digits { url }
            | DataSource::ImageFolder { url, .. }
            | DataSource::HfImages { url, .. }
            | DataSource::Glyphs { url, .. } => url.clone(),
            DataSource::Idx { images, labels, .. } => format!("{images} and {labels}"),
            DataSource::Cifar { files, .. } => files.join(", "),
            DataSource::Wordnet { wordnet, .. } => wordnet.url.clone(),
        }
    }

    /// The same settings with every input location left empty: what the data is read as,
    /// whatever its address (see [`super::inputs`]).
    pub fn without_locations(&self) -> Self {
        let mut s = self.clone();
        match &mut s {
            DataSource::SyntheticText { .. } | DataSource::SyntheticImage { .. } => {}
            DataSource::Table { url, .. }
            | DataSource::TextFolder { url, .. }
            | DataSource::Digits { url }
            | DataSource::ImageFolder { url, .. }
            | DataSource::HfImages { url, .. }
            | DataSource::Glyphs { url, .. } => url.clear(),
            DataSource::Idx { images, labels, .. } => {
                images.clear();
                labels.clear();
            }
            DataSource::Cifar { files, .. } => files.iter_mut().for_each(String::clear),
            DataSource::Wordnet { wordnet, .. } => wordnet.url.clear(),
        }
        s
    }

    /// Text or image. Every kind is named: a new kind must say which it is.
    pub fn modality(&self) -> Modality {
        match self {
            DataSource::SyntheticImage { .. }
            | DataSource::Digits { .. }
            | DataSource::Idx { .. }
            | DataSource::Cifar { .. }
            | DataSource::Glyphs { .. }
            | DataSource::ImageFolder { .. }
            | DataSource::HfImages { .. } => Modality::Image,
            DataSource::SyntheticText { .. }
            | DataSource::Table { .. }
            | DataSource::TextFolder { .. }
            | DataSource::Wordnet { .. } => Modality::Text,
        }
    }
}
