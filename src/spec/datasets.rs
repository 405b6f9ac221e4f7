//! `[[datasets]]` tables: one kind per source.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Defined beside the reader that gives them meaning; named here as the file format spells them.
pub use crate::data::wordnet::{Granularity, WordnetPos, WordnetTexts};

/// One `[[datasets]]` table; `kind` selects the source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// Built-in latent-class text: token sequences from per-concept token distributions mixed
    /// with a shared background.
    SyntheticText(SyntheticTextSpec),
    /// Built-in latent-class images: small grey images from per-concept prototypes plus
    /// deformation and noise.
    SyntheticImage(SyntheticImageSpec),
    /// A CSV file with a header row, a text column and a label column.
    Csv(TableSpec),
    /// A JSON Lines file: one object per line with a text field and a label field.
    Jsonl(TableSpec),
    /// A Parquet file with a text column and a label column.
    Parquet(TableSpec),
    /// A folder of class subfolders of `.txt` files: the subfolder names the concept, each file
    /// is one example. Hidden files, files outside a class folder or nested deeper and other
    /// formats are skipped and counted.
    TextFolder(TextFolderSpec),
    /// The WordNet database: one example per gloss and per quoted example sentence.
    Wordnet(WordnetSpec),
    /// The UCI handwritten digits CSV (8 x 8 grey, 10 classes; the file shipped in
    /// scikit-learn's wheel, gzip or not).
    Digits(DigitsSpec),
    /// An IDX image file and its label file (MNIST, Fashion-MNIST; gzip or not).
    Idx(IdxSpec),
    /// CIFAR-10 or CIFAR-100 binary batches (32 x 32 RGB).
    Cifar(CifarSpec),
    /// Characters rendered from the font files in a folder: concept = character, instance =
    /// font face.
    Glyphs(GlyphsSpec),
    /// A folder of class subfolders of image files (torchvision's ImageFolder layout; PNG,
    /// JPEG, GIF, BMP, WebP, TIFF, PNM, TGA, QOI). Hidden files, files outside a class folder
    /// or nested deeper, zero-byte files and other formats are skipped and counted.
    ImageFolder(ImageFolderSpec),
    /// A Hugging Face image dataset file: Parquet with `image` as struct<bytes, path> and an
    /// integer `label`, class names from the schema metadata.
    HfImages(HfImagesSpec),
}

/// `kind = "hf-images"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HfImagesSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The Parquet file: a path or an object store URL.
    pub url: String,
    /// Image column. Default: `image` (also `img`).
    pub image_column: Option<String>,
    /// Label column. Default: `label`.
    pub label_column: Option<String>,
    /// Side of the stored square images: centre-cropped, then resized. Default: 32.
    pub size: Option<u32>,
    /// `grey` or `rgb`. Default: `rgb`.
    pub color: Option<crate::data::image_files::Color>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "image-folder"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageFolderSpec {
    /// The folder (`<url>/<class>/<file>.png`, `.jpg`, ...): a path or an object store URL.
    pub url: String,
    /// Dataset name (a results partition).
    pub name: String,
    /// Side of the stored square images: centre-cropped, then resized. Default: 32.
    pub size: Option<u32>,
    /// `grey` or `rgb`. Default: `rgb`.
    pub color: Option<crate::data::image_files::Color>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "glyphs"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GlyphsSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// Folder searched (recursively) for `.ttf` and `.otf` files: a path or an object store URL.
    /// Default: `/usr/share/fonts`.
    pub fonts: Option<String>,
    /// `digits` (10 concepts), `letters` (52) or `both` (62): the granularity switch.
    /// Default: `both`.
    pub charset: Option<crate::data::glyphs::Charset>,
    /// Image side in pixels. Default: 16.
    pub size: Option<u32>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "digits"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DigitsSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The CSV file (`digits.csv.gz`): a path or an object store URL.
    pub url: String,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "idx"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdxSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The image file (`train-images-idx3-ubyte[.gz]`): a path or an object store URL.
    pub images: String,
    /// The label file (`train-labels-idx1-ubyte[.gz]`).
    pub labels: String,
    /// Class names by label. Default: the label numbers.
    pub classes: Option<Vec<String>>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "cifar"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CifarSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The binary batch files (`data_batch_1.bin`, ... or `train.bin`): paths or URLs.
    pub files: Vec<String>,
    /// `ten` (CIFAR-10), or CIFAR-100's `coarse` (20 superclasses) or `fine` (100 classes)
    /// labels: the granularity switch. Default: `ten`.
    pub labels: Option<crate::data::images::CifarLabels>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here (0: all).
    pub n: Option<Vec<u32>>,
}

/// `kind = "csv" | "jsonl" | "parquet"`. The Hugging Face layout (`text`, `label`) needs no
/// column settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TableSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The file: a path or an object store URL.
    pub url: String,
    /// Column holding the text. Default: `text`.
    pub text_column: Option<String>,
    /// Column holding the concept label (string or integer). Default: `label`.
    pub label_column: Option<String>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here. Default: those,
    /// or all concepts that have `concepts.min-examples` examples.
    pub n: Option<Vec<u32>>,
    /// Tokenization.
    #[serde(default)]
    pub tokenize: TokenizeSpec,
}

/// `kind = "text-folder"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TextFolderSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// The folder: a path or an object store URL.
    pub url: String,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here. Default: those,
    /// or all concepts that have `concepts.min-examples` examples.
    pub n: Option<Vec<u32>>,
    /// Tokenization.
    #[serde(default)]
    pub tokenize: TokenizeSpec,
}

/// `kind = "wordnet"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WordnetSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// Folder of the WordNet database (`data.noun`, `data.verb`): a path or an object store URL.
    /// Default: `/usr/share/wordnet` (Debian's `wordnet-base`).
    pub url: Option<String>,
    /// Part of speech. Default: `noun`.
    pub pos: Option<WordnetPos>,
    /// What a concept is. Default: `lexname`.
    pub concept: Option<Granularity>,
    /// `concept = "depth"`: the hypernym depth of the ancestor that names the concept (the root,
    /// `entity`, is depth 0). Default: 3.
    pub depth: Option<u32>,
    /// `concept = "depth"`: ancestors with fewer descendant texts are dropped, with their texts.
    /// Default: 50.
    pub min_texts: Option<u32>,
    /// Which texts become examples. Default: `all`.
    pub texts: Option<WordnetTexts>,
    /// N values for this dataset, replacing `sweep.n` / `concepts.n` here. Default: those,
    /// or all concepts that have `concepts.min-examples` examples.
    pub n: Option<Vec<u32>>,
    /// Tokenization.
    #[serde(default)]
    pub tokenize: TokenizeSpec,
}

/// `[datasets.tokenize]`: lowercase Unicode words to ids.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenizeSpec {
    /// Words seen fewer times in the corpus are dropped. Default: 2.
    pub min_count: Option<u32>,
    /// Largest vocabulary kept (most frequent words). Default: 30000.
    pub max_vocab: Option<u32>,
    /// Hash words into this many buckets instead of counting a vocabulary (one pass over the
    /// data). Default: unset.
    pub hash_buckets: Option<u32>,
    /// Tokens kept per example (the first ones). Default: 64.
    pub max_tokens: Option<u32>,
}

/// `kind = "synthetic-text"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyntheticTextSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// Number of latent concepts generated. Default: 64.
    pub concepts: Option<u32>,
    /// Examples per concept. Default: 64.
    pub examples_per_concept: Option<u32>,
    /// Vocabulary size. Default: 512.
    pub vocab: Option<u32>,
    /// Tokens per example. Default: 24.
    pub length: Option<u32>,
    /// Probability that a token comes from the shared background instead of the concept, in
    /// [0, 1). Default: 0.6.
    pub difficulty: Option<f64>,
    /// Generator seed (independent of the sweep seed). Default: 0.
    pub seed: Option<u64>,
}

/// `kind = "synthetic-image"`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyntheticImageSpec {
    /// Dataset name (a results partition).
    pub name: String,
    /// Number of latent concepts generated. Default: 32.
    pub concepts: Option<u32>,
    /// Examples per concept. Default: 64.
    pub examples_per_concept: Option<u32>,
    /// Side of the square grey image in pixels. Default: 16.
    pub size: Option<u32>,
    /// Deformation and noise strength, in [0, 1]. Default: 0.5.
    pub difficulty: Option<f64>,
    /// Generator seed (independent of the sweep seed). Default: 0.
    pub seed: Option<u64>,
}
