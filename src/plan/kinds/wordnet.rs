//! `wordnet`: the WordNet database, one example per gloss and per quoted example sentence.

use object_store::ObjectMeta;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{Kind, Read, TextRecords, location, tokenize};
use crate::data::sources::{Batch, Record, Skipped};
use crate::data::tokenize::TokenizeConfig;
use crate::data::wordnet::{self, WordnetStats};
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::{Granularity, WordnetPos, WordnetSpec, WordnetTexts};
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

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

/// Resolved `kind = "wordnet"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wordnet {
    /// Database, part of speech, granularity.
    pub wordnet: WordnetSource,
    /// Tokenization.
    pub tokenize: TokenizeConfig,
}

impl Wordnet {
    /// The spec's settings with their defaults.
    pub(super) fn resolve(
        w: &WordnetSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        let concept = w.concept.unwrap_or(Granularity::Lexname);
        if concept != Granularity::Depth && (w.depth.is_some() || w.min_texts.is_some()) {
            bad(
                &key("depth"),
                "`depth` and `min-texts` apply to `concept = \"depth\"` only".into(),
            );
        }
        let depth = w.depth.unwrap_or(3);
        if concept == Granularity::Depth && depth == 0 {
            bad(
                &key("depth"),
                "must be at least 1 (depth 0 is the root alone)".into(),
            );
        }
        Self {
            wordnet: WordnetSource {
                url: location(
                    w.url.as_deref().unwrap_or("/usr/share/wordnet"),
                    "url",
                    key,
                    bad,
                ) + "/",
                pos: w.pos.unwrap_or(WordnetPos::Noun),
                concept,
                depth,
                min_texts: w.min_texts.unwrap_or(50),
                texts: w.texts.unwrap_or(WordnetTexts::All),
            },
            tokenize: tokenize(&w.tokenize, key, bad),
        }
    }

    /// Reads and labels the database (small: parsed in memory).
    async fn records(&self, settings: &StorageSettings) -> Result<(Vec<Record>, WordnetStats)> {
        let w = &self.wordnet;
        let store = Store::open_str(&w.url, settings)?;
        let file = wordnet::data_file(w.pos);
        let location = store.display(file);
        let bytes = store.get(file).await?.ok_or_else(|| {
            Error::data(
                &location,
                "no WordNet database here (on Debian: apt-get install wordnet-base)",
            )
        })?;
        let (concept, depth, min_texts, texts) = (w.concept, w.depth, w.min_texts, w.texts);
        tokio::task::spawn_blocking(move || {
            let text = crate::data::sources::utf8(&bytes, &location, 1)?;
            let synsets = wordnet::parse(text, &location)?;
            Ok(wordnet::records(&synsets, concept, depth, min_texts, texts))
        })
        .await
        .map_err(|e| Error::Internal(format!("WordNet reader panicked: {e}")))?
    }
}

impl Kind for Wordnet {
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
        self.wordnet.url.clone()
    }

    fn clear_locations(&mut self) {
        self.wordnet.url.clear();
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::File(format!(
            "{}/{}",
            self.wordnet.url.trim_end_matches('/'),
            wordnet::data_file(self.wordnet.pos)
        ))]
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
                let (records, stats) = self.records(settings).await?;
                let (tx, rx) = mpsc::channel(1);
                tokio::spawn(async move {
                    let _ = tx.send(Ok(Batch::Records(records))).await;
                    let _ = tx.send(Ok(Batch::Done(Skipped::default()))).await;
                });
                Ok(TextRecords {
                    batches: rx,
                    wordnet: Some(stats),
                })
            }),
        }
    }
}
