//! Encoded image files (every format the `image` crate is built to read: PNG, JPEG, GIF, BMP,
//! WebP, TIFF, PNM, TGA, QOI) to fixed-size pixels: decoded, turned upright by their EXIF
//! orientation, centre-cropped to a square, resized, and converted to grey or RGB.

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Colour of the stored pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Color {
    /// One channel.
    Grey,
    /// Three channels.
    Rgb,
}

impl Color {
    /// Channels per pixel.
    pub fn channels(self) -> u32 {
        match self {
            Color::Grey => 1,
            Color::Rgb => 3,
        }
    }
}

/// The format of an image file this reader decodes, from its name's extension (any case);
/// `None` for other files and for formats the `image` crate is built without.
pub fn format_of(name: &str) -> Option<ImageFormat> {
    let (_, ext) = name.rsplit_once('.')?;
    ImageFormat::from_extension(ext).filter(ImageFormat::reading_enabled)
}

/// The extensions of the formats this reader decodes, for messages.
pub fn extensions() -> Vec<&'static str> {
    ImageFormat::all()
        .filter(ImageFormat::reading_enabled)
        .flat_map(|f| f.extensions_str().iter().copied())
        .collect()
}

/// Decodes one image into `side * side * channels` bytes, channels last. The format comes
/// from the bytes where they say (a PNG named `.jpg` is read as PNG), else from `hint` (TGA
/// has no signature). EXIF orientation (JPEG, WebP, TIFF) is applied before the crop, so a
/// photo taken sideways is stored upright.
pub fn decode(
    bytes: &[u8],
    hint: Option<ImageFormat>,
    side: u32,
    color: Color,
    location: &str,
) -> Result<Vec<u8>> {
    let bad =
        |e: &dyn std::fmt::Display| Error::data(location, format!("cannot decode image: {e}"));
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    if let Some(format) = hint {
        reader.set_format(format);
    }
    let reader = reader.with_guessed_format().map_err(|e| bad(&e))?;
    let mut decoder = reader.into_decoder().map_err(|e| bad(&e))?;
    // A damaged EXIF block leaves the image as stored rather than failing it.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width(), img.height());
    let s = w.min(h);
    let square = img.crop_imm((w - s) / 2, (h - s) / 2, s, s);
    let resized = if s == side {
        square
    } else {
        square.resize_exact(side, side, FilterType::Triangle)
    };
    Ok(match color {
        Color::Grey => resized.to_luma8().into_raw(),
        Color::Rgb => resized.to_rgb8().into_raw(),
    })
}

/// Encodes grey `side x side` pixels as PNG (for the benchmark's generated folders and tests).
pub fn encode_png(pixels: &[u8], side: u32) -> Result<Vec<u8>> {
    let img = image::GrayImage::from_raw(side, side, pixels.to_vec())
        .ok_or_else(|| Error::Internal("pixel buffer does not fit the image".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("PNG encoding: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_resize_and_colour() {
        let px: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
        let png = encode_png(&px, 8).unwrap();
        assert_eq!(decode(&png, None, 8, Color::Grey, "a.png").unwrap(), px);
        let rgb = decode(&png, None, 4, Color::Rgb, "a.png").unwrap();
        assert_eq!(rgb.len(), 4 * 4 * 3);
        assert!(
            rgb.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]),
            "grey in RGB"
        );
        let e = decode(&png[..20], None, 8, Color::Grey, "a.png").unwrap_err();
        assert!(e.to_string().contains("a.png"), "{e}");
    }

    /// A 16 x 8 grey JPEG, left half black and right half white, with an EXIF APP1 segment
    /// saying Orientation = `orientation` when given.
    fn jpeg(orientation: Option<u16>) -> Vec<u8> {
        let px: Vec<u8> = (0..16 * 8)
            .map(|i| if i % 16 < 8 { 0 } else { 255 })
            .collect();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
            .encode(&px, 16, 8, image::ExtendedColorType::L8)
            .unwrap();
        let Some(o) = orientation else { return out };
        // "Exif\0\0", a big-endian TIFF header, one IFD with one entry: 0x0112 Orientation,
        // type SHORT, count 1, the value, then no next IFD.
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        tiff.extend_from_slice(&o.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut with = out[..2].to_vec();
        with.extend_from_slice(&[0xff, 0xe1]);
        with.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
        with.extend_from_slice(&app1);
        with.extend_from_slice(&out[2..]);
        with
    }

    #[test]
    fn exif_orientation_is_applied_before_the_centre_crop() {
        let rows = |px: &[u8]| -> Vec<Vec<u8>> { px.chunks(8).map(<[u8]>::to_vec).collect() };
        // As stored: the 8 x 8 centre holds columns 4..12, dark on the left, light on the right.
        let plain = rows(&decode(&jpeg(None), None, 8, Color::Grey, "p.jpg").unwrap());
        assert!(plain.iter().all(|r| r[0] < 30 && r[7] > 225), "{plain:?}");
        // Orientation 6: rotate 90 degrees clockwise, so the left half becomes the top half;
        // the 8 x 8 centre of the 8 x 16 upright image is 4 dark rows over 4 light rows.
        let upright = rows(&decode(&jpeg(Some(6)), None, 8, Color::Grey, "s.jpg").unwrap());
        for (y, row) in upright.iter().enumerate() {
            if y < 4 {
                assert!(row.iter().all(|&p| p < 30), "row {y}: {upright:?}");
            } else {
                assert!(row.iter().all(|&p| p > 225), "row {y}: {upright:?}");
            }
        }
        // Exactly the pixels of the stored image rotated, then cropped.
        let rotated = image::load_from_memory(&jpeg(None)).unwrap().rotate90();
        assert_eq!((rotated.width(), rotated.height()), (8, 16));
        let want = rotated.crop_imm(0, 4, 8, 8).to_luma8().into_raw();
        assert_eq!(upright.concat(), want);
    }

    #[test]
    fn every_enabled_format_reads_and_tga_needs_its_extension() {
        for ext in [
            "png", "JPG", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "pgm", "ppm",
        ] {
            assert!(format_of(&format!("a.{ext}")).is_some(), "{ext}");
        }
        for ext in ["tga", "qoi", "pbm", "pam", "pnm"] {
            assert!(format_of(&format!("a.{ext}")).is_some(), "{ext}");
        }
        for name in [
            "a.heic", "a.avif", "a.svg", "a.txt", "README", "a.ico", "a.exr",
        ] {
            assert_eq!(format_of(name), None, "{name}");
        }
        let px: Vec<u8> = (0..16).map(|i| (i * 16) as u8).collect();
        let img = image::GrayImage::from_raw(4, 4, px.clone()).unwrap();
        let mut tga = std::io::Cursor::new(Vec::new());
        img.write_to(&mut tga, ImageFormat::Tga).unwrap();
        let tga = tga.into_inner();
        assert_eq!(
            decode(&tga, format_of("x.tga"), 4, Color::Grey, "x.tga").unwrap(),
            px
        );
        assert!(decode(&tga, None, 4, Color::Grey, "x").is_err());
    }
}
