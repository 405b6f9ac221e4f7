//! Encoded image files (PNG, JPEG) to fixed-size pixels: decoded with the `image` crate,
//! centre-cropped to a square, resized, and converted to grey or RGB.

use image::imageops::FilterType;
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

/// Whether `name` looks like an image file this reader decodes.
pub fn is_image(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg"].iter().any(|e| n.ends_with(e))
}

/// Decodes one image into `side * side * channels` bytes, channels last.
pub fn decode(bytes: &[u8], side: u32, color: Color, location: &str) -> Result<Vec<u8>> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::data(location, format!("cannot decode image: {e}")))?;
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
        assert_eq!(decode(&png, 8, Color::Grey, "a.png").unwrap(), px);
        let rgb = decode(&png, 4, Color::Rgb, "a.png").unwrap();
        assert_eq!(rgb.len(), 4 * 4 * 3);
        assert!(
            rgb.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]),
            "grey in RGB"
        );
        let e = decode(&png[..20], 8, Color::Grey, "a.png").unwrap_err();
        assert!(e.to_string().contains("a.png"), "{e}");
    }
}
