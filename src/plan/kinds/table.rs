//! `csv`, `jsonl`, `parquet`: a table file with a text column and a label column.

use object_store::ObjectMeta;
use serde::Serialize;

use super::{Kind, Read, TextRecords, location, tokenize};
use crate::data::sources::{self, TableFormat, TextInput};
use crate::data::tokenize::TokenizeConfig;
use crate::plan::Modality;
use crate::plan::inputs::{self, Input};
use crate::plan::memory::Shape;
use crate::spec::TableSpec;
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// Resolved `kind = "csv" | "jsonl" | "parquet"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// Format.
    pub format: TableFormat,
    /// The file's URL.
    pub url: String,
    /// Text column.
    pub text_column: String,
    /// Label column.
    pub label_column: String,
    /// Tokenization.
    pub tokenize: TokenizeConfig,
}

impl Table {
    /// The spec's settings with their defaults, the file read as `format`.
    pub(super) fn resolve(
        format: TableFormat,
        t: &TableSpec,
        key: &dyn Fn(&str) -> String,
        bad: &mut dyn FnMut(&str, String),
    ) -> Self {
        Self {
            format,
            url: location(&t.url, "url", key, bad),
            text_column: t.text_column.clone().unwrap_or_else(|| "text".into()),
            label_column: t.label_column.clone().unwrap_or_else(|| "label".into()),
            tokenize: tokenize(&t.tokenize, key, bad),
        }
    }

    /// The header row of a CSV file, or the first record of a JSONL file, names the columns.
    async fn check_text_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        let location = store.display(rel);
        if meta.size == 0 {
            return Err(Error::data(
                &location,
                "the file is empty (0 bytes): no records",
            ));
        }
        let head = store.head_bytes(rel, 64 << 10).await?;
        let mut reader = std::io::BufReader::new(sources::unicode(&head[..]));
        let mut line = Vec::new();
        // The first non-blank line: the header of a CSV file, a record of a JSONL file.
        let mut number = 0;
        loop {
            line.clear();
            let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
                .map_err(|e| Error::data(&location, format!("cannot read: {e}")))?;
            number += 1;
            if n == 0 || !line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if head.len() as u64 == meta.size {
                return Err(Error::data(
                    &location,
                    match self.format {
                        TableFormat::Csv => "no header row: the file holds only blank lines",
                        _ => "no records: the file holds only blank lines",
                    },
                ));
            }
            // Blank lines past what was read: the ingest reads on.
            return Ok(());
        }
        let complete = line.ends_with(b"\n") || head.len() as u64 == meta.size;
        if !complete {
            // A first line longer than what was read: the ingest checks it.
            return Ok(());
        }
        let text = sources::utf8(&line, &location, number)?.trim();
        let names: Vec<String> = match self.format {
            TableFormat::Csv => ::csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(sources::sniff_csv(text.as_bytes()).0)
                .from_reader(text.as_bytes())
                .records()
                .next()
                .transpose()
                .map_err(|e| Error::data(&location, format!("line {number}: {e}")))?
                .map(|r| r.iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            _ => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
                Ok(_) => {
                    return Err(Error::data(
                        &location,
                        format!("line {number}: expected a JSON object"),
                    ));
                }
                Err(e) => {
                    return Err(Error::data(
                        &location,
                        format!("line {number}: invalid JSON: {e}"),
                    ));
                }
            },
        };
        inputs::require_columns(&location, &names, &[&self.text_column, &self.label_column])
    }
}

impl Kind for Table {
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
        vec![Input::File(self.url.clone())]
    }

    fn tokenize(&self) -> Option<&TokenizeConfig> {
        Some(&self.tokenize)
    }

    async fn check_file(&self, store: &Store, rel: &str, meta: &ObjectMeta) -> Result<()> {
        if self.format != TableFormat::Parquet {
            return self.check_text_file(store, rel, meta).await;
        }
        let location = store.display(rel);
        let schema = inputs::parquet_schema(store, rel, &location).await?;
        let label_column = &self.label_column;
        inputs::require_columns(
            &location,
            &inputs::names_of(&schema),
            &[&self.text_column, label_column],
        )?;
        let dt = schema
            .field_with_name(label_column)
            .expect("checked above")
            .data_type()
            .clone();
        crate::data::labels::check_type(&dt)
            .map_err(|m| Error::data(&location, format!("label column `{label_column}` {m}")))
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
                let (store, rel) = Store::open_file(&self.url, settings)?;
                let input = TextInput::Table {
                    format: self.format,
                    store,
                    rel,
                    text_column: self.text_column.clone(),
                    label_column: self.label_column.clone(),
                };
                Ok(TextRecords {
                    batches: sources::stream(&input),
                    wordnet: None,
                })
            }),
        }
    }
}
