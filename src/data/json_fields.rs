//! The two fields of a JSONL record that a text ingest reads, parsed without building the
//! record's whole value: keys are compared in place and the text is copied once, where a tree
//! of `serde_json::Value` allocated a string per key and a map per line and cloned the text.
//! Other fields are parsed (and dropped) as values, so that a line is accepted exactly when
//! `serde_json` accepts it as a whole.
//!
//! Only the well-formed case is decided here; anything else (not an object, a missing field,
//! a text that is neither a string nor null) returns `None`, and the caller parses the line
//! again into a `Value` to name the fault exactly as before.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// What a well-formed record holds in its two fields.
#[derive(Debug, PartialEq)]
pub(crate) struct Fields {
    /// The text, `None` for a JSON `null`.
    pub(crate) text: Option<String>,
    /// The label's value, as written.
    pub(crate) label: serde_json::Value,
}

/// `line`'s fields `text_col` and `label_col` (the last of each when repeated, as a JSON
/// object reads them), or `None` when the line is not a JSON object holding both with a string
/// or null text.
pub(crate) fn text_and_label(line: &str, text_col: &str, label_col: &str) -> Option<Fields> {
    let mut de = serde_json::Deserializer::from_str(line);
    let found = Record {
        text_col,
        label_col,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(Fields {
        text: found.text?,
        label: found.label?,
    })
}

/// The seed that reads one object.
struct Record<'c> {
    text_col: &'c str,
    label_col: &'c str,
}

/// The fields found, each `None` until seen.
struct Found {
    text: Option<Option<String>>,
    label: Option<serde_json::Value>,
}

impl<'de> DeserializeSeed<'de> for Record<'_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found {
            text: None,
            label: None,
        };
        while let Some(key) = map.next_key_seed(Key(&self))? {
            match key {
                Which::Text => found.text = Some(map.next_value_seed(Text)?),
                Which::Label => found.label = Some(map.next_value()?),
                Which::Other => {
                    // Parsed as a value, not skipped: skipping checks neither number ranges,
                    // escapes nor nesting depth, and a line is valid JSON or an error whichever
                    // field holds the fault.
                    map.next_value::<serde_json::Value>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Which field a key names.
enum Which {
    Text,
    Label,
    Other,
}

/// Reads a key and compares it with the two column names, without allocating it.
struct Key<'r, 'c>(&'r Record<'c>);

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = Which;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Which, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_, '_> {
    type Value = Which;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Which, E> {
        // A dataset whose text and label columns are one field finds no label here, and the
        // caller's `Value` path reads it.
        Ok(if key == self.0.text_col {
            Which::Text
        } else if key == self.0.label_col {
            Which::Label
        } else {
            Which::Other
        })
    }
}

/// Reads the text field: a string or null; anything else is an error (the caller's slow path
/// names it).
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Text {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<String>, E> {
        Ok(Some(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Option<String>, E> {
        Ok(Some(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Option<Fields> {
        text_and_label(line, "text", "label")
    }

    #[test]
    fn reads_the_two_fields_and_skips_the_rest() {
        let f =
            fields(r#"{"id": [1, {"a": "b"}], "label": 7, "text": "a \"b\" \u00e9", "x": null}"#)
                .expect("well formed");
        assert_eq!(f.text.as_deref(), Some("a \"b\" é"));
        assert_eq!(f.label, serde_json::json!(7));
        let f = fields(r#"{"text": null, "label": "c"}"#).expect("null text");
        assert_eq!(f.text, None);
    }

    #[test]
    fn nesting_past_serde_jsons_limit_in_another_field_is_refused() {
        let deep = |levels: usize| {
            format!(
                r#"{{"x": {}{}, "text": "t", "label": "l"}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        // The same line as a whole `Value`: accepted at 126 levels (with the object, 127),
        // refused past the limit of 128.
        assert!(serde_json::from_str::<serde_json::Value>(&deep(126)).is_ok());
        assert!(fields(&deep(126)).is_some());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(128)).is_err());
        assert_eq!(fields(&deep(128)), None);
    }

    #[test]
    fn the_last_of_a_repeated_field_wins_as_in_a_json_object() {
        let line = r#"{"text": "first", "label": "a", "text": "second", "label": "b"}"#;
        let f = fields(line).expect("well formed");
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(f.text.as_deref(), v["text"].as_str());
        assert_eq!(f.label, v["label"]);
    }

    #[test]
    fn anything_else_is_left_to_the_caller() {
        for line in [
            r#"["text", "label"]"#,
            r#"{"text": "t"}"#,
            r#"{"label": "l"}"#,
            r#"{"text": 3, "label": "l"}"#,
            r#"{"text": "t", "label": "l"} trailing"#,
            r#"{"text": "t", "label": "l""#,
            r#""just a string""#,
            // Faults in a field that is not read still make the line invalid JSON.
            r#"{"x": 1e999, "text": "t", "label": "l"}"#,
            r#"{"text": "t", "x": "\ud800", "label": "l"}"#,
        ] {
            assert_eq!(fields(line), None, "{line}");
        }
    }
}
