//! Labels as concept names: one canonical text per value, whatever the file wrote.
//!
//! A concept is named by its label's value, not by how the file spelled it, so `1`, `1.0` and
//! `1e0` are one concept. Accepted label types:
//!
//! | source | accepted | concept name |
//! |---|---|---|
//! | any | strings | the string, exactly |
//! | any | integers (any width, signed or not) | decimal, `-3`, `7` |
//! | any | floats holding a whole number (`1.0`, `2e0`, `1e20`) | the integer, `1` |
//! | JSONL, Parquet | booleans | `true`, `false` |
//! | Parquet | decimals holding a whole number; dictionary-encoded strings (categoricals) | as above |
//!
//! Rejected, as a data error naming the column (and the record where the value is at fault):
//! floats with a fractional part, NaN or infinities, nulls, lists, structs, maps, binary and
//! temporal columns. CSV has no types: a field that reads as a decimal number with a point or an
//! exponent (`1.0`, `2.50`, `3e2`) is a float, every other field is a string (`007` stays
//! `007`).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type};

/// What a label type is called in messages.
const ACCEPTED: &str =
    "a label must be a string, an integer, a boolean or a float holding a whole number";

/// The concept name of a float label: the integer it holds.
///
/// # Errors
/// A fractional, non-finite or too large value, with the reason.
pub fn float(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Err(format!("{v:?} is not a finite number; {ACCEPTED}"));
    }
    if v.fract() != 0.0 {
        // Debug, not Display: 1e-300 as written, not as 300 zeros.
        return Err(format!(
            "{v:?} has a fractional part, so it names no class; {ACCEPTED}"
        ));
    }
    // -0.0 and 0.0 are one value; whole floats beyond i64 print exactly as integers too.
    Ok(if v == 0.0 {
        "0".to_owned()
    } else {
        format!("{v:.0}")
    })
}

/// The concept name of a JSON label.
///
/// # Errors
/// A null, array, object or non-whole number, with its JSON type.
pub fn json(v: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Ok(u.to_string())
            } else {
                float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::Null => Err(format!("is null; {ACCEPTED}")),
        Value::Array(_) => Err(format!("is a list; {ACCEPTED}")),
        Value::Object(_) => Err(format!("is an object; {ACCEPTED}")),
    }
}

/// The concept name of a CSV label field.
///
/// # Errors
/// A decimal number with a fractional part, with the reason.
pub fn text(field: &str) -> Result<String, String> {
    let t = field.trim();
    let numeric = t.contains(['.', 'e', 'E'])
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.bytes().any(|b| b.is_ascii_digit());
    match t.parse::<f64>() {
        Ok(v) if numeric => float(v),
        _ => Ok(field.to_owned()),
    }
}

/// Checks that an Arrow column of type `dt` can hold labels.
///
/// # Errors
/// The type and what is accepted instead.
pub fn check_type(dt: &DataType) -> Result<(), String> {
    if is_accepted(dt) {
        Ok(())
    } else {
        Err(format!("has type {dt}; {ACCEPTED}"))
    }
}

fn is_accepted(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        DataType::Dictionary(_, v) => is_accepted(v),
        dt => dt.is_integer() || dt.is_floating() || is_decimal(dt),
    }
}

fn is_decimal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// Concept names of an Arrow label column, row by row (`None` for a null).
///
/// # Errors
/// `(row, reason)`: the 0-based row at fault (0 for a type error) and why.
pub fn column(col: &ArrayRef) -> Result<Vec<Option<String>>, (usize, String)> {
    let dt = col.data_type();
    check_type(dt).map_err(|m| (0, m))?;
    let value_type = match dt {
        DataType::Dictionary(_, v) => v.as_ref(),
        dt => dt,
    };
    let cast = |to: &DataType| {
        arrow::compute::cast(col, to).map_err(|e| (0, format!("cannot be read as labels: {e}")))
    };
    if value_type.is_floating() || is_decimal(value_type) {
        let f = cast(&DataType::Float64)?;
        let f = f.as_primitive::<Float64Type>();
        return (0..f.len())
            .map(|i| {
                if f.is_null(i) {
                    Ok(None)
                } else {
                    float(f.value(i)).map(Some).map_err(|m| (i, m))
                }
            })
            .collect();
    }
    let s = cast(&DataType::Utf8)?;
    let s = s.as_string::<i32>();
    Ok((0..s.len())
        .map(|i| (!s.is_null(i)).then(|| s.value(i).to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Float32Array, Float64Array, Int8Array, ListArray, StringArray, UInt64Array,
    };
    use arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn whole_floats_are_their_integers() {
        assert_eq!(float(1.0).unwrap(), "1");
        assert_eq!(float(-0.0).unwrap(), "0");
        assert_eq!(float(-3.0).unwrap(), "-3");
        assert!(float(1.5).unwrap_err().contains("fractional"));
        let tiny = float(1e-300).unwrap_err();
        assert!(tiny.starts_with("1e-300 has a fractional part"), "{tiny}");
        assert!(float(f64::NAN).is_err());
        assert!(float(f64::INFINITY).is_err());
        assert_eq!(float(1e20).unwrap(), "100000000000000000000");
        assert_eq!(
            json(&serde_json::from_str("100000000000000000000").unwrap()).unwrap(),
            "100000000000000000000",
            "an integer too large for u64 is the same value as the float"
        );
    }

    #[test]
    fn json_numbers_of_one_value_are_one_label() {
        let v = |s: &str| json(&serde_json::from_str(s).unwrap());
        for s in ["2", "2.0", "2e0", "20e-1", "2.000"] {
            assert_eq!(v(s).unwrap(), "2", "{s}");
        }
        assert_eq!(v("\"2.0\"").unwrap(), "2.0", "a string is a name, exactly");
        assert_eq!(v("true").unwrap(), "true");
        assert_eq!(v("18446744073709551615").unwrap(), "18446744073709551615");
        assert!(v("2.5").unwrap_err().contains("fractional"));
        assert!(v("null").unwrap_err().contains("null"));
        assert!(v("[1]").unwrap_err().contains("list"));
        assert!(v("{\"a\": 1}").unwrap_err().contains("object"));
    }

    #[test]
    fn csv_fields_are_text_unless_written_as_decimals() {
        assert_eq!(text("1.0").unwrap(), "1");
        assert_eq!(text(" 3e2 ").unwrap(), "300");
        assert_eq!(text("1").unwrap(), "1");
        assert_eq!(text("007").unwrap(), "007");
        assert_eq!(text("v1.2").unwrap(), "v1.2");
        assert_eq!(text("1.2.3").unwrap(), "1.2.3");
        assert_eq!(text("e").unwrap(), "e");
        assert_eq!(text("cat").unwrap(), "cat");
        assert!(text("2.5").unwrap_err().contains("fractional"));
        // Every source reads floats through `float`: a CSV field names the value as written.
        let tiny = text("1e-300").unwrap_err();
        assert!(tiny.starts_with("1e-300 has a fractional part"), "{tiny}");
    }

    #[test]
    fn arrow_columns_give_canonical_names_or_say_why_not() {
        let ints: ArrayRef = Arc::new(Int8Array::from(vec![Some(1), None, Some(-2)]));
        assert_eq!(
            column(&ints).unwrap(),
            vec![Some("1".into()), None, Some("-2".into())]
        );
        let floats: ArrayRef = Arc::new(Float32Array::from(vec![1.0, 2.0]));
        assert_eq!(
            column(&floats).unwrap(),
            vec![Some("1".into()), Some("2".into())]
        );
        let frac: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.5]));
        let (row, m) = column(&frac).unwrap_err();
        assert_eq!(row, 1);
        assert!(m.contains("2.5"), "{m}");
        let big: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
        assert_eq!(column(&big).unwrap(), vec![Some(u64::MAX.to_string())]);
        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        assert_eq!(
            column(&b).unwrap(),
            vec![Some("true".into()), Some("false".into())]
        );
        let dict: ArrayRef = Arc::new(
            vec!["a", "b", "a"]
                .into_iter()
                .collect::<arrow::array::DictionaryArray<Int32Type>>(),
        );
        assert_eq!(
            column(&dict).unwrap(),
            vec![Some("a".into()), Some("b".into()), Some("a".into())]
        );
        let s: ArrayRef = Arc::new(StringArray::from(vec!["1.0"]));
        assert_eq!(column(&s).unwrap(), vec![Some("1.0".into())]);
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
        ]));
        let (_, m) = column(&list).unwrap_err();
        assert!(m.contains("List"), "{m}");
    }
}
