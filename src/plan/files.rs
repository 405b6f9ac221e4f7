//! Resolving the datasets read from files (text, images, fonts) and from WordNet.

use serde::Serialize;

use super::DataSource;
use crate::data::sources::TableFormat;
use crate::data::tokenize::{TokenizeConfig, VocabMode};
use crate::spec::{DatasetSpec, Granularity, TokenizeSpec, WordnetPos, WordnetTexts};
use crate::storage::StoreUrl;

/// Resolved WordNet settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordnetSource {
    /// Database folder.
    pub url: String,
    /// Part of speech.
    pub pos: WordnetPos,
    /// What a concept is.
    pub concept: Granularity,
    /// Ancestor depth (`concept = depth`).
    pub depth: u32,
    /// Minimum descendant texts of an ancestor (`concept = depth`).
    pub min_texts: u32,
    /// Which texts.
    pub texts: WordnetTexts,
}

fn tokenize(
    t: &TokenizeSpec,
    key: &impl Fn(&str) -> String,
    bad: &mut impl FnMut(&str, String),
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
    key: &impl Fn(&str) -> String,
    bad: &mut impl FnMut(&str, String),
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
    key: &impl Fn(&str) -> String,
    bad: &mut impl FnMut(&str, String),
) -> u32 {
    if !(4..=max).contains(&size) {
        bad(&key("size"), format!("must be in 4..={max}, got {size}"));
    }
    size
}

/// Resolves a file or WordNet dataset; `None` for the built-in kinds.
pub(crate) fn resolve(
    ds: &DatasetSpec,
    key: &impl Fn(&str) -> String,
    bad: &mut impl FnMut(&str, String),
) -> Option<(String, DataSource, Option<Vec<u32>>)> {
    let table =
        |format: TableFormat, t: &crate::spec::TableSpec, bad: &mut dyn FnMut(&str, String)| {
            let mut bad = |k: &str, m: String| bad(k, m);
            DataSource::Table {
                format,
                url: location(&t.url, "url", key, &mut bad),
                text_column: t.text_column.clone().unwrap_or_else(|| "text".into()),
                label_column: t.label_column.clone().unwrap_or_else(|| "label".into()),
                tokenize: tokenize(&t.tokenize, key, &mut bad),
            }
        };
    let mut dynbad = |k: &str, m: String| bad(k, m);
    Some(match ds {
        DatasetSpec::SyntheticText(_) | DatasetSpec::SyntheticImage(_) => return None,
        DatasetSpec::Digits(d) => (
            d.name.clone(),
            DataSource::Digits {
                url: location(&d.url, "url", key, &mut dynbad),
            },
            d.n.clone(),
        ),
        DatasetSpec::Idx(d) => (
            d.name.clone(),
            DataSource::Idx {
                images: location(&d.images, "images", key, &mut dynbad),
                labels: location(&d.labels, "labels", key, &mut dynbad),
                classes: d.classes.clone(),
            },
            d.n.clone(),
        ),
        DatasetSpec::ImageFolder(f) => {
            let size = side(f.size.unwrap_or(32), 512, key, &mut dynbad);
            (
                f.name.clone(),
                DataSource::ImageFolder {
                    url: location(&f.url, "url", key, &mut dynbad) + "/",
                    size,
                    color: f.color.unwrap_or(crate::data::image_files::Color::Rgb),
                },
                f.n.clone(),
            )
        }
        DatasetSpec::HfImages(h) => {
            let size = side(h.size.unwrap_or(32), 512, key, &mut dynbad);
            (
                h.name.clone(),
                DataSource::HfImages {
                    url: location(&h.url, "url", key, &mut dynbad),
                    image_column: h.image_column.clone(),
                    label_column: h.label_column.clone().unwrap_or_else(|| "label".into()),
                    size,
                    color: h.color.unwrap_or(crate::data::image_files::Color::Rgb),
                },
                h.n.clone(),
            )
        }
        DatasetSpec::Glyphs(g) => {
            let size = side(g.size.unwrap_or(16), 128, key, &mut dynbad);
            (
                g.name.clone(),
                DataSource::Glyphs {
                    url: location(
                        g.fonts.as_deref().unwrap_or("/usr/share/fonts"),
                        "fonts",
                        key,
                        &mut dynbad,
                    ) + "/",
                    charset: g.charset.unwrap_or(crate::data::glyphs::Charset::Both),
                    size,
                },
                g.n.clone(),
            )
        }
        DatasetSpec::Cifar(d) => {
            if d.files.is_empty() {
                dynbad(&key("files"), "must list at least one file".into());
            }
            (
                d.name.clone(),
                DataSource::Cifar {
                    files: d
                        .files
                        .iter()
                        .map(|f| location(f, "files", key, &mut dynbad))
                        .collect(),
                    labels: d.labels.unwrap_or(crate::data::images::CifarLabels::Ten),
                },
                d.n.clone(),
            )
        }
        DatasetSpec::Csv(t) | DatasetSpec::Jsonl(t) | DatasetSpec::Parquet(t) => {
            let format = match ds {
                DatasetSpec::Csv(_) => TableFormat::Csv,
                DatasetSpec::Jsonl(_) => TableFormat::Jsonl,
                _ => TableFormat::Parquet,
            };
            (t.name.clone(), table(format, t, &mut dynbad), t.n.clone())
        }
        DatasetSpec::TextFolder(t) => (
            t.name.clone(),
            DataSource::TextFolder {
                url: location(&t.url, "url", key, &mut dynbad),
                tokenize: tokenize(&t.tokenize, key, &mut dynbad),
            },
            t.n.clone(),
        ),
        DatasetSpec::Wordnet(w) => {
            let concept = w.concept.unwrap_or(Granularity::Lexname);
            if concept != Granularity::Depth && (w.depth.is_some() || w.min_texts.is_some()) {
                dynbad(
                    &key("depth"),
                    "`depth` and `min-texts` apply to `concept = \"depth\"` only".into(),
                );
            }
            let depth = w.depth.unwrap_or(3);
            if concept == Granularity::Depth && depth == 0 {
                dynbad(
                    &key("depth"),
                    "must be at least 1 (depth 0 is the root alone)".into(),
                );
            }
            (
                w.name.clone(),
                DataSource::Wordnet {
                    wordnet: WordnetSource {
                        url: location(
                            w.url.as_deref().unwrap_or("/usr/share/wordnet"),
                            "url",
                            key,
                            &mut dynbad,
                        ) + "/",
                        pos: w.pos.unwrap_or(WordnetPos::Noun),
                        concept,
                        depth,
                        min_texts: w.min_texts.unwrap_or(50),
                        texts: w.texts.unwrap_or(WordnetTexts::All),
                    },
                    tokenize: tokenize(&w.tokenize, key, &mut dynbad),
                },
                w.n.clone(),
            )
        }
    })
}
