//! Readers of the classic fixed-layout image files: the UCI handwritten digits CSV (the file in
//! scikit-learn's wheel), MNIST-style IDX pairs and CIFAR-10/100 binary batches. Each decodes
//! bytes already fetched (gzip or not) into grey or RGB pixels, channels last; errors name the
//! file and the record (counted from 1).

use std::io::Read;

use serde::Serialize;

use super::{Examples, Features};
use crate::{Error, Result};

/// Undoes gzip when the bytes start with its magic number.
pub fn gunzip(bytes: &[u8], location: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::data(location, format!("bad gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// The UCI digits CSV: 64 pixel values in 0..=16 (8 x 8, row-major) then the digit, per line.
pub fn digits_csv(bytes: &[u8], location: &str) -> Result<Examples> {
    let text = super::sources::utf8(bytes, location, 1)?;
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: String| {
            Error::data(
                location,
                format!("record {} (line {}): {what}", labels.len() + 1, i + 1),
            )
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(bad(format!("{} fields, expected 65", fields.len())));
        }
        for f in &fields[..64] {
            let v: u8 = f
                .parse()
                .ok()
                .filter(|v| *v <= 16)
                .ok_or_else(|| bad(format!("pixel `{f}` is not in 0..=16")))?;
            // 0..=16 to 0..=255.
            data.push(((u32::from(v) * 255 + 8) / 16) as u8);
        }
        let label: u32 = fields[64]
            .parse()
            .ok()
            .filter(|d| *d <= 9)
            .ok_or_else(|| bad(format!("label `{}` is not a digit", fields[64])))?;
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(Error::data(location, "no records"));
    }
    Ok(Examples {
        labels,
        concept_names: (0..10).map(|d| d.to_string()).collect(),
        features: Features::Pixels {
            side: 8,
            channels: 1,
            data,
        },
    })
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// An IDX image file (`magic 0x00000803`, n, rows, cols, then u8 pixels) and its label file
/// (`0x00000801`, n, then u8 labels): MNIST, Fashion-MNIST, EMNIST.
pub fn idx(
    images: &[u8],
    labels: &[u8],
    (images_at, labels_at): (&str, &str),
    names: Option<&[&str]>,
) -> Result<Examples> {
    if images.len() < 16 || be_u32(images, 0) != 0x0803 {
        return Err(Error::data(
            images_at,
            "not an IDX image file (magic 0x00000803)",
        ));
    }
    if labels.len() < 8 || be_u32(labels, 0) != 0x0801 {
        return Err(Error::data(
            labels_at,
            "not an IDX label file (magic 0x00000801)",
        ));
    }
    let (n, rows, cols) = (
        be_u32(images, 4) as usize,
        be_u32(images, 8) as usize,
        be_u32(images, 12) as usize,
    );
    if rows != cols {
        return Err(Error::data(
            images_at,
            format!("{rows} x {cols} images: only square ones are supported"),
        ));
    }
    let per = rows * cols;
    let have = (images.len() - 16) / per.max(1);
    if have < n {
        return Err(Error::data(
            images_at,
            format!("truncated: record {} of {n} is incomplete", have + 1),
        ));
    }
    if be_u32(labels, 4) as usize != n || labels.len() < 8 + n {
        return Err(Error::data(
            labels_at,
            format!(
                "holds {} labels ({} bytes), the image file {n} images",
                be_u32(labels, 4),
                labels.len() - 8
            ),
        ));
    }
    let labels: Vec<u32> = labels[8..8 + n].iter().map(|&l| u32::from(l)).collect();
    let classes = labels.iter().copied().max().unwrap_or(0) as usize + 1;
    let concept_names = (0..classes)
        .map(|c| {
            names
                .and_then(|n| n.get(c))
                .map_or_else(|| c.to_string(), |s| (*s).to_owned())
        })
        .collect();
    Ok(Examples {
        labels,
        concept_names,
        features: Features::Pixels {
            side: rows as u32,
            channels: 1,
            data: images[16..16 + n * per].to_vec(),
        },
    })
}

/// Which labels of a CIFAR file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CifarLabels {
    /// CIFAR-10: one label byte per record.
    Ten,
    /// CIFAR-100, the 20 superclasses (first of two label bytes).
    Coarse,
    /// CIFAR-100, the 100 classes (second label byte).
    Fine,
}

/// CIFAR-10 class names.
pub const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Appends the records of one CIFAR binary file (label byte(s), then 1024 red, 1024 green,
/// 1024 blue bytes) to `out` as HWC RGB pixels.
pub fn cifar(bytes: &[u8], which: CifarLabels, location: &str, out: &mut Examples) -> Result<()> {
    let head = if which == CifarLabels::Ten { 1 } else { 2 };
    let rec = head + 3072;
    if !bytes.len().is_multiple_of(rec) {
        return Err(Error::data(
            location,
            format!(
                "truncated: record {} is incomplete ({} of {rec} bytes)",
                bytes.len() / rec + 1,
                bytes.len() % rec
            ),
        ));
    }
    let Features::Pixels { data, .. } = &mut out.features else {
        return Err(Error::Internal("CIFAR into a text dataset".into()));
    };
    for (i, r) in bytes.chunks(rec).enumerate() {
        let label = u32::from(match which {
            CifarLabels::Ten | CifarLabels::Coarse => r[0],
            CifarLabels::Fine => r[1],
        });
        let classes = match which {
            CifarLabels::Ten => 10,
            CifarLabels::Coarse => 20,
            CifarLabels::Fine => 100,
        };
        if label >= classes {
            return Err(Error::data(
                location,
                format!("record {}: label {label} is not below {classes}", i + 1),
            ));
        }
        out.labels.push(label);
        let planes = &r[head..];
        for p in 0..1024 {
            data.extend_from_slice(&[planes[p], planes[1024 + p], planes[2048 + p]]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_scale_pixels_and_name_bad_records() {
        let mut line: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        line.push("7".into());
        let good = line.join(",");
        let ex = digits_csv(format!("{good}\n{good}\n").as_bytes(), "d.csv").unwrap();
        assert_eq!(ex.labels, [7, 7]);
        let Features::Pixels { data, side, .. } = &ex.features else {
            unreachable!()
        };
        assert_eq!((*side, data[0], data[16]), (8, 0, 255));
        let e = digits_csv(format!("{good}\n1,2,3\n").as_bytes(), "d.csv").unwrap_err();
        assert!(
            e.to_string().contains("d.csv") && e.to_string().contains("record 2 (line 2)"),
            "{e}"
        );
    }

    fn idx_files(n: u32, side: u32, labels: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut img = vec![0, 0, 8, 3];
        for v in [n, side, side] {
            img.extend_from_slice(&v.to_be_bytes());
        }
        img.extend((0..n * side * side).map(|i| i as u8));
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&n.to_be_bytes());
        lab.extend_from_slice(labels);
        (img, lab)
    }

    #[test]
    fn idx_reads_pairs_and_reports_truncation() {
        let (img, lab) = idx_files(3, 2, &[1, 0, 1]);
        let ex = idx(&img, &lab, ("i", "l"), None).unwrap();
        assert_eq!(ex.labels, [1, 0, 1]);
        assert_eq!(ex.concept_names, ["0", "1"]);
        let e = idx(&img[..img.len() - 1], &lab, ("i", "l"), None).unwrap_err();
        assert!(e.to_string().contains("record 3 of 3"), "{e}");
        let e = idx(&lab, &lab, ("i", "l"), None).unwrap_err();
        assert!(e.to_string().contains("not an IDX image file"), "{e}");
        // gzip is undone by magic number.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &img).unwrap();
        assert_eq!(gunzip(&gz.finish().unwrap(), "i").unwrap(), img);
    }

    #[test]
    fn cifar_records_become_hwc_rgb_and_truncation_names_the_record() {
        let mut bytes = Vec::new();
        for label in [3u8, 9] {
            bytes.push(0);
            bytes.push(label);
            bytes.extend(std::iter::repeat_n(10, 1024));
            bytes.extend(std::iter::repeat_n(20, 1024));
            bytes.extend(std::iter::repeat_n(30, 1024));
        }
        let mut ex = Examples {
            labels: Vec::new(),
            concept_names: Vec::new(),
            features: Features::Pixels {
                side: 32,
                channels: 3,
                data: Vec::new(),
            },
        };
        cifar(&bytes, CifarLabels::Fine, "c.bin", &mut ex).unwrap();
        assert_eq!(ex.labels, [3, 9]);
        let Features::Pixels { data, .. } = &ex.features else {
            unreachable!()
        };
        assert_eq!(&data[..6], &[10, 20, 30, 10, 20, 30]);
        let e = cifar(&bytes[..3000], CifarLabels::Fine, "c.bin", &mut ex).unwrap_err();
        assert!(e.to_string().contains("record 1 is incomplete"), "{e}");
    }
}
