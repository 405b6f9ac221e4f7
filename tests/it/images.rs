//! Image files: the UCI digits pipeline on the real file, IDX and CIFAR files the tests write,
//! and truncated files.

use std::path::Path;

use crate::{negsweep, shown, write};

fn pipeline(out: &Path, dataset: &str, encoder: &str) -> String {
    format!(
        r#"
[pipeline]
name = "img"
output = "{}"

{dataset}

[train]
encoder = "{encoder}"
dim = 8
hidden = 16
channels = [4, 8]
batch-size = 16
epochs = 1

[eval]
probe-epochs = 2

[sweep]
k = [1, 4]
"#,
        out.display()
    )
}

/// The `ingest.json` of dataset `name` under the output `out`.
fn ingest_json(out: &Path, name: &str) -> serde_json::Value {
    let dir = std::fs::read_dir(out.join("datasets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{name}-"))
        })
        .unwrap_or_else(|| panic!("no dataset folder of `{name}` in {}", out.display()));
    let bytes = std::fs::read(dir.join("ingest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("ingest.json").display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// IDX image and label files with `per_class` 4 x 4 images per class of 3 classes.
fn idx_pair(dir: &Path, per_class: usize, truncate: usize) -> (String, String) {
    let n = 3 * per_class;
    let mut img = vec![0, 0, 8, 3];
    for v in [n as u32, 4, 4] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let c = i % 3;
        img.extend((0..16).map(|p| if p % 3 == c { 200 } else { (i * 7 % 50) as u8 }));
        lab.push(c as u8);
    }
    img.truncate(img.len() - truncate);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &img).unwrap();
    std::fs::write(dir.join("images.idx.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.join("labels.idx"), lab).unwrap();
    (
        dir.join("images.idx.gz").display().to_string(),
        dir.join("labels.idx").display().to_string(),
    )
}

#[test]
fn idx_and_cifar_files_run_and_truncated_files_name_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair(dir.path(), 12, 0);
    let ds = format!(
        "[[datasets]]\nkind = \"idx\"\nname = \"mnistish\"\nimages = \"{images}\"\nlabels = \"{labels}\"\nclasses = [\"zero\", \"one\", \"two\"]"
    );
    let file = write(
        dir.path(),
        "idx.toml",
        &pipeline(&dir.path().join("o1"), &ds, "cnn"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert!(dir.path().join("o1/results/dataset=mnistish/n=3").is_dir());
    let report = ingest_json(&dir.path().join("o1"), "mnistish");
    assert_eq!(
        (&report["examples"], &report["concepts"], &report["side"]),
        (&36.into(), &3.into(), &4.into()),
        "{report}"
    );

    // CIFAR-100 with coarse labels: two records per superclass of 4 superclasses... in 2 files.
    let mut bytes = Vec::new();
    for i in 0..40u32 {
        let coarse = (i % 4) as u8;
        bytes.extend([coarse, 0]);
        bytes.extend((0..3072).map(|p| {
            if p % 4 == coarse as usize {
                250
            } else {
                (i % 9) as u8
            }
        }));
    }
    let (a, b) = bytes.split_at(20 * 3074);
    std::fs::write(dir.path().join("train1.bin"), a).unwrap();
    std::fs::write(dir.path().join("train2.bin"), b).unwrap();
    let ds = format!(
        "[[datasets]]\nkind = \"cifar\"\nname = \"c100\"\nlabels = \"coarse\"\nfiles = [\"{}\", \"{}\"]\nn = [0]",
        dir.path().join("train1.bin").display(),
        dir.path().join("train2.bin").display()
    );
    let file = write(
        dir.path(),
        "c.toml",
        &pipeline(&dir.path().join("o2"), &ds, "mlp"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    // Only 4 of the 20 superclasses have examples: N = all = 4.
    assert!(
        dir.path().join("o2/results/dataset=c100/n=4").is_dir(),
        "{}",
        shown(&out)
    );
    let report = ingest_json(&dir.path().join("o2"), "c100");
    assert_eq!(
        (
            &report["examples"],
            &report["concepts"],
            &report["channels"]
        ),
        (&40.into(), &4.into(), &3.into()),
        "{report}"
    );

    // Truncated: the error names the file and the record, exit 3, nothing written as done.
    std::fs::write(dir.path().join("train2.bin"), &b[..b.len() - 100]).unwrap();
    let file = write(
        dir.path(),
        "t.toml",
        &pipeline(&dir.path().join("o3"), &ds, "mlp"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train2.bin") && err.contains("record 20 is incomplete"),
        "{err}"
    );
    assert!(!dir.path().join("o3/results").exists());

    let sub = dir.path().join("bad");
    std::fs::create_dir_all(&sub).unwrap();
    let (images, labels) = idx_pair(&sub, 4, 10);
    let ds = format!(
        "[[datasets]]\nkind = \"idx\"\nname = \"m\"\nimages = \"{images}\"\nlabels = \"{labels}\""
    );
    let file = write(
        dir.path(),
        "b.toml",
        &pipeline(&dir.path().join("o4"), &ds, "mlp"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("images.idx.gz") && err.contains("record 12 of 12"),
        "{err}"
    );
}

#[test]
fn digits_pipeline_runs_on_the_real_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("data/digits.csv.gz").is_file(),
        "the digits test needs data/digits.csv.gz: run .ci/fetch-digits (.ci/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = negsweep()
        .current_dir(root)
        .args([
            "run",
            "-q",
            "--set",
            "sweep.k=[1, 8]",
            "--set",
            "sweep.seed=[0]",
        ])
        .args(["--set", "train.epochs=2", "--set"])
        .arg(format!("pipeline.output=\"{}\"", dir.path().display()))
        .arg("pipelines/digits.toml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    for n in [2, 5, 10] {
        let part = dir.path().join(format!("results/dataset=digits/n={n}"));
        assert!(part.is_dir(), "N = {n}: {}", shown(&out));
    }
}

#[test]
fn positive_modes_are_swept_side_by_side_and_text_rejects_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let ds = "[[datasets]]\nkind = \"synthetic-image\"\nname = \"img\"\nconcepts = 4\nexamples-per-concept = 12\nsize = 8";
    let text = pipeline(&dir.path().join("o"), ds, "cnn").replace(
        "k = [1, 4]",
        "k = [1, 4]\npositive = [\"same-concept\", \"augmentation\"]",
    );
    let file = write(dir.path(), "p.toml", &text);
    let out = negsweep().args(["run"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("same-concept") && stdout.contains("augmentation"),
        "one summary line per mode: {stdout}"
    );
    let parts = std::fs::read_dir(dir.path().join("o/results/dataset=img/n=4/k=1"))
        .unwrap()
        .count();
    assert_eq!(parts, 2, "one result per positive mode");

    let text = crate::tiny(&dir.path().join("t").display().to_string(), "k = [1]")
        .replace("[train]\n", "[train]\npositive = \"augmentation\"\n");
    let file = write(dir.path(), "t.toml", &text);
    let out = negsweep().args(["validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("augmentation positives need images"));
}

#[test]
fn glyphs_keep_case_and_a_small_glyph_pipeline_runs() {
    let dejavu = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    assert!(
        dejavu.is_file(),
        "the glyph tests need the Debian font packages (.ci/test installs them)"
    );
    let font = std::fs::read(dejavu).unwrap();
    let (ex, stats) =
        negsweep::data::glyphs::render(&[("DejaVuSans.ttf".into(), font)], &['c', 'C'], 16);
    assert_eq!(stats.faces, 1);
    let negsweep::data::Features::Pixels { data, .. } = &ex.features else {
        unreachable!()
    };
    let (c, cap) = data.split_at(256);
    assert_ne!(c, cap, "c and C differ: size and baseline are kept");
    let ink = |img: &[u8]| img.iter().map(|&p| u32::from(p)).sum::<u32>();
    assert!(ink(cap) > ink(c), "C is taller than c");

    let dir = tempfile::tempdir().unwrap();
    let ds = "[[datasets]]\nkind = \"glyphs\"\nname = \"g\"\ncharset = \"digits\"\nsize = 16";
    let text = pipeline(&dir.path().join("o"), ds, "cnn").replace(
        "k = [1, 4]",
        "k = [1, 4]\npositive = [\"same-concept\", \"augmentation\"]",
    );
    let file = write(dir.path(), "g.toml", &text);
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        dir.path().join("o/results/dataset=g/n=10").is_dir(),
        "{}",
        shown(&out)
    );
    let report = ingest_json(&dir.path().join("o"), "g");
    assert_eq!(report["concepts"], 10, "{report}");
    assert_eq!(
        report["examples"],
        report["glyphs"]["faces"].as_u64().unwrap() * 10,
        "{report}"
    );
}

#[test]
fn image_folders_decode_png_and_a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    for class in ["cat", "dog", "fox"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..10u8 {
            // 12 x 12 (resized to 8 x 8); each class brightest in its own band of rows.
            let band = match class {
                "cat" => 0,
                "dog" => 4,
                _ => 8,
            };
            let px: Vec<u8> = (0..144)
                .map(|p| {
                    if (p / 12) / 4 == band / 4 {
                        220
                    } else {
                        10 * (i % 4)
                    }
                })
                .collect();
            let png = negsweep::data::image_files::encode_png(&px, 12).unwrap();
            std::fs::write(root.join(class).join(format!("{i}.png")), png).unwrap();
        }
    }
    write(&root, "notes.txt", "not an image, not in a class folder");
    // Jupyter's and macOS's hidden files, at the top and inside a class folder; a nested
    // folder; a format the reader skips; a zero-byte file: none is an image of the dataset.
    for hidden in [
        ".ipynb_checkpoints/cat",
        "cat/.ipynb_checkpoints",
        "dog/sub",
    ] {
        std::fs::create_dir_all(root.join(hidden)).unwrap();
        let png = negsweep::data::image_files::encode_png(&[0; 144], 12).unwrap();
        std::fs::write(root.join(hidden).join("0-checkpoint.png"), png).unwrap();
    }
    write(&root, "cat/.DS_Store", "junk");
    write(&root, "fox/0.heic", "not read");
    write(&root, "fox/empty.png", "");
    let ds = format!(
        "[[datasets]]\nkind = \"image-folder\"\nname = \"pets\"\nurl = \"{}\"\nsize = 8\ncolor = \"grey\"",
        root.display()
    );
    let file = write(
        dir.path(),
        "f.toml",
        &pipeline(&dir.path().join("o"), &ds, "cnn"),
    );
    let out = negsweep().args(["run"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert!(dir.path().join("o/results/dataset=pets/n=3").is_dir());
    // No `.ipynb_checkpoints` concept, no extra image in `cat`; every skip counted.
    let report = ingest_json(&dir.path().join("o"), "pets");
    assert_eq!(
        report,
        serde_json::json!({
            "examples": 30,
            "concepts": 3,
            "side": 8,
            "channels": 1,
            "skipped": {
                "empty_text": 0,
                "stray_files": 1,
                "hidden_files": 3,
                "nested_files": 1,
                "empty_files": 1,
                "other_formats": {"heic": 1},
            },
        })
    );
    // The log says the same.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("images ingested")
            && stderr.contains("examples=30")
            && stderr.contains("3 hidden files")
            && stderr.contains("1 .heic file (format not read)"),
        "{stderr}"
    );

    std::fs::write(root.join("dog/5.png"), b"\x89PNG truncated").unwrap();
    let file = write(
        dir.path(),
        "g.toml",
        &pipeline(&dir.path().join("o2"), &ds, "cnn"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dog/5.png") && err.contains("cannot decode"),
        "{err}"
    );
}

/// A Hugging Face image Parquet file with `rows` PNGs of 3 classes; `bad` replaces one image.
fn hf_file(path: &Path, rows: usize, bad: Option<usize>) {
    use arrow::array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
    use arrow::datatypes::{DataType, Field, Fields, Schema};
    use std::sync::Arc;
    let pngs: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            if Some(i) == bad {
                return b"not a png".to_vec();
            }
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
    let meta = std::collections::HashMap::from([(
        "huggingface".to_owned(),
        r#"{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["red", "green", "blue"], "_type": "ClassLabel"}}}}"#.to_owned(),
    )]);
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("image", DataType::Struct(fields), false),
            Field::new("label", DataType::Int64, false),
        ],
        meta,
    ));
    let labels = Int64Array::from_iter_values((0..rows).map(|i| (i % 3) as i64));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(image), Arc::new(labels)]).unwrap();
    std::fs::write(
        path,
        negsweep::storage::encode_parquet(schema, &[batch]).unwrap(),
    )
    .unwrap();
}

#[test]
fn hugging_face_image_parquet_reads_class_names_and_names_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    hf_file(&dir.path().join("train.parquet"), 36, None);
    let ds = format!(
        "[[datasets]]\nkind = \"hf-images\"\nname = \"hf\"\nurl = \"{}\"\nsize = 8\ncolor = \"grey\"",
        dir.path().join("train.parquet").display()
    );
    let file = write(
        dir.path(),
        "h.toml",
        &pipeline(&dir.path().join("o"), &ds, "mlp"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let concepts = std::fs::read_dir(dir.path().join("o/pools/hf"))
        .unwrap()
        .count();
    assert_eq!(concepts, 1);
    assert!(dir.path().join("o/results/dataset=hf/n=3").is_dir());

    hf_file(&dir.path().join("train.parquet"), 36, Some(17));
    let file = write(
        dir.path(),
        "b.toml",
        &pipeline(&dir.path().join("o2"), &ds, "mlp"),
    );
    let out = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train.parquet (record 18)") && err.contains("cannot decode"),
        "{err}"
    );
}
