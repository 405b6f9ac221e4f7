//! Dataset kinds: one file per kind, each holding its resolved settings and its [`Kind`] impl
//! (resolution from the spec, setting checks, what it reads and yields, its pre-run checks,
//! its memory shape and how it is read). [`DataSource`] names every kind once; its methods
//! dispatch through one exhaustive `match`, so a new kind is its file, its variant here (with
//! its arm in `each_kind!` and in [`resolve`]) and its spec entry in `spec/datasets.rs`.

mod cifar;
mod digits;
mod glyphs;
mod hf_images;
mod idx;
mod image_folder;
mod synthetic_image;
mod synthetic_text;
mod table;
mod text_folder;
mod wordnet;

pub use cifar::Cifar;
pub use digits::Digits;
pub use glyphs::Glyphs;
pub use hf_images::HfImages;
pub use idx::Idx;
pub use image_folder::ImageFolder;
pub use synthetic_image::SyntheticImage;
pub use synthetic_text::SyntheticText;
pub use table::Table;
pub use text_folder::TextFolder;
pub use wordnet::{Wordnet, WordnetSource};

use futures::future::BoxFuture;
use object_store::ObjectMeta;
use serde::Serialize;
use tokio::sync::mpsc;

use super::Modality;
use super::inputs::Input;
use super::memory::Shape;
use crate::Result;
use crate::data::Examples;
use crate::data::image_ingest::ImageIngest;
use crate::data::sources::{Batch, TableFormat};
use crate::data::tokenize::{TokenizeConfig, VocabMode};
use crate::data::wordnet::WordnetStats;
use crate::spec::{DatasetSpec, TokenizeSpec};
use crate::storage::{StorageSettings, Store, StoreUrl};

/// What one dataset kind is and does, from its resolved settings.
pub(crate) trait Kind {
    /// Number of concepts, when known before reading the data.
    fn concepts(&self) -> Option<u32>;
    /// Image side in pixels, when known before reading the data.
    fn image_side(&self) -> Option<u32>;
    /// Text or image.
    fn modality(&self) -> Modality;
    /// Whether the examples are generated (built-in data) rather than read.
    fn is_generated(&self) -> bool;
    /// The input the user named, for messages; empty for generated data.
    fn location(&self) -> String;
    /// Empties every input location (what the data is read as, whatever its address).
    fn clear_locations(&mut self);
    /// What the kind reads; empty for generated data.
    fn inputs(&self) -> Vec<Input>;
    /// The tokenizer of a text kind read from files.
    fn tokenize(&self) -> Option<&TokenizeConfig>;
    /// Checks one input file from its header or footer (`meta` is its `head`).
    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()>;
    /// The size of the data, from the settings.
    fn shape(&self) -> Shape;
    /// Checks the resolved settings; problems go to `bad` under `key(field)`.
    fn check(&self, key: &dyn Fn(&str) -> String, bad: &mut dyn FnMut(&str, String));
    /// How the examples are obtained (nothing is read until the result is consumed);
    /// `settings` open the inputs' stores.
    fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a>;
}

/// How a dataset's examples are obtained: what ingest does with a kind.
pub(crate) enum Read<'a> {
    /// Built in memory from the settings alone.
    Generated(Box<dyn FnOnce() -> Examples + Send + 'a>),
    /// Images decoded from the inputs into memory, with what was kept and skipped.
    Images(BoxFuture<'a, Result<(Examples, ImageIngest)>>),
    /// Text records, streamed once through the tokenizer.
    Text {
        /// Tokenization.
        tokenize: TokenizeConfig,
        /// Opens the one pass over the records.
        records: BoxFuture<'a, Result<TextRecords>>,
    },
}

/// One pass over a text dataset's records, opened.
pub(crate) struct TextRecords {
    /// Chunks of records, then the skip counts.
    pub(crate) batches: mpsc::Receiver<Result<Batch>>,
    /// WordNet only: what the granularity kept and dropped.
    pub(crate) wordnet: Option<WordnetStats>,
}

/// Fully resolved settings of a dataset, by kind. Serialised into content keys: each variant's
/// JSON is `{"kind": ..., <its fields>}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// Built-in latent-class text.
    SyntheticText(SyntheticText),
    /// Built-in latent-class images.
    SyntheticImage(SyntheticImage),
    /// A CSV, JSONL or Parquet file.
    Table(Table),
    /// A folder of class subfolders of `.txt` files.
    TextFolder(TextFolder),
    /// The UCI digits CSV.
    Digits(Digits),
    /// An IDX image and label file pair.
    Idx(Idx),
    /// CIFAR binary batches.
    Cifar(Cifar),
    /// A folder of class subfolders of encoded images.
    ImageFolder(ImageFolder),
    /// A Hugging Face image Parquet file.
    HfImages(HfImages),
    /// Glyphs rendered from fonts.
    Glyphs(Glyphs),
    /// WordNet glosses and examples.
    Wordnet(Wordnet),
}

/// `$body` with `$k` bound to the kind inside `$source`: the one match over every kind.
macro_rules! each_kind {
    ($source:expr, $k:ident => $body:expr) => {
        match $source {
            DataSource::SyntheticText($k) => $body,
            DataSource::SyntheticImage($k) => $body,
            DataSource::Table($k) => $body,
            DataSource::TextFolder($k) => $body,
            DataSource::Digits($k) => $body,
            DataSource::Idx($k) => $body,
            DataSource::Cifar($k) => $body,
            DataSource::ImageFolder($k) => $body,
            DataSource::HfImages($k) => $body,
            DataSource::Glyphs($k) => $body,
            DataSource::Wordnet($k) => $body,
        }
    };
}

/// Resolves one `[[datasets]]` table: its name, its source and its N values. Problems go to
/// `bad` under `key(field)`.
pub(crate) fn resolve(
    ds: &DatasetSpec,
    key: &dyn Fn(&str) -> String,
    bad: &mut dyn FnMut(&str, String),
) -> (String, DataSource, Option<Vec<u32>>) {
    let table = |format, t: &crate::spec::TableSpec, bad: &mut dyn FnMut(&str, String)| {
        let source = DataSource::Table(Table::resolve(format, t, key, bad));
        (t.name.clone(), source, t.n.clone())
    };
    match ds {
        DatasetSpec::SyntheticText(s) => (
            s.name.clone(),
            DataSource::SyntheticText(SyntheticText::resolve(s)),
            None,
        ),
        DatasetSpec::SyntheticImage(s) => (
            s.name.clone(),
            DataSource::SyntheticImage(SyntheticImage::resolve(s)),
            None,
        ),
        DatasetSpec::Csv(t) => table(TableFormat::Csv, t, bad),
        DatasetSpec::Jsonl(t) => table(TableFormat::Jsonl, t, bad),
        DatasetSpec::Parquet(t) => table(TableFormat::Parquet, t, bad),
        DatasetSpec::TextFolder(s) => (
            s.name.clone(),
            DataSource::TextFolder(TextFolder::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::Wordnet(s) => (
            s.name.clone(),
            DataSource::Wordnet(Wordnet::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::Digits(s) => (
            s.name.clone(),
            DataSource::Digits(Digits::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::Idx(s) => (
            s.name.clone(),
            DataSource::Idx(Idx::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::Cifar(s) => (
            s.name.clone(),
            DataSource::Cifar(Cifar::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::Glyphs(s) => (
            s.name.clone(),
            DataSource::Glyphs(Glyphs::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::ImageFolder(s) => (
            s.name.clone(),
            DataSource::ImageFolder(ImageFolder::resolve(s, key, bad)),
            s.n.clone(),
        ),
        DatasetSpec::HfImages(s) => (
            s.name.clone(),
            DataSource::HfImages(HfImages::resolve(s, key, bad)),
            s.n.clone(),
        ),
    }
}

impl DataSource {
    /// Number of concepts the source provides, when known before reading it.
    pub fn concepts(&self) -> Option<u32> {
        each_kind!(self, k => k.concepts())
    }

    /// Image side in pixels, when known before reading the data.
    pub fn image_side(&self) -> Option<u32> {
        each_kind!(self, k => k.image_side())
    }

    /// Whether the examples are generated (built-in data) rather than read.
    pub fn is_generated(&self) -> bool {
        each_kind!(self, k => k.is_generated())
    }

    /// The input the user named (a file, folder or list of files), for messages; empty for
    /// generated data.
    pub fn location(&self) -> String {
        each_kind!(self, k => k.location())
    }

    /// The same settings with every input location left empty: what the data is read as,
    /// whatever its address (see [`super::inputs`]).
    pub fn without_locations(&self) -> Self {
        let mut s = self.clone();
        each_kind!(&mut s, k => k.clear_locations());
        s
    }

    /// Text or image.
    pub fn modality(&self) -> Modality {
        each_kind!(self, k => k.modality())
    }

    /// What the source reads; empty for generated data.
    pub fn inputs(&self) -> Vec<Input> {
        each_kind!(self, k => k.inputs())
    }

    /// The tokenizer of a text source read from files.
    pub(crate) fn tokenize(&self) -> Option<&TokenizeConfig> {
        each_kind!(self, k => k.tokenize())
    }

    /// Checks one input file of the source from its header or footer.
    pub(crate) async fn check_file(
        &self,
        store: &Store,
        rel: &str,
        meta: &ObjectMeta,
    ) -> Result<()> {
        each_kind!(self, k => k.check_file(store, rel, meta).await)
    }

    /// The size of the data, from the settings.
    pub(crate) fn shape(&self) -> Shape {
        each_kind!(self, k => k.shape())
    }

    /// Checks the resolved settings.
    pub(crate) fn check(&self, key: &dyn Fn(&str) -> String, bad: &mut dyn FnMut(&str, String)) {
        each_kind!(self, k => k.check(key, bad))
    }

    /// How the examples are obtained.
    pub(crate) fn read<'a>(&'a self, settings: &'a StorageSettings) -> Read<'a> {
        each_kind!(self, k => k.read(settings))
    }
}

/// Examples read whole, with nothing skipped.
fn counted(ex: Examples) -> (Examples, ImageIngest) {
    let report = ImageIngest::of(&ex);
    (ex, report)
}

/// Resolves `[datasets.tokenize]`.
fn tokenize(
    t: &TokenizeSpec,
    key: &dyn Fn(&str) -> String,
    bad: &mut dyn FnMut(&str, String),
) -> TokenizeConfig {
    let max_tokens = t.max_tokens.unwrap_or(64);
    if max_tokens == 0 {
        bad(&key("tokenize.max-tokens"), "must be at least 1".into());
    }
    let mode = match t.hash_buckets {
        Some(buckets) => {
            if buckets < 2 {
                bad(
                    &key("tokenize.hash-buckets"),
                    format!("must be at least 2, got {buckets}"),
                );
            }
            if t.min_count.is_some() || t.max_vocab.is_some() {
                bad(
                    &key("tokenize.hash-buckets"),
                    "hashing has no counted vocabulary: drop `min-count` and `max-vocab`".into(),
                );
            }
            VocabMode::Hashed { buckets }
        }
        None => {
            let max_vocab = t.max_vocab.unwrap_or(30_000);
            if max_vocab < 2 {
                bad(
                    &key("tokenize.max-vocab"),
                    format!("must be at least 2, got {max_vocab}"),
                );
            }
            VocabMode::Counted {
                min_count: t.min_count.unwrap_or(2).max(1),
                max_vocab,
            }
        }
    };
    TokenizeConfig { mode, max_tokens }
}

/// A location, normalised to a URL (a relative path becomes absolute `file://`).
fn location(
    text: &str,
    field: &str,
    key: &dyn Fn(&str) -> String,
    bad: &mut dyn FnMut(&str, String),
) -> String {
    match StoreUrl::parse(text) {
        // Parsing treats every location as a folder; a file keeps its own name.
        Ok(url) => url.to_string().trim_end_matches('/').to_owned(),
        Err(m) => {
            bad(&key(field), m);
            String::new()
        }
    }
}

/// Checks an image side (`size`) against 4..=`max`.
fn side(
    size: u32,
    max: u32,
    key: &dyn Fn(&str) -> String,
    bad: &mut dyn FnMut(&str, String),
) -> u32 {
    if !(4..=max).contains(&size) {
        bad(&key("size"), format!("must be in 4..={max}, got {size}"));
    }
    size
}

/// Checks the settings every generated kind shares.
fn check_generated(
    key: &dyn Fn(&str) -> String,
    bad: &mut dyn FnMut(&str, String),
    concepts: u32,
    examples: u32,
    difficulty: f64,
) {
    if concepts < 2 {
        bad(
            &key("concepts"),
            format!("must be at least 2, got {concepts}"),
        );
    }
    if examples < 4 {
        bad(
            &key("examples-per-concept"),
            format!("must be at least 4, got {examples}"),
        );
    }
    if !(0.0..1.0).contains(&difficulty) {
        bad(
            &key("difficulty"),
            format!("must be in [0, 1), got {difficulty}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::glyphs::Charset;
    use crate::data::image_files::Color;
    use crate::data::images::CifarLabels;
    use crate::spec::{Granularity, WordnetPos, WordnetTexts};

    /// One source of each kind (two where an optional field may be unset).
    fn one_of_each() -> Vec<DataSource> {
        let counted = TokenizeConfig {
            mode: VocabMode::Counted {
                min_count: 2,
                max_vocab: 30000,
            },
            max_tokens: 64,
        };
        let hashed = TokenizeConfig {
            mode: VocabMode::Hashed { buckets: 1024 },
            max_tokens: 32,
        };
        let idx = |classes| {
            DataSource::Idx(Idx {
                images: "file:///d/i".into(),
                labels: "file:///d/l".into(),
                classes,
            })
        };
        let hf = |image_column, label_column: &str| {
            DataSource::HfImages(HfImages {
                url: "file:///d/h.parquet".into(),
                image_column,
                label_column: label_column.into(),
                size: 28,
                color: Color::Rgb,
            })
        };
        vec![
            DataSource::SyntheticText(SyntheticText {
                concepts: 64,
                examples_per_concept: 48,
                vocab: 512,
                length: 24,
                difficulty: 0.6,
                seed: 0,
            }),
            DataSource::SyntheticImage(SyntheticImage {
                concepts: 32,
                examples_per_concept: 64,
                size: 16,
                difficulty: 0.5,
                seed: 3,
            }),
            DataSource::Table(Table {
                format: TableFormat::Jsonl,
                url: "file:///d/a.jsonl".into(),
                text_column: "text".into(),
                label_column: "label".into(),
                tokenize: counted,
            }),
            DataSource::TextFolder(TextFolder {
                url: "file:///d/t".into(),
                tokenize: hashed,
            }),
            DataSource::Digits(Digits {
                url: "file:///d/digits.csv.gz".into(),
            }),
            idx(Some(vec!["a".into(), "b".into()])),
            idx(None),
            DataSource::Cifar(Cifar {
                files: vec!["file:///d/1.bin".into(), "file:///d/2.bin".into()],
                labels: CifarLabels::Coarse,
            }),
            DataSource::ImageFolder(ImageFolder {
                url: "file:///d/f/".into(),
                size: 32,
                color: Color::Grey,
            }),
            hf(None, "label"),
            hf(Some("img".into()), "y"),
            DataSource::Glyphs(Glyphs {
                url: "file:///usr/share/fonts/".into(),
                charset: Charset::Digits,
                size: 16,
            }),
            DataSource::Wordnet(Wordnet {
                wordnet: WordnetSource {
                    url: "file:///usr/share/wordnet/".into(),
                    pos: WordnetPos::Verb,
                    concept: Granularity::Depth,
                    depth: 3,
                    min_texts: 50,
                    texts: WordnetTexts::All,
                },
                tokenize: counted,
            }),
        ]
    }

    /// Content keys hash this JSON: it is what the enum of struct variants wrote, byte for byte.
    #[test]
    fn sources_serialise_as_before() {
        let expected = [
            r#"{"kind":"synthetic-text","concepts":64,"examples_per_concept":48,"vocab":512,"length":24,"difficulty":0.6,"seed":0}"#,
            r#"{"kind":"synthetic-image","concepts":32,"examples_per_concept":64,"size":16,"difficulty":0.5,"seed":3}"#,
            r#"{"kind":"table","format":"jsonl","url":"file:///d/a.jsonl","text_column":"text","label_column":"label","tokenize":{"mode":{"counted":{"min_count":2,"max_vocab":30000}},"max_tokens":64}}"#,
            r#"{"kind":"text-folder","url":"file:///d/t","tokenize":{"mode":{"hashed":{"buckets":1024}},"max_tokens":32}}"#,
            r#"{"kind":"digits","url":"file:///d/digits.csv.gz"}"#,
            r#"{"kind":"idx","images":"file:///d/i","labels":"file:///d/l","classes":["a","b"]}"#,
            r#"{"kind":"idx","images":"file:///d/i","labels":"file:///d/l","classes":null}"#,
            r#"{"kind":"cifar","files":["file:///d/1.bin","file:///d/2.bin"],"labels":"coarse"}"#,
            r#"{"kind":"image-folder","url":"file:///d/f/","size":32,"color":"grey"}"#,
            r#"{"kind":"hf-images","url":"file:///d/h.parquet","image_column":null,"label_column":"label","size":28,"color":"rgb"}"#,
            r#"{"kind":"hf-images","url":"file:///d/h.parquet","image_column":"img","label_column":"y","size":28,"color":"rgb"}"#,
            r#"{"kind":"glyphs","url":"file:///usr/share/fonts/","charset":"digits","size":16}"#,
            r#"{"kind":"wordnet","wordnet":{"url":"file:///usr/share/wordnet/","pos":"verb","concept":"depth","depth":3,"min_texts":50,"texts":"all"},"tokenize":{"mode":{"counted":{"min_count":2,"max_vocab":30000}},"max_tokens":64}}"#,
        ];
        let expected_without_locations = [
            r#"{"kind":"synthetic-text","concepts":64,"examples_per_concept":48,"vocab":512,"length":24,"difficulty":0.6,"seed":0}"#,
            r#"{"kind":"synthetic-image","concepts":32,"examples_per_concept":64,"size":16,"difficulty":0.5,"seed":3}"#,
            r#"{"kind":"table","format":"jsonl","url":"","text_column":"text","label_column":"label","tokenize":{"mode":{"counted":{"min_count":2,"max_vocab":30000}},"max_tokens":64}}"#,
            r#"{"kind":"text-folder","url":"","tokenize":{"mode":{"hashed":{"buckets":1024}},"max_tokens":32}}"#,
            r#"{"kind":"digits","url":""}"#,
            r#"{"kind":"idx","images":"","labels":"","classes":["a","b"]}"#,
            r#"{"kind":"idx","images":"","labels":"","classes":null}"#,
            r#"{"kind":"cifar","files":["",""],"labels":"coarse"}"#,
            r#"{"kind":"image-folder","url":"","size":32,"color":"grey"}"#,
            r#"{"kind":"hf-images","url":"","image_column":null,"label_column":"label","size":28,"color":"rgb"}"#,
            r#"{"kind":"hf-images","url":"","image_column":"img","label_column":"y","size":28,"color":"rgb"}"#,
            r#"{"kind":"glyphs","url":"","charset":"digits","size":16}"#,
            r#"{"kind":"wordnet","wordnet":{"url":"","pos":"verb","concept":"depth","depth":3,"min_texts":50,"texts":"all"},"tokenize":{"mode":{"counted":{"min_count":2,"max_vocab":30000}},"max_tokens":64}}"#,
        ];
        let all = one_of_each();
        assert_eq!(all.len(), expected.len());
        for ((s, want), want_nl) in all.iter().zip(expected).zip(expected_without_locations) {
            assert_eq!(serde_json::to_string(s).unwrap(), want);
            assert_eq!(
                serde_json::to_string(&s.without_locations()).unwrap(),
                want_nl
            );
        }
    }
}
