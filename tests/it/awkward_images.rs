//! A corpus of awkward ImageFolders, table-driven: hidden files, nesting, class names that
//! prefix one another or are not ASCII, every format the reader takes and some it does not,
//! empty folders and files, odd sizes and pixel types, EXIF orientation, damaged files.
//!
//! Every image of class `c` is one flat shade, `shade(c)`, so each case also checks that every
//! example carries the label of the folder it came from.

use std::path::Path;

use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use negsweep::data::folders::Skipped;
use negsweep::data::image_files::Color;
use negsweep::data::image_ingest::{ImageIngest, image_folder};
use negsweep::data::{Examples, Features};
use negsweep::storage::Store;

/// The shade of the images of `class`: distinct for the classes of one case.
fn shade(class: &str) -> u8 {
    let h = class
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (40 + h % 180) as u8
}

fn class_of(rel: &str) -> &str {
    rel.split_once('/').map_or(rel, |(c, _)| c)
}

/// Writes `img` to `dir/rel` in the format its extension names.
fn save(dir: &Path, rel: &str, img: &DynamicImage) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = image::ImageFormat::from_path(&path).unwrap();
    img.save_with_format(&path, format).unwrap();
}

/// A `w x h` image of its class's shade at `dir/rel`, RGB (every encoder takes RGB).
fn flat(dir: &Path, rel: &str, w: u32, h: u32) {
    let v = shade(class_of(rel));
    save(
        dir,
        rel,
        &DynamicImage::ImageRgb8(ImageBuffer::from_pixel(w, h, Rgb([v, v, v]))),
    );
}

fn png(dir: &Path, rel: &str) {
    flat(dir, rel, 12, 12);
}

fn bytes(dir: &Path, rel: &str, content: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A 16 x 8 grey JPEG, left half black, right half white, with an EXIF APP1 segment saying
/// Orientation = 6 (rotate 90 degrees clockwise to display).
fn sideways_jpeg() -> Vec<u8> {
    let px: Vec<u8> = (0..16 * 8)
        .map(|i| if i % 16 < 8 { 0 } else { 255 })
        .collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .encode(&px, 16, 8, image::ExtendedColorType::L8)
        .unwrap();
    let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06".to_vec();
    app1.extend_from_slice(&[0; 6]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn pixels(ex: &Examples) -> &[u8] {
    match &ex.features {
        Features::Pixels { data, .. } => data,
        Features::Tokens { .. } => panic!("images expected"),
    }
}

/// The 8 x 8 grey image of example `i`.
fn image(ex: &Examples, i: usize) -> &[u8] {
    &pixels(ex)[i * 64..(i + 1) * 64]
}

/// What a case should give.
enum Want {
    /// These concepts, this many examples, exactly these skips.
    Ok {
        concepts: &'static [&'static str],
        examples: u64,
        skipped: fn() -> Skipped,
    },
    /// An error whose message holds every one of these.
    Err(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    build: fn(&Path),
    want: Want,
    /// Checks beyond the counts and the labels.
    check: Option<fn(&Examples)>,
}

fn none() -> Skipped {
    Skipped::default()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "hidden folder at the top (.ipynb_checkpoints) is no concept",
            build: |d| {
                for r in [
                    "cat/1.png",
                    "dog/1.png",
                    ".ipynb_checkpoints/cat/1-checkpoint.png",
                ] {
                    png(d, r);
                }
                bytes(d, ".DS_Store", b"\0\0\0\x01Bud1");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || Skipped {
                    hidden_files: 2,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "hidden files and folders inside a class folder add no image",
            build: |d| {
                for r in [
                    "cat/1.png",
                    "cat/2.png",
                    "cat/.ipynb_checkpoints/1-checkpoint.png",
                    "cat/._1.png",
                    "dog/1.png",
                ] {
                    png(d, r);
                }
                bytes(d, "cat/.DS_Store", b"junk");
                bytes(d, "dog/._1.png", b"\0\x05\x16\x07AppleDouble");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 3,
                skipped: || Skipped {
                    hidden_files: 4,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "files nested below a class folder are counted, not read",
            build: |d| {
                for r in [
                    "cat/1.png",
                    "cat/sub/2.png",
                    "cat/sub/deeper/3.png",
                    "dog/1.png",
                ] {
                    png(d, r);
                }
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || Skipped {
                    nested_files: 2,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "files at the top are stray",
            build: |d| {
                for r in ["cat/1.png", "dog/1.png", "cover.png"] {
                    png(d, r);
                }
                bytes(d, "README.md", b"# pets");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || Skipped {
                    stray_files: 2,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "class names that prefix one another",
            build: |d| {
                for r in [
                    "tomato/1.png",
                    "tomato/2.png",
                    "tomato cherry/1.png",
                    "tomato-maroon/1.png",
                    "tomato_yellow/1.png",
                    "tomato.heirloom/1.png",
                ] {
                    png(d, r);
                }
            },
            want: Want::Ok {
                concepts: &[
                    "tomato",
                    "tomato cherry",
                    "tomato-maroon",
                    "tomato.heirloom",
                    "tomato_yellow",
                ],
                examples: 6,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "non-ASCII class and file names",
            build: |d| {
                for r in [
                    "naïve/é.png",
                    "日本語/猫.png",
                    "café crème/1.png",
                    "Ørsted/ø.png",
                ] {
                    png(d, r);
                }
            },
            want: Want::Ok {
                concepts: &["café crème", "naïve", "Ørsted", "日本語"],
                examples: 4,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "spaces, %, #, +, &, quotes and brackets in names",
            build: |d| {
                for r in [
                    "50% off/a 1.png",
                    "c#/x#1.png",
                    "a+b/a+b.png",
                    "it's \"quoted\"/q.png",
                    "x&y=z;w/[1]{2}.png",
                    "%41%2F/%25.png",
                ] {
                    png(d, r);
                }
            },
            want: Want::Ok {
                concepts: &[
                    "%41%2F",
                    "50% off",
                    "a+b",
                    "c#",
                    "it's \"quoted\"",
                    "x&y=z;w",
                ],
                examples: 6,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "every format the reader takes",
            build: |d| {
                for ext in [
                    "png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "tga", "qoi", "ppm",
                    "pgm", "pnm",
                ] {
                    flat(d, &format!("{ext}/1.{ext}"), 10, 10);
                }
            },
            want: Want::Ok {
                concepts: &[
                    "bmp", "gif", "jpeg", "jpg", "pgm", "png", "pnm", "ppm", "qoi", "tga", "tif",
                    "tiff", "webp",
                ],
                examples: 13,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "upper-case extensions, and a PNG named .jpg",
            build: |d| {
                png(d, "cat/1.PNG");
                flat(d, "cat/2.JPEG", 12, 12);
                let mut renamed = Vec::new();
                DynamicImage::ImageLuma8(ImageBuffer::from_pixel(9, 9, Luma([shade("dog")])))
                    .write_to(
                        &mut std::io::Cursor::new(&mut renamed),
                        image::ImageFormat::Png,
                    )
                    .unwrap();
                bytes(d, "dog/really-a-png.jpg", &renamed);
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 3,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "formats the reader does not take are counted by extension",
            build: |d| {
                png(d, "cat/1.png");
                bytes(d, "cat/2.heic", b"\0\0\0\x18ftypheic");
                bytes(d, "cat/3.svg", b"<svg/>");
                bytes(d, "cat/labels.txt", b"cat");
                bytes(d, "cat/Thumbs.db", b"\xd0\xcf");
                bytes(d, "cat/LICENSE", b"CC0");
                bytes(d, "dog/4.HEIC", b"\0\0\0\x18ftypheic");
                png(d, "dog/1.png");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || {
                    let mut s = none();
                    for name in ["a.heic", "a.heic", "a.svg", "a.txt", "a.db", "LICENSE"] {
                        s.other_format(name);
                    }
                    s
                },
            },
            check: None,
        },
        Case {
            name: "an empty class folder and one holding only hidden files are no concepts",
            build: |d| {
                png(d, "cat/1.png");
                png(d, "dog/1.png");
                std::fs::create_dir_all(d.join("empty")).unwrap();
                png(d, "ghost/.1.png");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || Skipped {
                    hidden_files: 1,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "zero-byte image files are skipped and counted",
            build: |d| {
                png(d, "cat/1.png");
                png(d, "dog/1.png");
                bytes(d, "cat/failed-download.jpg", b"");
                bytes(d, "only-empty/0.png", b"");
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 2,
                skipped: || Skipped {
                    empty_files: 2,
                    ..none()
                },
            },
            check: None,
        },
        Case {
            name: "images of differing sizes and shapes, down to 1 x 1",
            build: |d| {
                flat(d, "cat/big.png", 300, 200);
                flat(d, "cat/tall.png", 3, 40);
                flat(d, "cat/tiny.png", 1, 1);
                flat(d, "dog/exact.png", 8, 8);
                flat(d, "dog/wide.bmp", 50, 7);
            },
            want: Want::Ok {
                concepts: &["cat", "dog"],
                examples: 5,
                skipped: none,
            },
            check: None,
        },
        Case {
            name: "grey, grey+alpha, RGBA and 16-bit PNGs",
            build: |d| {
                let (c, g) = (shade("rgba"), shade("grey16"));
                save(
                    d,
                    "grey/1.png",
                    &DynamicImage::ImageLuma8(ImageBuffer::from_pixel(8, 8, Luma([shade("grey")]))),
                );
                save(
                    d,
                    "greyalpha/1.png",
                    &DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(
                        8,
                        8,
                        LumaA([shade("greyalpha"), 7]),
                    )),
                );
                save(
                    d,
                    "rgba/1.png",
                    &DynamicImage::ImageRgba8(ImageBuffer::from_pixel(8, 8, Rgba([c, c, c, 0]))),
                );
                save(
                    d,
                    "grey16/1.png",
                    &DynamicImage::ImageLuma16(ImageBuffer::from_pixel(
                        8,
                        8,
                        Luma([u16::from(g) * 257]),
                    )),
                );
                save(
                    d,
                    "rgb16/1.png",
                    &DynamicImage::ImageRgb16(ImageBuffer::from_pixel(
                        8,
                        8,
                        Rgb([u16::from(shade("rgb16")) * 257; 3]),
                    )),
                );
            },
            want: Want::Ok {
                concepts: &["grey", "grey16", "greyalpha", "rgb16", "rgba"],
                examples: 5,
                skipped: none,
            },
            // Shades are compared exactly: alpha is dropped, 16 bits scale to 8.
            check: Some(|ex| {
                for (i, &l) in ex.labels.iter().enumerate() {
                    let want = shade(&ex.concept_names[l as usize]);
                    assert!(image(ex, i).iter().all(|&p| p == want), "example {i}");
                }
            }),
        },
        Case {
            name: "EXIF orientation 6: stored upright, rotated before the crop",
            build: |d| {
                png(d, "cat/1.png");
                bytes(d, "sideways/photo.jpg", &sideways_jpeg());
            },
            want: Want::Ok {
                concepts: &["cat", "sideways"],
                examples: 2,
                skipped: none,
            },
            // Rotated clockwise, the black left half is the top: 4 dark rows over 4 light.
            check: Some(|ex| {
                let i = ex.labels.iter().position(|&l| l == 1).unwrap();
                for (y, row) in image(ex, i).chunks(8).enumerate() {
                    let ok = if y < 4 {
                        row.iter().all(|&p| p < 30)
                    } else {
                        row.iter().all(|&p| p > 225)
                    };
                    assert!(ok, "row {y}: {:?}", image(ex, i));
                }
            }),
        },
        Case {
            name: "a folder of only hidden and stray files is an error that says what it skipped",
            build: |d| {
                png(d, ".ipynb_checkpoints/cat/1.png");
                png(d, "top.png");
                bytes(d, "cat/notes.txt", b"x");
            },
            want: Want::Err(&[
                "no <class>/<file> images",
                "1 hidden file,",
                "1 file outside a class folder",
                "1 .txt file (format not read)",
                "webp",
            ]),
            check: None,
        },
        Case {
            name: "a damaged image names its file",
            build: |d| {
                png(d, "cat/1.png");
                bytes(d, "naïve dog/bad 1.png", b"\x89PNG\r\n\x1a\n truncated");
            },
            want: Want::Err(&["naïve dog/bad 1.png", "cannot decode image"]),
            check: None,
        },
        Case {
            name: "text saved as .jpg names its file",
            build: |d| {
                png(d, "cat/1.png");
                bytes(d, "dog/1.jpg", b"<html>404 Not Found</html>");
            },
            want: Want::Err(&["dog/1.jpg", "cannot decode image"]),
            check: None,
        },
    ]
}

/// Asserts what `got` should be by `want`, and that each example carries its folder's class.
fn assert_case(name: &str, got: negsweep::Result<(Examples, ImageIngest)>, case: &Case) {
    match (&case.want, got) {
        (
            Want::Ok {
                concepts,
                examples,
                skipped,
            },
            Ok((ex, report)),
        ) => {
            assert_eq!(ex.concept_names, *concepts, "{name}");
            assert_eq!(report.examples, *examples, "{name}");
            assert_eq!(report.concepts, concepts.len() as u64, "{name}");
            assert_eq!((report.side, report.channels), (8, 1), "{name}");
            assert_eq!(report.skipped, skipped(), "{name}");
            assert_eq!(pixels(&ex).len(), ex.len() * 64, "{name}");
            if case.check.is_none() {
                for (i, &l) in ex.labels.iter().enumerate() {
                    let want = i32::from(shade(&ex.concept_names[l as usize]));
                    let centre = i32::from(image(&ex, i)[27]);
                    assert!((centre - want).abs() <= 3, "{name}: example {i}");
                }
            }
            if let Some(check) = case.check {
                check(&ex);
            }
        }
        (Want::Err(parts), Err(e)) => {
            let msg = format!("{e:#}");
            for p in *parts {
                assert!(msg.contains(p), "{name}: `{p}` not in: {msg}");
            }
        }
        (Want::Ok { .. }, Err(e)) => panic!("{name}: {e:#}"),
        (Want::Err(_), Ok((ex, _))) => panic!("{name}: read {:?}", ex.concept_names),
    }
}

#[tokio::test]
async fn awkward_image_folders() {
    let cases = cases();
    assert!(cases.len() >= 15);
    let mut failed = Vec::new();
    for case in &cases {
        // The root itself has a space and a non-ASCII letter.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("my data/naïve set");
        std::fs::create_dir_all(&root).unwrap();
        (case.build)(&root);
        let store = Store::open_str(root.to_str().unwrap(), &Default::default()).unwrap();
        let got = image_folder(&store, 8, Color::Grey).await;
        failed.extend(outcome(case.name, got, case));
    }
    assert!(failed.is_empty(), "failed: {failed:#?}");
}

/// Runs [`assert_case`]; the case's name if it failed (its message is printed), so that one
/// run reports every failing case.
fn outcome(
    name: &str,
    got: negsweep::Result<(Examples, ImageIngest)>,
    case: &Case,
) -> Option<String> {
    let run = std::panic::AssertUnwindSafe(|| assert_case(name, got, case));
    std::panic::catch_unwind(run).err().map(|_| name.to_owned())
}

#[tokio::test]
async fn awkward_image_folders_in_memory() {
    // The same files put through a memory:// store (names percent-encoded in the URL only).
    let mut failed = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        (case.build)(dir.path());
        let store = Store::open_str(
            &format!("memory://awkward-images/case%20{i}/"),
            &Default::default(),
        )
        .unwrap();
        for entry in walk(dir.path()) {
            let rel = entry.strip_prefix(dir.path()).unwrap().to_str().unwrap();
            let bytes = std::fs::read(&entry).unwrap();
            store.put(rel, bytes.into()).await.unwrap();
        }
        let got = image_folder(&store, 8, Color::Grey).await;
        failed.extend(outcome(&format!("memory: {}", case.name), got, case));
    }
    assert!(failed.is_empty(), "failed: {failed:#?}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
