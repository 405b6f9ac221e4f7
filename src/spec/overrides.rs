//! `--set KEY=VALUE` overrides, applied to the pipeline text before parsing so that the typed
//! parser checks them like any other key.

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::{Error, Origin, Result};

/// Applies `a.b.c=VALUE` overrides to TOML text. VALUE is parsed as a TOML value
/// (`[1,4,16]`, `0.01`, `"nce"`), falling back to a bare string (`loss=nce`). A number after an
/// array of tables picks its element: `datasets.0.difficulty=0.8`.
pub fn apply_overrides(path: &str, text: &str, overrides: &[String]) -> Result<String> {
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| Error::Spec {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    for arg in overrides {
        let bad = |message: &str| Error::Override {
            arg: arg.clone(),
            message: message.to_owned(),
        };
        let (key, raw) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE, for example sweep.k=[1,4,16]"))?;
        let parts: Vec<&str> = key.trim().split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty key segment"));
        }
        let value = parse_value(raw.trim());
        let (last, parents) = parts.split_last().expect("split yields one part at least");
        let mut table: &mut Table = doc.as_table_mut();
        let mut rest = parents.iter();
        while let Some(part) = rest.next() {
            let entry = table
                .entry(part)
                .or_insert_with(|| Item::Table(Table::new()));
            table = match entry {
                Item::ArrayOfTables(array) => {
                    let len = array.len();
                    let index = rest
                        .next()
                        .and_then(|i| i.parse::<usize>().ok())
                        .ok_or_else(|| {
                            bad(&format!(
                                "`{part}` is a list: name an element, as in `{part}.0`"
                            ))
                        })?;
                    array.get_mut(index).ok_or_else(|| {
                        bad(&format!("`{part}` has {len} elements, no element {index}"))
                    })?
                }
                other => other
                    .as_table_mut()
                    .ok_or_else(|| bad(&format!("`{part}` is not a table")))?,
            };
        }
        table.insert(last, Item::Value(value));
    }
    Ok(doc.to_string())
}

/// Which of `overrides` (as given) a problem at the dotted `key` (`sweep.k`,
/// `datasets[0].n`) comes from by its key alone: the last that set the key or a table holding
/// it ([`Origin::Set`]), else those that set a key inside it ([`Origin::With`]: the problem
/// is the table's); `None` when none of them touches the key.
pub fn override_origin(overrides: &[String], key: &str) -> Option<Origin> {
    let problem = segments(key);
    let sets = |arg: &str| segments(arg.split_once('=').map_or(arg, |(k, _)| k));
    if let Some(arg) = overrides
        .iter()
        .rev()
        .find(|a| problem.starts_with(&sets(a)))
    {
        return Some(Origin::Set(arg.clone()));
    }
    let inside: Vec<String> = overrides
        .iter()
        .filter(|a| sets(a).starts_with(&problem))
        .cloned()
        .collect();
    (!inside.is_empty()).then_some(Origin::With(inside))
}

/// A dotted key's parts, in either form: `datasets[0].n` and `datasets.0.n` give the same.
fn segments(key: &str) -> Vec<String> {
    key.trim()
        .split(['.', '['])
        .map(|s| s.trim_end_matches(']').trim_matches('"').to_owned())
        .collect()
}

fn parse_value(raw: &str) -> Value {
    raw.parse::<Value>()
        .unwrap_or_else(|_| Value::from(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_arrays_scalars_and_bare_strings() {
        let text = "[pipeline]\nname = \"a\"\n[sweep]\nk = [1]\n";
        let out = apply_overrides(
            "p",
            text,
            &[
                "sweep.k=[1,4,16]".into(),
                "train.lr=0.01".into(),
                "train.loss=infonce".into(),
            ],
        )
        .unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["sweep"]["k"].as_array().unwrap().len(), 3);
        assert_eq!(v["train"]["lr"].as_float(), Some(0.01));
        assert_eq!(v["train"]["loss"].as_str(), Some("infonce"));
        assert_eq!(v["pipeline"]["name"].as_str(), Some("a"));
    }

    #[test]
    fn indexes_arrays_of_tables() {
        let text = "[[datasets]]\nname = \"a\"\n[[datasets]]\nname = \"b\"\n";
        let out = apply_overrides("p", text, &["datasets.1.difficulty=0.8".into()]).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        let ds = v["datasets"].as_array().unwrap();
        assert!(ds[0].get("difficulty").is_none());
        assert_eq!(ds[1]["difficulty"].as_float(), Some(0.8));
        let err = apply_overrides("p", text, &["datasets.2.x=1".into()]).unwrap_err();
        assert!(
            err.to_string().contains("has 2 elements, no element 2"),
            "{err}"
        );
        let err = apply_overrides("p", text, &["datasets.x=1".into()]).unwrap_err();
        assert!(err.to_string().contains("name an element"), "{err}");
    }

    #[test]
    fn a_problem_is_the_override_s_that_set_its_key_or_its_table() {
        let set: Vec<String> = [
            "sweep.k=[4]",
            "datasets.1.difficulty=0.8",
            "sweep.adaptive={ settle = \"stable\" }",
            "sweep.k=[8]",
        ]
        .map(str::to_owned)
        .to_vec();
        // The last one to set it wins, as it does when they are applied.
        assert_eq!(
            override_origin(&set, "sweep.k"),
            Some(Origin::Set("sweep.k=[8]".into()))
        );
        assert_eq!(
            override_origin(&set, "datasets[1].difficulty"),
            Some(Origin::Set("datasets.1.difficulty=0.8".into()))
        );
        assert_eq!(override_origin(&set, "datasets[0].difficulty"), None);
        assert_eq!(
            override_origin(&set, "sweep.adaptive.settle-power"),
            Some(Origin::Set(set[2].clone()))
        );
        // A problem of a table an override set a key in.
        assert_eq!(
            override_origin(&set, "datasets[1]"),
            Some(Origin::With(vec![set[1].clone()]))
        );
        assert_eq!(override_origin(&set, "sweep.seed"), None);
        assert_eq!(override_origin(&set, "memory"), None);
    }

    #[test]
    fn rejects_missing_equals_and_scalar_parent() {
        let text = "[pipeline]\nname = \"a\"\n";
        let err = apply_overrides("p", text, &["sweep.k".into()]).unwrap_err();
        assert!(err.to_string().contains("KEY=VALUE"), "{err}");
        let err = apply_overrides("p", text, &["pipeline.name.x=1".into()]).unwrap_err();
        assert!(err.to_string().contains("`name` is not a table"), "{err}");
    }
}
