//! A corpus of awkward text inputs, as real users' files come: every codec Parquet allows,
//! labels of every type, byte-order marks and UTF-16, empty and degenerate files, names with
//! every character a file system allows, changed inputs, impossible N, runtime shortfalls.
//! Each case asserts the right answer: the concepts read, or the exit code and a message that
//! names the user's file and setting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, ListArray, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use negsweep::data::sources::TableFormat;
use negsweep::data::tokenize::{TokenizeConfig, VocabMode};
use negsweep::plan::DataSource;
use negsweep::stages::{ingest, ingest_text};
use negsweep::storage::Store;
use parquet::arrow::ArrowWriter;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{negsweep, shown, write};

fn counted() -> TokenizeConfig {
    TokenizeConfig {
        mode: VocabMode::Counted {
            min_count: 1,
            max_vocab: 1000,
        },
        max_tokens: 64,
    }
}

fn source(format: TableFormat, url: &str) -> DataSource {
    DataSource::Table(negsweep::plan::kinds::Table {
        format,
        url: url.to_owned(),
        text_column: "text".into(),
        label_column: "label".into(),
        tokenize: counted(),
    })
}

/// Ingests `source` into a fresh memory store: the concept of each example, by name.
async fn concepts_of(source: &DataSource) -> negsweep::Result<Vec<String>> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let store = Store::open_str(&format!("memory://awkward-{n}/"), &Default::default()).unwrap();
    ingest_text::write(&store, "d", source, &Default::default()).await?;
    let ex = ingest::load(&store, "d/examples.parquet").await?;
    Ok(ex
        .labels
        .iter()
        .map(|&l| ex.concept_names[l as usize].clone())
        .collect())
}

fn distinct(names: &[String]) -> Vec<String> {
    let mut d = names.to_vec();
    d.sort();
    d.dedup();
    d
}

/// A Parquet file of `text` and `label` columns with `compression`.
fn parquet_file(path: &Path, labels: ArrayRef, compression: Compression) {
    let n = labels.len();
    let texts: Vec<String> = (0..n)
        .map(|i| format!("word{} common text", i % 3))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("label", labels.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(texts)), labels],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn jsonl(rows: &[(&str, &str)]) -> String {
    rows.iter()
        .map(|(t, l)| format!("{{\"text\": \"{t}\", \"label\": {l}}}\n"))
        .collect()
}

#[tokio::test]
async fn parquet_reads_with_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let codecs = [
        ("uncompressed", Compression::UNCOMPRESSED),
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("lz4", Compression::LZ4),
        ("lz4-raw", Compression::LZ4_RAW),
    ];
    for (name, codec) in codecs {
        let path = dir.path().join(format!("{name}.parquet"));
        let labels: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "a", "b", "c"]));
        parquet_file(&path, labels, codec);
        let got = concepts_of(&source(TableFormat::Parquet, path.to_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, ["a", "b", "c", "a", "b", "c"], "{name}");
    }
}

#[tokio::test]
async fn one_value_is_one_concept_however_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // JSONL: integers in one half, the same values as floats in the other.
    let mut rows = Vec::new();
    for (i, l) in ["0", "1", "2", "0.0", "1.0", "2.0", "2e0", "1.00"]
        .iter()
        .enumerate()
    {
        rows.push((["cat sat", "dog ran", "fish swam"][i % 3], *l));
    }
    let p = write(dir.path(), "mixed.jsonl", &jsonl(&rows));
    let got = concepts_of(&source(TableFormat::Jsonl, p.to_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(distinct(&got), ["0", "1", "2"], "3 concepts, not 6");
    assert_eq!(got, ["0", "1", "2", "0", "1", "2", "2", "1"]);

    // JSONL booleans: two concepts.
    let p = write(
        dir.path(),
        "bool.jsonl",
        &jsonl(&[("yes it is", "true"), ("no it is not", "false")]),
    );
    let got = concepts_of(&source(TableFormat::Jsonl, p.to_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(got, ["true", "false"]);

    // CSV: `1.0` is the number 1; `007` is a name and stays one.
    let p = write(
        dir.path(),
        "numbers.csv",
        "text,label\none two,1\nthree four,1.0\nfive,007\nsix,7\n",
    );
    let got = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(got, ["1", "1", "007", "7"]);

    // Parquet: whole floats, dictionary-encoded strings (Polars categoricals), booleans.
    let columns: [(&str, ArrayRef, Vec<&str>); 3] = [
        (
            "floats",
            Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0])),
            vec!["0", "1", "2", "0", "1", "2"],
        ),
        (
            "dictionary",
            Arc::new(
                vec!["x", "y", "z", "x", "y", "z"]
                    .into_iter()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
            vec!["x", "y", "z", "x", "y", "z"],
        ),
        (
            "booleans",
            Arc::new(BooleanArray::from(vec![
                true, false, true, false, true, false,
            ])),
            vec!["true", "false", "true", "false", "true", "false"],
        ),
    ];
    for (name, labels, want) in columns {
        let p = dir.path().join(format!("{name}.parquet"));
        parquet_file(&p, labels, Compression::ZSTD(ZstdLevel::default()));
        let got = concepts_of(&source(TableFormat::Parquet, p.to_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn labels_that_name_no_class_are_data_errors_naming_column_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "frac.jsonl",
            jsonl(&[("a b", "1"), ("c d", "1.5")]),
            "line 2: label `label` 1.5 has a fractional part",
        ),
        (
            "list.jsonl",
            jsonl(&[("a b", "[1, 2]")]),
            "line 1: label `label` is a list",
        ),
        (
            "object.jsonl",
            jsonl(&[("a b", "{\"x\": 1}")]),
            "line 1: label `label` is an object",
        ),
        (
            "null.jsonl",
            jsonl(&[("a b", "null")]),
            "line 1: label `label` is null",
        ),
    ];
    for (name, text, needle) in cases {
        let p = write(dir.path(), name, &text);
        let e = concepts_of(&source(TableFormat::Jsonl, p.to_str().unwrap()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{name}: {e}");
        assert!(e.contains(name), "{name}: the file is named: {e}");
    }
    let p = write(dir.path(), "frac.csv", "text,label\na b,2.5\n");
    let e = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("fractional"), "{e}");

    let p = dir.path().join("frac.parquet");
    parquet_file(
        &p,
        Arc::new(Float64Array::from(vec![1.0, 2.0, 2.25])),
        Compression::SNAPPY,
    );
    let e = concepts_of(&source(TableFormat::Parquet, p.to_str().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 3: label `label` 2.25 has a fractional part"),
        "{e}"
    );

    let p = dir.path().join("list.parquet");
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1)]),
    ]));
    parquet_file(&p, lists, Compression::SNAPPY);
    let e = concepts_of(&source(TableFormat::Parquet, p.to_str().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("label column `label` has type List") && e.contains("list.parquet"),
        "{e}"
    );
}

/// A fault in a field the ingest does not read still makes the line invalid JSON, named with
/// its line; a pipe in place of a file is refused by name, not read as an empty input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_unread_fields_and_pipes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"text": "a b", "label": "x"}"#;
    let cases = [
        (
            r#"{"x": 1e999, "text": "c d", "label": "y"}"#,
            "number out of range",
        ),
        (
            r#"{"text": "c d", "x": "\ud800", "label": "y"}"#,
            "invalid JSON",
        ),
        (
            &format!(
                r#"{{"x": {}{}, "text": "c d", "label": "y"}}"#,
                "[".repeat(130),
                "]".repeat(130)
            ),
            "recursion limit exceeded",
        ),
    ];
    for (i, (line, needle)) in cases.iter().enumerate() {
        let name = format!("unread-{i}.jsonl");
        let p = write(dir.path(), &name, &format!("{good}\n{line}\n"));
        let e = concepts_of(&source(TableFormat::Jsonl, p.to_str().unwrap()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: invalid JSON"), "{name}: {e}");
        assert!(e.contains(needle), "{name}: {e}");
        assert!(e.contains(&name), "{name}: the file is named: {e}");
    }
    let fifo = dir.path().join("pipe.jsonl");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo is needed for this test");
    // A writer, so that opening the pipe for reading does not wait for one.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let _ = std::fs::write(&fifo, format!("{good}\n"));
        })
    };
    let e = concepts_of(&source(TableFormat::Jsonl, fifo.to_str().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pipe.jsonl") && e.contains("not a regular file"),
        "{e}"
    );
    writer.join().unwrap();
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if big_endian {
            &[0xFE, 0xFF]
        } else {
            &[0xFF, 0xFE]
        });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[tokio::test]
async fn byte_order_marks_and_utf16_are_read_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "text,label\nnaïve café,fr\nhello world,en\n";
    let jsonl =
        "{\"text\": \"naïve café\", \"label\": \"fr\"}\n{\"text\": \"hi\", \"label\": \"en\"}\n";
    let files: [(&str, Vec<u8>, TableFormat); 4] = [
        ("le.csv", utf16(csv, false, true), TableFormat::Csv),
        ("be.jsonl", utf16(jsonl, true, true), TableFormat::Jsonl),
        (
            "bom8.csv",
            [&[0xEF, 0xBB, 0xBF][..], csv.as_bytes()].concat(),
            TableFormat::Csv,
        ),
        (
            "bom8.jsonl",
            [&[0xEF, 0xBB, 0xBF][..], jsonl.as_bytes()].concat(),
            TableFormat::Jsonl,
        ),
    ];
    for (name, bytes, format) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let got = concepts_of(&source(format, p.to_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, ["fr", "en"], "{name}");
    }
    // A text folder's files likewise.
    for (class, bytes) in [
        ("fr", utf16("naïve café", false, true)),
        ("en", [&[0xEF, 0xBB, 0xBF][..], b"hello world"].concat()),
    ] {
        std::fs::create_dir_all(dir.path().join("folder").join(class)).unwrap();
        std::fs::write(dir.path().join("folder").join(class).join("a.txt"), bytes).unwrap();
    }
    let folder = DataSource::TextFolder(negsweep::plan::kinds::TextFolder {
        url: dir.path().join("folder").display().to_string(),
        tokenize: counted(),
    });
    assert_eq!(concepts_of(&folder).await.unwrap(), ["en", "fr"]);
    // UTF-16 without a byte-order mark: named as such, not as a missing column.
    let p = dir.path().join("nobom.csv");
    std::fs::write(&p, utf16(csv, false, false)).unwrap();
    let e = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("UTF-16") && e.contains("nobom.csv"), "{e}");
    assert!(!e.contains("no `text` column"), "{e}");
}

#[tokio::test]
async fn odd_but_valid_layouts_read() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, TableFormat, &[&str]); 5] = [
        (
            "crlf.jsonl",
            "{\"text\": \"a b\", \"label\": \"x\"}\r\n{\"text\": \"c d\", \"label\": \"y\"}\r\n",
            TableFormat::Jsonl,
            &["x", "y"],
        ),
        (
            "no-final-newline.jsonl",
            "\n\n{\"text\": \"a b\", \"label\": \"x\"}\n\n{\"text\": \"c\", \"label\": \"y\"}",
            TableFormat::Jsonl,
            &["x", "y"],
        ),
        (
            "multiline.csv",
            "label,text\nx,\"first line\nsecond line\"\ny,\"a, b and \"\"c\"\"\"\n",
            TableFormat::Csv,
            &["x", "y"],
        ),
        (
            "extra-columns.csv",
            "id,text,label,score\n1,a b,x,0.5\n2,c d,y,0.7\n",
            TableFormat::Csv,
            &["x", "y"],
        ),
        (
            "unicode-labels.jsonl",
            "{\"text\": \"a\", \"label\": \"猫\"}\n{\"text\": \"b\", \"label\": \"🐕 dog\"}\n",
            TableFormat::Jsonl,
            &["猫", "🐕 dog"],
        ),
    ];
    for (name, text, format, want) in cases {
        let p = write(dir.path(), name, text);
        let got = concepts_of(&source(format, p.to_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn empty_inputs_name_the_users_file_and_what_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty.jsonl", "", TableFormat::Jsonl, "holds no records"),
        (
            "blank-lines.jsonl",
            "\n\n  \n",
            TableFormat::Jsonl,
            "holds no records",
        ),
        (
            "header.csv",
            "text,label\n",
            TableFormat::Csv,
            "holds no records",
        ),
        (
            "blank.jsonl",
            "{\"text\": \" \", \"label\": 1}\n{\"text\": null, \"label\": 2}\n{\"text\": \"\", \"label\": 2}\n",
            TableFormat::Jsonl,
            "every record was skipped (3 blank texts)",
        ),
        (
            "no-words.jsonl",
            "{\"text\": \"!!! ...\", \"label\": 1}\n{\"text\": \"__ --\", \"label\": 2}\n",
            TableFormat::Jsonl,
            "no examples: no word (letters or digits) in the 2 texts read",
        ),
        (
            "no-words.csv",
            "text,label\n?,a\n",
            TableFormat::Csv,
            "no examples: no word (letters or digits) in the 1 text read",
        ),
    ];
    for (name, text, format, needle) in cases {
        let p = write(dir.path(), name, text);
        let e = concepts_of(&source(format, p.to_str().unwrap()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{name}: {e}");
        assert!(e.contains(name), "{name}: names the user's file: {e}");
        assert!(
            !e.contains("datasets/"),
            "{name}: not the cache folder: {e}"
        );
    }
}

/// A pipeline reading one JSONL or CSV dataset at `url`.
fn pipeline(output: &Path, kind: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[pipeline]
name = "awkward"
output = "{}"

[[datasets]]
kind = "{kind}"
name = "corpus"
url = "{url}"
tokenize = {{ min-count = 1 }}

[train]
dim = 4
hidden = 8
batch-size = 8
epochs = 1
checkpoints = false

[eval]
probe-epochs = 0

{extra}
"#,
        output.display()
    )
}

/// A JSONL corpus of `concepts` x `per` texts.
fn corpus(concepts: usize, per: usize) -> String {
    let mut out = String::new();
    for c in 0..concepts {
        for i in 0..per {
            out.push_str(&format!(
                "{{\"text\": \"topic{c} word{i} shared words here\", \"label\": \"c{c}\"}}\n"
            ));
        }
    }
    out
}

fn run(dir: &Path, args: &[&str], pipeline_text: &str) -> std::process::Output {
    let file = write(dir, "p.toml", pipeline_text);
    negsweep()
        .args(args)
        .arg(&file)
        .arg("--quiet")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn awkward_file_names_work_as_paths_and_as_urls() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "données.jsonl",
        "my data/acc 50% split.jsonl",
        "a#b+c (1) [x] 'q'.jsonl",
        "emoji 🐱/名前.jsonl",
        "semi;colon&amp=eq,comma.jsonl",
        "%41literal percent.jsonl",
    ];
    for (i, name) in names.iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, corpus(2, 4)).unwrap();
        let url = url::Url::from_file_path(&path).unwrap().to_string();
        for (how, location) in [("path", path.display().to_string()), ("url", url)] {
            let out = dir.path().join(format!("out-{i}-{how}"));
            let p = pipeline(
                &out,
                "jsonl",
                &location.replace('\\', "\\\\"),
                "[sweep]\nk = [1]\nseed = [0]",
            );
            let o = run(dir.path(), &["run"], &p);
            assert_eq!(o.status.code(), Some(0), "{name} as a {how}: {}", shown(&o));
        }
    }
}

#[test]
fn validate_and_plan_check_that_each_input_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", &corpus(2, 4));
    let out = dir.path().join("out");
    let truncated = dir.path().join("cut.parquet");
    parquet_file(
        &truncated,
        Arc::new(StringArray::from(vec!["a", "b"])),
        Compression::ZSTD(ZstdLevel::default()),
    );
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 20]).unwrap();
    let wrong_columns = write(dir.path(), "cols.csv", "body,topic\na,b\n");
    let list_labels = dir.path().join("list.parquet");
    parquet_file(
        &list_labels,
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
        ])),
        Compression::GZIP(GzipLevel::default()),
    );
    let cases: [(&str, PathBuf, &[&str]); 4] = [
        (
            "jsonl",
            dir.path().join("missing.jsonl"),
            &["missing.jsonl", "no such file"],
        ),
        (
            "parquet",
            truncated,
            &["cut.parquet", "not a readable Parquet file"],
        ),
        (
            "csv",
            wrong_columns,
            &["cols.csv", "no `text` column (columns: body, topic)"],
        ),
        ("parquet", list_labels, &["list.parquet", "has type List"]),
    ];
    for (kind, path, needles) in cases {
        let p = pipeline(&out, kind, path.to_str().unwrap(), "");
        for cmd in ["validate", "plan"] {
            let o = run(dir.path(), &[cmd], &p);
            assert_eq!(o.status.code(), Some(3), "{cmd} {path:?}: {}", shown(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("datasets[0] (`corpus`)"), "{cmd}: {err}");
            for n in needles {
                assert!(err.contains(n), "{cmd}: `{n}` in {err}");
            }
        }
    }
    let p = pipeline(&out, "jsonl", good.to_str().unwrap(), "");
    let o = run(dir.path(), &["validate"], &p);
    assert_eq!(o.status.code(), Some(0), "{}", shown(&o));
}

#[test]
fn a_changed_input_is_read_again_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.jsonl", &corpus(2, 4));
    let out = dir.path().join("out");
    let p = pipeline(
        &out,
        "jsonl",
        file.to_str().unwrap(),
        "[sweep]\nk = [1, 2]\nseed = [0]",
    );
    let first = run(dir.path(), &["run"], &p);
    assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
    let again = run(dir.path(), &["run"], &p);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to compute"),
        "{}",
        shown(&again)
    );
    // Another corpus behind the same path, same size or not: new points on the new data.
    std::fs::write(&file, corpus(3, 4)).unwrap();
    let file_out = negsweep()
        .args(["run"])
        .arg(dir.path().join("p.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(file_out.status.code(), Some(0), "{}", shown(&file_out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&file_out.stdout),
        String::from_utf8_lossy(&file_out.stderr)
    );
    assert!(text.contains("computed 2 points"), "{text}");
    assert!(text.contains("the input changed"), "{text}");
    let datasets: Vec<_> = std::fs::read_dir(out.join("datasets")).unwrap().collect();
    assert_eq!(datasets.len(), 2, "the new content is ingested on its own");
}

#[test]
fn impossible_n_stops_before_any_training_listing_the_possible_n() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.jsonl", &corpus(8, 6));
    let out = dir.path().join("out");
    let p = pipeline(
        &out,
        "jsonl",
        file.to_str().unwrap(),
        "[sweep]\nk = [1]\nseed = [0]\nn = [4, 12]",
    );
    let o = run(dir.path(), &["run"], &p);
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`sweep.n`: N = 12"), "{err}");
    assert!(err.contains("8 of them with at least 4 examples"), "{err}");
    assert!(err.contains("possible N: 2 to 8"), "{err}");
    assert!(err.contains("c.jsonl"), "{err}");
    assert!(!out.join("results").exists(), "no point trained");
}

#[test]
fn in_batch_shortfalls_are_config_errors_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    // 8 texts, 2 concepts: 1 test and 3 training examples per concept.
    let file = write(dir.path(), "c.jsonl", &corpus(2, 4));
    let out = dir.path().join("out");
    let p = pipeline(
        &out,
        "jsonl",
        file.to_str().unwrap(),
        "[negatives]\nstrategy = \"in-batch\"\n[sweep]\nk = [1, 6]\nseed = [0]\nbatch-size = [64]",
    )
    .replace("batch-size = 8\n", "");
    for _ in 0..2 {
        let o = run(dir.path(), &["run"], &p);
        assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("in-batch negatives: k = 6 needs batches of at least 7 anchors"),
            "{err}"
        );
        assert!(err.contains("the training split has 6 anchors"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn advise_on_a_pipeline_agrees_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Imbalanced: concept c has 4 + 3c texts; one concept with 3 falls under min-examples.
    let mut text = corpus(0, 0);
    for c in 0..10 {
        for i in 0..(4 + 3 * c) {
            text.push_str(&format!(
                "{{\"text\": \"topic{c} w{i} shared\", \"label\": \"c{c}\"}}\n"
            ));
        }
    }
    text.push_str(&"{\"text\": \"rare\", \"label\": \"rare\"}\n".repeat(3));
    let file = write(dir.path(), "c.jsonl", &text);
    let out = dir.path().join("out");
    let p = pipeline(
        &out,
        "jsonl",
        file.to_str().unwrap(),
        "[concepts]\nmax-examples = 20\n[sweep]\nk = [1, 2, 4, 8, 16, 32]\nseed = [0]",
    );
    let o = run(dir.path(), &["advise"], &p);
    assert_eq!(o.status.code(), Some(0), "{}", shown(&o));
    let advice = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        advice.contains("N = 10"),
        "the rare concept is left out: {advice}"
    );
    let r = run(dir.path(), &["run"], &p);
    assert_eq!(r.status.code(), Some(0), "{}", shown(&r));
    let file = std::fs::File::open(out.join("best_k.parquet")).unwrap();
    let best = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let k_theory = best
        .column_by_name("k_theory")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::UInt32Array>()
        .unwrap()
        .value(0);
    assert!(
        advice.contains(&format!("(best {k_theory})")),
        "advise and the run agree on k* = {k_theory}: {advice}"
    );
}

/// A Hugging Face image Parquet file: 8 x 8 PNGs, `labels`, written with `compression`.
fn image_parquet(path: &Path, labels: ArrayRef, compression: Compression) {
    use arrow::array::{BinaryArray, StructArray};
    use arrow::datatypes::Fields;
    let rows = labels.len();
    let pngs: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            let px: Vec<u8> = (0..64)
                .map(|p| if p % 3 == i % 3 { 250 } else { 5 })
                .collect();
            negsweep::data::image_files::encode_png(&px, 8).unwrap()
        })
        .collect();
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let image = StructArray::new(
        fields.clone(),
        vec![
            Arc::new(BinaryArray::from_iter_values(pngs.iter())) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("{i}.png")),
            )),
        ],
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Struct(fields), false),
        Field::new("label", labels.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(image), labels]).unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[tokio::test]
async fn image_parquet_reads_with_every_codec_and_checks_its_labels() {
    use negsweep::data::hf_images as ingest_hf;
    use negsweep::data::image_files::Color;
    let dir = tempfile::tempdir().unwrap();
    let ints = || -> ArrayRef { Arc::new(arrow::array::Int64Array::from(vec![0, 1, 2, 0, 1, 2])) };
    // Each file is read as 8 x 8 grey images, labels from the `label` column.
    let read = |p: &std::path::Path| {
        let p = p.to_str().unwrap().to_owned();
        async move { ingest_hf::read(&p, None, "label", 8, Color::Grey, &Default::default()).await }
    };
    for (name, codec) in [
        ("zstd", Compression::ZSTD(ZstdLevel::default())),
        ("gzip", Compression::GZIP(GzipLevel::default())),
        ("brotli", Compression::BROTLI(BrotliLevel::default())),
        ("lz4-raw", Compression::LZ4_RAW),
    ] {
        let p = dir.path().join(format!("{name}.parquet"));
        image_parquet(&p, ints(), codec);
        let ex = read(&p).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ex.labels, [0, 1, 2, 0, 1, 2], "{name}");
    }
    // Whole floats are class indices; a fraction is never truncated to one.
    let p = dir.path().join("floats.parquet");
    image_parquet(
        &p,
        Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0])),
        Compression::SNAPPY,
    );
    let ex = read(&p).await.unwrap();
    assert_eq!(ex.labels, [0, 1, 2]);
    let p = dir.path().join("fraction.parquet");
    image_parquet(
        &p,
        Arc::new(Float64Array::from(vec![0.0, 1.5])),
        Compression::SNAPPY,
    );
    let e = read(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("record 2: label `label` 1.5 has a fractional part"),
        "{e}"
    );
    let p = dir.path().join("names.parquet");
    image_parquet(
        &p,
        Arc::new(StringArray::from(vec!["a", "b"])),
        Compression::SNAPPY,
    );
    let e = read(&p).await.unwrap_err().to_string();
    assert!(
        e.contains("label column `label` has type Utf8") && e.contains("class index"),
        "{e}"
    );
}

#[test]
fn a_moved_or_copied_input_keeps_its_points_and_one_file_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.jsonl", &corpus(2, 4));
    let out = dir.path().join("out");
    let sweep = "[sweep]\nk = [1, 2]\nseed = [0]";
    let first = run(
        dir.path(),
        &["run"],
        &pipeline(&out, "jsonl", file.to_str().unwrap(), sweep),
    );
    assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
    std::fs::create_dir_all(dir.path().join("moved here")).unwrap();
    let moved = dir.path().join("moved here/renamed.jsonl");
    std::fs::rename(&file, &moved).unwrap();
    let again = run(
        dir.path(),
        &["run"],
        &pipeline(&out, "jsonl", moved.to_str().unwrap(), sweep),
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to compute"),
        "the same bytes elsewhere are the same dataset: {}",
        shown(&again)
    );
    // Two entries reading one content under two names would be one dataset trained twice.
    std::fs::copy(&moved, dir.path().join("copy.jsonl")).unwrap();
    let twice = pipeline(&out, "jsonl", moved.to_str().unwrap(), sweep).replace(
        "[train]",
        &format!(
            "[[datasets]]\nkind = \"jsonl\"\nname = \"copy\"\nurl = \"{}\"\ntokenize = {{ min-count = 1 }}\n\n[train]",
            dir.path().join("copy.jsonl").display()
        ),
    );
    let o = run(dir.path(), &["plan"], &twice);
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`datasets[1]`") && err.contains("holds the same data"),
        "{err}"
    );
}

#[test]
fn hidden_files_added_to_a_folder_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for c in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join("texts").join(c)).unwrap();
        for i in 0..4 {
            write(
                &dir.path().join("texts").join(c),
                &format!("{i}.txt"),
                &format!("{c} word{i} shared"),
            );
        }
    }
    let out = dir.path().join("out");
    let p = pipeline(
        &out,
        "text-folder",
        dir.path().join("texts").to_str().unwrap(),
        "[sweep]\nk = [1]\nseed = [0]",
    );
    let first = run(dir.path(), &["run"], &p);
    assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
    write(&dir.path().join("texts/a"), ".DS_Store", "finder");
    std::fs::create_dir_all(dir.path().join("texts/.ipynb_checkpoints")).unwrap();
    write(
        &dir.path().join("texts/.ipynb_checkpoints"),
        "x.txt",
        "copy",
    );
    let again = run(dir.path(), &["run"], &p);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to compute"),
        "{}",
        shown(&again)
    );
}

#[test]
fn more_degenerate_inputs_are_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A 0-byte file: said so, not a storage error.
    let empty = write(dir.path(), "empty.csv", "");
    let o = run(
        dir.path(),
        &["validate"],
        &pipeline(&out, "csv", empty.to_str().unwrap(), ""),
    );
    assert_eq!(o.status.code(), Some(3), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("empty.csv: the file is empty (0 bytes)"),
        "{err}"
    );
    assert!(!err.contains("storage"), "{err}");
    // Only blank lines (CRLF): no header, said before anything runs.
    let blank = write(dir.path(), "blank.csv", "\r\n\r\n");
    let o = run(
        dir.path(),
        &["validate"],
        &pipeline(&out, "csv", blank.to_str().unwrap(), ""),
    );
    assert_eq!(o.status.code(), Some(3), "{}", shown(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("blank.csv: no header row"),
        "{}",
        shown(&o)
    );
    // An image Parquet file whose labels are names, not class indices.
    let hf = dir.path().join("names.parquet");
    image_parquet(
        &hf,
        Arc::new(StringArray::from(vec!["a", "b"])),
        Compression::SNAPPY,
    );
    let p = format!(
        "[pipeline]\nname = \"x\"\noutput = \"{}\"\n[[datasets]]\nkind = \"hf-images\"\nname = \"hf\"\nurl = \"{}\"\nsize = 8\n",
        out.display(),
        hf.display()
    );
    let o = run(dir.path(), &["validate"], &p);
    assert_eq!(o.status.code(), Some(3), "{}", shown(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("label column `label` has type Utf8"),
        "{}",
        shown(&o)
    );
    // advise refuses an impossible N as a run does: exit 2, the key and the possible N.
    let file = write(dir.path(), "c.jsonl", &corpus(3, 6));
    let o = run(
        dir.path(),
        &["advise"],
        &pipeline(
            &out,
            "jsonl",
            file.to_str().unwrap(),
            "[sweep]\nk = [1]\nn = [9]",
        ),
    );
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`sweep.n`: N = 9") && err.contains("possible N: 2 to 3"),
        "{err}"
    );
}

#[tokio::test]
async fn crlf_line_numbers_and_spreadsheet_unicode_text() {
    let dir = tempfile::tempdir().unwrap();
    // Line 4 holds the fractional label, with CRLF and with LF endings alike.
    for (name, end) in [("crlf.csv", "\r\n"), ("lf.csv", "\n")] {
        let text = ["text,label", "a b,1", "c d,2", "e f,2.5", "g h,1"].join(end) + end;
        let p = write(dir.path(), name, &text);
        let e = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4: label `label`"), "{name}: {e}");
        let text = ["text,label", "a b,1", "c d,2,extra", "g h,1"].join(end) + end;
        let p = write(dir.path(), &format!("fields-{name}"), &text);
        let e = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3: 3 fields, where the header has 2"),
            "{name}: {e}"
        );
    }
    // A spreadsheet's "Unicode text": UTF-16 with a byte-order mark, tab-separated, CRLF.
    let p = dir.path().join("unicode text.csv");
    std::fs::write(
        &p,
        utf16(
            "text\tlabel\r\nnaïve café\tfr\r\nhello, world\ten\r\n",
            false,
            true,
        ),
    )
    .unwrap();
    let got = concepts_of(&source(TableFormat::Csv, p.to_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(got, ["fr", "en"]);
}

#[test]
fn an_unusable_temporary_folder_is_named_before_anything_runs() {
    // A counted vocabulary keeps the texts in TMPDIR while it counts; `validate` says so early,
    // `run` fails the same way, and a hashed vocabulary needs no temporary file.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.jsonl", &corpus(2, 4));
    let missing = dir.path().join("no such folder");
    let p = pipeline(
        &dir.path().join("out"),
        "jsonl",
        file.to_str().unwrap(),
        "[sweep]\nk = [1]\nseed = [0]",
    );
    let pipeline_file = write(dir.path(), "p.toml", &p);
    for args in [&["validate"][..], &["run", "--quiet"]] {
        let o = negsweep()
            .args(args)
            .arg(&pipeline_file)
            .env("TMPDIR", &missing)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", shown(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("set TMPDIR"),
            "{args:?}: {err}"
        );
    }
    let hashed = p.replace("{ min-count = 1 }", "{ hash-buckets = 64 }");
    let o = negsweep()
        .arg("validate")
        .arg(write(dir.path(), "h.toml", &hashed))
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", shown(&o));
}
