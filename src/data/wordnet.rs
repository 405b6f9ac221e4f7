//! The WordNet 3.0 database (`data.noun`, `data.verb`): texts and their concepts.
//!
//! Each synset line holds its lexicographer file, its words, its pointers and a gloss: a
//! definition followed by quoted example sentences. Every definition and every example becomes
//! one text. The concept of a text is its synset's lexicographer file, its synset, or its
//! hypernym ancestor at a given depth. Synsets with several hypernyms (about 2% of nouns)
//! follow their first one, as WordNet lists it: a documented rule, so no text is duplicated
//! under two concepts.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sources::Record;
use crate::{Error, Result};

/// WordNet part of speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WordnetPos {
    /// Nouns: 26 lexicographer files, hypernym tree rooted at `entity`.
    Noun,
    /// Verbs: 15 lexicographer files, a forest of shallow hypernym trees.
    Verb,
}

/// What a WordNet concept is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// The lexicographer file (`noun.animal`, `noun.artifact`, ...).
    Lexname,
    /// The hypernym ancestor at `depth`, following each synset's first hypernym.
    Depth,
    /// The synset itself (most have one or two texts: use with `concepts.min-examples`).
    Synset,
}

/// Which WordNet texts become examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WordnetTexts {
    /// Definitions only.
    Glosses,
    /// Quoted example sentences only.
    Examples,
    /// Both.
    All,
}

/// Lexicographer file names by number (`man 5 lexnames`).
pub const LEXNAMES: [&str; 45] = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
];

/// One synset.
#[derive(Debug, Clone, PartialEq)]
pub struct Synset {
    /// Byte offset: the synset's id in its file.
    pub offset: u32,
    /// Lexicographer file number.
    pub lex: u8,
    /// First word (underscores for spaces).
    pub word: String,
    /// Hypernym offsets (`@` and `@i` pointers), in file order.
    pub parents: Vec<u32>,
    /// The definition.
    pub definition: String,
    /// Quoted example sentences.
    pub examples: Vec<String>,
}

/// The data file of a part of speech.
pub fn data_file(pos: WordnetPos) -> &'static str {
    match pos {
        WordnetPos::Noun => "data.noun",
        WordnetPos::Verb => "data.verb",
    }
}

/// Splits a gloss into its definition and its quoted examples.
fn split_gloss(gloss: &str) -> (String, Vec<String>) {
    let (mut definition, mut examples) = (String::new(), Vec::new());
    let mut rest = gloss;
    while let Some(start) = rest.find('"') {
        definition.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else {
            // An unbalanced quote: the rest is definition text.
            definition.push_str(after);
            rest = "";
            break;
        };
        let example = after[..end].trim();
        if !example.is_empty() {
            examples.push(example.to_owned());
        }
        rest = &after[end + 1..];
    }
    definition.push_str(rest);
    let definition = definition
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    (definition, examples)
}

/// Parses a `data.*` file; `location` names it in errors.
pub fn parse(text: &str, location: &str) -> Result<Vec<Synset>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // The license header lines start with two spaces.
        if line.starts_with(' ') || line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| Error::data(location, format!("line {}: {what}", i + 1));
        let (fields, gloss) = line.split_once(" | ").unwrap_or((line, ""));
        let f: Vec<&str> = fields.split_ascii_whitespace().collect();
        let num = |j: usize, radix: u32, what: &str| -> Result<usize> {
            f.get(j)
                .and_then(|s| usize::from_str_radix(s, radix).ok())
                .ok_or_else(|| bad(what))
        };
        let offset = num(0, 10, "bad synset offset")? as u32;
        let lex = num(1, 10, "bad lexicographer file number")?;
        if lex >= LEXNAMES.len() {
            return Err(bad("lexicographer file number out of range"));
        }
        let words = num(3, 16, "bad word count")?;
        let word = f.get(4).ok_or_else(|| bad("missing word"))?.to_string();
        let p_at = 4 + 2 * words;
        let pointers = num(p_at, 10, "bad pointer count")?;
        let mut parents = Vec::new();
        for p in 0..pointers {
            let at = p_at + 1 + 4 * p;
            let symbol = *f.get(at).ok_or_else(|| bad("truncated pointer list"))?;
            if symbol == "@" || symbol == "@i" {
                parents.push(num(at + 1, 10, "bad pointer offset")? as u32);
            }
        }
        let (definition, examples) = split_gloss(gloss);
        out.push(Synset {
            offset,
            lex: lex as u8,
            word,
            parents,
            definition,
            examples,
        });
    }
    if out.is_empty() {
        return Err(Error::data(location, "no synsets: not a WordNet data file"));
    }
    Ok(out)
}

/// What building the texts kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WordnetStats {
    /// Synsets read.
    pub synsets: u64,
    /// Synsets with more than one hypernym (they follow the first).
    pub multi_parent: u64,
    /// Texts kept.
    pub texts: u64,
    /// Texts of synsets shallower than the depth asked for.
    pub too_shallow: u64,
    /// Texts under ancestors with fewer than `min_texts` texts.
    pub small_ancestor: u64,
}

/// The texts of `synsets` with their concept names.
pub fn records(
    synsets: &[Synset],
    concept: Granularity,
    depth: u32,
    min_texts: u32,
    texts: WordnetTexts,
) -> (Vec<Record>, WordnetStats) {
    let mut stats = WordnetStats {
        synsets: synsets.len() as u64,
        multi_parent: synsets.iter().filter(|s| s.parents.len() > 1).count() as u64,
        ..Default::default()
    };
    let by_offset: HashMap<u32, usize> = synsets
        .iter()
        .enumerate()
        .map(|(i, s)| (s.offset, i))
        .collect();
    let name = |s: &Synset| format!("{}.{:08}", s.word, s.offset);
    // The ancestor at `depth` on the first-parent path to a root, if the path is that long.
    let ancestor = |s: &Synset| -> Option<usize> {
        let mut path = vec![by_offset[&s.offset]];
        while let Some(&p) = synsets[*path.last().expect("non-empty")]
            .parents
            .first()
            .and_then(|o| by_offset.get(o))
        {
            // WordNet's hypernym graph is acyclic; the bound only guards a corrupt file.
            if path.len() > 64 {
                break;
            }
            path.push(p);
        }
        path.reverse();
        path.get(depth as usize).copied()
    };
    let texts_of = |s: &Synset| -> Vec<String> {
        let mut t = Vec::new();
        if texts != WordnetTexts::Examples && !s.definition.is_empty() {
            t.push(s.definition.clone());
        }
        if texts != WordnetTexts::Glosses {
            t.extend(s.examples.iter().cloned());
        }
        t
    };
    let mut labelled: Vec<(Option<usize>, Vec<String>, String)> = Vec::new();
    for s in synsets {
        let t = texts_of(s);
        let (key, label) = match concept {
            Granularity::Lexname => (None, LEXNAMES[s.lex as usize].to_owned()),
            Granularity::Synset => (None, name(s)),
            Granularity::Depth => match ancestor(s) {
                Some(a) => (Some(a), name(&synsets[a])),
                None => {
                    stats.too_shallow += t.len() as u64;
                    continue;
                }
            },
        };
        labelled.push((key, t, label));
    }
    let mut per_ancestor: HashMap<usize, u64> = HashMap::new();
    for (key, t, _) in &labelled {
        if let Some(a) = key {
            *per_ancestor.entry(*a).or_default() += t.len() as u64;
        }
    }
    let mut out = Vec::new();
    for (key, t, label) in labelled {
        if let Some(a) = key
            && per_ancestor[&a] < u64::from(min_texts)
        {
            stats.small_ancestor += t.len() as u64;
            continue;
        }
        for text in t {
            out.push(Record {
                text,
                label: label.clone(),
            });
        }
    }
    stats.texts = out.len() as u64;
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Four synsets in data.noun's layout: entity <- abstraction <- {idea, notion (two parents)}.
    const DATA: &str = "  1 This software and database is being provided\n\
00001740 03 n 01 entity 0 001 ~ 00002137 n 0000 | that which is perceived or known\n\
00002137 03 n 02 abstraction 0 abstract_entity 0 001 @ 00001740 n 0000 | a general concept; \"abstractions are hard\"\n\
00005000 09 n 01 idea 0 001 @ 00002137 n 0000 | a thought; \"a good idea\"; \"he had an idea\"\n\
00006000 09 n 01 notion 0 002 @ 00002137 n 0000 @i 00001740 n 0000 | a vague idea\n";

    #[test]
    fn parses_words_pointers_and_glosses() {
        let s = parse(DATA, "data.noun").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[1].word, "abstraction");
        assert_eq!(s[1].parents, [1740]);
        assert_eq!(s[2].definition, "a thought");
        assert_eq!(s[2].examples, ["a good idea", "he had an idea"]);
        assert_eq!(s[3].parents, [2137, 1740]);
        assert_eq!(LEXNAMES[s[2].lex as usize], "noun.cognition");
    }

    #[test]
    fn granularities_label_texts_by_lexname_ancestor_or_synset() {
        let s = parse(DATA, "data.noun").unwrap();
        let labels = |g, depth, min, texts| {
            let (r, stats) = records(&s, g, depth, min, texts);
            (r.into_iter().map(|r| r.label).collect::<Vec<_>>(), stats)
        };
        let (l, st) = labels(Granularity::Lexname, 0, 0, WordnetTexts::All);
        assert_eq!(l.len(), 7);
        assert_eq!(st.multi_parent, 1);
        assert_eq!(l.iter().filter(|l| *l == "noun.cognition").count(), 4);
        // Depth 1: everything under `abstraction`; `entity` itself is too shallow.
        let (l, st) = labels(Granularity::Depth, 1, 0, WordnetTexts::All);
        assert!(l.iter().all(|l| l == "abstraction.00002137"), "{l:?}");
        assert_eq!((l.len(), st.too_shallow), (6, 1));
        // Depth 2 with min-texts 3: `idea` (3 texts) stays, `notion` (1) goes.
        let (l, st) = labels(Granularity::Depth, 2, 3, WordnetTexts::All);
        assert_eq!(l, ["idea.00005000"; 3]);
        assert_eq!(st.small_ancestor, 1);
        let (l, _) = labels(Granularity::Synset, 0, 0, WordnetTexts::Glosses);
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn a_file_without_synsets_is_an_error() {
        let e = parse("hello\n", "x").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("", "x").unwrap_err().to_string();
        assert!(e.contains("not a WordNet data file"), "{e}");
    }
}
