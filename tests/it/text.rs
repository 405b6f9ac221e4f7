//! Text sources on files the tests write (CSV, JSONL, Parquet, folders), bad inputs, and the
//! WordNet pipeline on the real database.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use negsweep::data::Features;
use negsweep::data::sources::TableFormat;
use negsweep::data::tokenize::{TokenizeConfig, VocabMode};
use negsweep::plan::DataSource;
use negsweep::plan::kinds::{Table, TextFolder};
use negsweep::stages::{ingest, ingest_text};
use negsweep::storage::{Store, encode_parquet, read_parquet};

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

fn table(format: TableFormat, path: &Path, text: &str, label: &str) -> DataSource {
    DataSource::Table(Table {
        format,
        url: path.display().to_string(),
        text_column: text.into(),
        label_column: label.into(),
        tokenize: counted(),
    })
}

/// Ingests `source` into a fresh memory store; the report and the examples read back.
async fn ingest(
    source: &DataSource,
) -> negsweep::Result<(ingest_text::TextIngest, negsweep::data::Examples, Store)> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let store = Store::open_str(&format!("memory://text-{n}/"), &Default::default()).unwrap();
    let report = ingest_text::write(&store, "d", source, &Default::default()).await?;
    let ex = ingest::load(&store, "d/examples.parquet").await?;
    Ok((report, ex, store))
}

fn tokens(ex: &negsweep::data::Examples) -> &[Vec<u32>] {
    match &ex.features {
        Features::Tokens { seqs, .. } => seqs,
        Features::Pixels { .. } => panic!("text expected"),
    }
}

#[tokio::test]
async fn jsonl_csv_parquet_and_folders_read_the_same_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("The cat sat", "animal"),
        ("A dog barked", "animal"),
        ("Red apples", "food"),
        ("  ", "food"),
        ("Fresh bread", "food"),
    ];
    let jsonl: String = rows
        .iter()
        .map(|(t, l)| format!("{}\n", serde_json::json!({"text": t, "label": l, "id": 1})))
        .collect();
    let csv: String = std::iter::once("label,text\n".to_owned())
        .chain(rows.iter().map(|(t, l)| format!("{l},\"{t}\"\n")))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("body", DataType::Utf8, true),
        Field::new("topic", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.parquet"),
        encode_parquet(schema, &[batch]).unwrap(),
    )
    .unwrap();
    for (i, (text, label)) in rows.iter().enumerate() {
        let sub = dir.path().join("folder").join(label);
        std::fs::create_dir_all(&sub).unwrap();
        write(&sub, &format!("{i}.txt"), text);
    }
    write(&dir.path().join("folder"), "README", "not an example");
    let sources = [
        table(
            TableFormat::Jsonl,
            &write(dir.path(), "c.jsonl", &jsonl),
            "text",
            "label",
        ),
        table(
            TableFormat::Csv,
            &write(dir.path(), "c.csv", &csv),
            "text",
            "label",
        ),
        table(
            TableFormat::Parquet,
            &dir.path().join("c.parquet"),
            "body",
            "topic",
        ),
    ];
    let mut seen = Vec::new();
    for source in &sources {
        let (report, ex, store) = ingest(source).await.unwrap();
        assert_eq!(report.examples, 4, "{source:?}");
        assert_eq!(report.skipped.empty_text, 1, "the blank text is counted");
        assert_eq!(ex.concept_names, ["animal", "food"]);
        assert_eq!(ex.labels, [0, 0, 1, 1]);
        let (_, vocab) = read_parquet(&store, "d/vocab.parquet").await.unwrap();
        assert_eq!(vocab[0].num_rows(), report.vocab as usize);
        seen.push(tokens(&ex).to_vec());
    }
    // The same file through an object store URL.
    let remote = Store::open_str("memory://text-remote/", &Default::default()).unwrap();
    remote
        .put("in/c.jsonl", jsonl.clone().into())
        .await
        .unwrap();
    let source = DataSource::Table(Table {
        format: TableFormat::Jsonl,
        url: "memory://text-remote/in/c.jsonl".into(),
        text_column: "text".into(),
        label_column: "label".into(),
        tokenize: counted(),
    });
    let (_, ex, _) = ingest(&source).await.unwrap();
    seen.push(tokens(&ex).to_vec());
    assert_eq!(seen.len(), 4);
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "same tokens from each format"
    );
    // A folder: one example per file, sorted by path; the stray README is counted.
    let folder = DataSource::TextFolder(TextFolder {
        url: dir.path().join("folder").display().to_string(),
        tokenize: counted(),
    });
    let (report, ex, _) = ingest(&folder).await.unwrap();
    assert_eq!((report.examples, report.skipped.stray_files), (4, 1));
    assert_eq!(ex.concept_names, ["animal", "food"]);
}

#[tokio::test]
async fn text_folders_skip_hidden_nested_and_other_files_and_take_any_class_name() {
    // (path under the folder, text); only `<class>/<file>.txt` outside hidden folders is read.
    let files = [
        ("animal/1.txt", "the cat sat"),
        ("animal/.ipynb_checkpoints/1-checkpoint.txt", "the cat sat"),
        (".ipynb_checkpoints/animal/1.txt", "a hidden copy"),
        ("animal/.notes.txt", "hidden"),
        ("animal/.DS_Store", "junk"),
        ("animal/sub/2.txt", "nested too deep"),
        ("animal/photo.png", "not text"),
        ("README", "stray"),
        ("naïve/1.txt", "an innocent reader"),
        ("50% off #1 + more/a b.txt", "prices fall"),
        ("it's \"quoted\"/q.txt", "she said so"),
        ("tomato/1.txt", "a red fruit"),
        ("tomato cherry/1.txt", "a small red fruit"),
        ("tomato-maroon/1.txt", "a dark red fruit"),
    ];
    let want_concepts = [
        "50% off #1 + more",
        "animal",
        "it's \"quoted\"",
        "naïve",
        "tomato",
        "tomato cherry",
        "tomato-maroon",
    ];
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("by topic/données");
    let memory = Store::open_str(
        "memory://text-awkward/by%20topic/donn%C3%A9es/",
        &Default::default(),
    )
    .unwrap();
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        memory
            .put(rel, text.as_bytes().to_vec().into())
            .await
            .unwrap();
    }
    for url in [
        root.display().to_string(),
        "memory://text-awkward/by%20topic/donn%C3%A9es/".to_owned(),
    ] {
        let folder = DataSource::TextFolder(TextFolder {
            url: url.clone(),
            tokenize: counted(),
        });
        let (report, ex, _) = ingest(&folder).await.unwrap();
        let mut concepts = ex.concept_names.clone();
        concepts.sort();
        assert_eq!(concepts, want_concepts, "{url}");
        assert_eq!((report.examples, report.concepts), (7, 7), "{url}");
        let s = &report.skipped;
        assert_eq!(
            (s.hidden_files, s.nested_files, s.stray_files, s.empty_text),
            (4, 1, 1, 0),
            "{url}"
        );
        assert_eq!(
            s.other_formats,
            std::collections::BTreeMap::from([("png".to_owned(), 1)]),
            "{url}"
        );
        // Every text is under its own folder's name.
        for (i, &l) in ex.labels.iter().enumerate() {
            let name = &ex.concept_names[l as usize];
            let text = files
                .iter()
                .find(|(rel, _)| rel.starts_with(&format!("{name}/")))
                .unwrap()
                .1;
            assert_eq!(
                tokens(&ex)[i].len(),
                text.split(' ').count(),
                "{url}: {name}"
            );
        }
    }
}

#[tokio::test]
async fn integer_labels_hugging_face_layout_and_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("label", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["one two", "three", "One one"])),
            Arc::new(Int64Array::from(vec![7, 3, 7])),
        ],
    )
    .unwrap();
    let path = dir.path().join("hf.parquet");
    std::fs::write(&path, encode_parquet(schema, &[batch]).unwrap()).unwrap();
    let DataSource::Table(Table {
        format,
        url,
        text_column,
        label_column,
        ..
    }) = table(TableFormat::Parquet, &path, "text", "label")
    else {
        unreachable!()
    };
    let hashed = DataSource::Table(Table {
        format,
        url,
        text_column,
        label_column,
        tokenize: TokenizeConfig {
            mode: VocabMode::Hashed { buckets: 32 },
            max_tokens: 1,
        },
    });
    let (report, ex, store) = ingest(&hashed).await.unwrap();
    assert_eq!(ex.concept_names, ["7", "3"]);
    assert_eq!(report.vocab, 32);
    let t = tokens(&ex);
    assert!(t.iter().all(|s| s.len() == 1), "max-tokens 1: {t:?}");
    assert_eq!(t[0], t[2], "both start with `one`");
    assert_ne!(t[0], t[1]);
    assert!(
        !store.exists("d/vocab.parquet").await.unwrap(),
        "no vocabulary file when hashing"
    );
}

#[tokio::test]
async fn bad_inputs_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let err = |source: DataSource| async move { ingest(&source).await.unwrap_err().to_string() };

    let mut bytes = b"{\"text\": \"fine\", \"label\": \"a\"}\n{\"text\": \"bad ".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\", \"label\": \"a\"}\n");
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, bytes).unwrap();
    let e = err(table(TableFormat::Jsonl, &path, "text", "label")).await;
    assert!(
        e.contains("bad.jsonl") && e.contains("line 2") && e.contains("UTF-8"),
        "{e}"
    );

    let path = write(dir.path(), "nolabel.csv", "text,topic\nhello,a\n");
    let e = err(table(TableFormat::Csv, &path, "text", "label")).await;
    assert!(
        e.contains("no `label` column (columns: text, topic)"),
        "{e}"
    );

    let path = write(dir.path(), "nolabel.jsonl", "{\"text\": \"x\", \"y\": 1}\n");
    let e = err(table(TableFormat::Jsonl, &path, "text", "label")).await;
    assert!(
        e.contains("line 1: no `label` field (fields: text, y)"),
        "{e}"
    );

    let path = write(
        dir.path(),
        "broken.jsonl",
        "{\"text\": \"x\", \"label\": 1}\n{oops\n",
    );
    let e = err(table(TableFormat::Jsonl, &path, "text", "label")).await;
    assert!(e.contains("line 2: invalid JSON"), "{e}");

    let path = write(
        dir.path(),
        "empty.jsonl",
        "{\"text\": \"\", \"label\": 1}\n",
    );
    let e = err(table(TableFormat::Jsonl, &path, "text", "label")).await;
    assert!(e.contains("no examples"), "{e}");

    let e = err(table(
        TableFormat::Csv,
        &dir.path().join("missing.csv"),
        "text",
        "label",
    ))
    .await;
    assert!(
        e.contains("missing.csv") && e.contains("no such file"),
        "{e}"
    );

    let path = write(dir.path(), "corrupt.parquet", "PAR1 this is not parquet");
    let e = err(table(TableFormat::Parquet, &path, "text", "label")).await;
    assert!(e.contains("corrupt.parquet"), "{e}");
}

#[test]
fn a_concept_with_one_example_is_skipped_and_counted_and_unknown_keys_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for c in ["a", "b", "c"] {
        for i in 0..8 {
            lines.push_str(&format!(
                "{}\n",
                serde_json::json!({"text": format!("{c} word{i} {c}{c} common"), "label": c})
            ));
        }
    }
    lines.push_str("{\"text\": \"common word1\", \"label\": \"single\"}\n");
    let data = write(dir.path(), "d.jsonl", &lines);
    let pipeline = |extra: &str| {
        format!(
            r#"
[pipeline]
name = "t"
output = "{}"

[[datasets]]
kind = "jsonl"
name = "j"
url = "{}"
{extra}

[train]
dim = 8
hidden = 8
batch-size = 8
epochs = 1

[eval]
probe-epochs = 2

[sweep]
k = [1, 2]
"#,
            dir.path().join("out").display(),
            data.display()
        )
    };
    let file = write(dir.path(), "p.toml", &pipeline(""));
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let ingest_json = std::fs::read_dir(dir.path().join("out/datasets"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("ingest.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ingest_json).unwrap()).unwrap();
    assert_eq!(report["concepts"], 4);
    // The single-example concept is left out: N = all = 3, in the partition path.
    let n3 = dir.path().join("out/results/dataset=j/n=3");
    assert!(n3.is_dir(), "{}", shown(&out));

    let file = write(dir.path(), "q.toml", &pipeline("granularity = \"lexname\""));
    let out = negsweep().args(["validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("granularity"), "{err}");
}

#[test]
fn wordnet_small_pipeline_runs_end_to_end() {
    assert!(
        Path::new("/usr/share/wordnet/data.noun").exists(),
        "the WordNet tests need /usr/share/wordnet (apt-get install wordnet-base; .ci/run does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/wordnet-small.toml");
    let out = negsweep()
        .args(["run", "-q", "--set"])
        .arg(format!("pipeline.output=\"{}\"", dir.path().display()))
        .arg(&pipeline)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let lex = dir.path().join("results/dataset=wn-lexname/n=26");
    let depth = dir.path().join("results/dataset=wn-depth2");
    assert!(lex.is_dir(), "26 noun lexicographer files: {}", shown(&out));
    let ns: Vec<String> = std::fs::read_dir(&depth)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ns.len(), 1, "{ns:?}");
    let n: u32 = ns[0].strip_prefix("n=").unwrap().parse().unwrap();
    assert!((8..=12).contains(&n), "about 11 depth-2 ancestors, got {n}");
    assert!(dir.path().join("summary.parquet").is_file());
}

#[test]
fn an_unknown_wordnet_granularity_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.toml",
        "[pipeline]\nname = \"w\"\n\n[[datasets]]\nkind = \"wordnet\"\nname = \"w\"\nconcept = \"paragraph\"\n",
    );
    let out = negsweep().args(["validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("paragraph") && err.contains("line"), "{err}");
}

#[test]
fn gru_and_dropout_train_on_built_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let text = crate::tiny(&out_dir.display().to_string(), "k = [1, 4]")
        .replace("[train]\n", "[train]\nencoder = \"gru\"\ndropout = 0.2\n");
    let file = write(dir.path(), "p.toml", &text);
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let parts = std::fs::read_dir(out_dir.join("results/dataset=tiny-text/n=8"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    assert_eq!(parts.len(), 2, "one k partition per point");
    let k1 = std::fs::read_dir(&parts[0])
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let store = Store::open_str(&parts[0].display().to_string(), &Default::default()).unwrap();
    let name = k1.file_name().to_string_lossy().into_owned();
    let (_, batches) = futures::executor::block_on(read_parquet(&store, &name)).unwrap();
    let encoder = batches[0]
        .column_by_name("encoder")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .value(0)
        .to_owned();
    assert_eq!(encoder, "gru");
}

/// JSONL lines are parsed in blocks of 4,096 on every core: records, skipped lines and errors
/// across block boundaries come out exactly as a line-by-line read gives them.
#[tokio::test]
async fn jsonl_read_in_parallel_blocks_keeps_order_counts_and_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut jsonl, mut csv) = (String::new(), String::from("text,label\n"));
    let mut empty = 0;
    for line in 1..=9_000u32 {
        match line {
            // Blank lines on both sides of the first boundary, and one as the last line.
            4_096 | 4_097 | 9_000 => jsonl.push('\n'),
            // Empty texts, skipped and counted, in the first and the second block.
            100 | 5_000 => {
                jsonl.push_str("{\"text\": \"\", \"label\": \"a\"}\n");
                empty += 1;
            }
            _ => {
                let (text, label) = (format!("word{} w{}", line % 97, line % 13), line % 5);
                jsonl.push_str(&format!("{{\"text\": \"{text}\", \"label\": {label}}}\n"));
                csv.push_str(&format!("{text},{label}\n"));
            }
        }
    }
    let jsonl_path = write(dir.path(), "many.jsonl", &jsonl);
    let csv_path = write(dir.path(), "many.csv", &csv);
    let (rj, ej, _) = ingest(&table(TableFormat::Jsonl, &jsonl_path, "text", "label"))
        .await
        .unwrap();
    let (rc, ec, _) = ingest(&table(TableFormat::Csv, &csv_path, "text", "label"))
        .await
        .unwrap();
    assert_eq!(rj.examples, 9_000 - 3 - empty);
    assert_eq!(rj.skipped.empty_text, empty);
    assert_eq!(rj.examples, rc.examples);
    assert_eq!(ej.labels, ec.labels, "records in line order");
    assert_eq!(tokens(&ej), tokens(&ec));

    // A bad line in the third block is named by its own number.
    let mut broken: Vec<&str> = jsonl.lines().collect();
    broken[8_499] = "{oops";
    let path = write(dir.path(), "broken.jsonl", &broken.join("\n"));
    let e = ingest(&table(TableFormat::Jsonl, &path, "text", "label"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 8500: invalid JSON"), "{e}");
}
