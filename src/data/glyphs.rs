//! Font glyphs as a latent-class image dataset: concept = character, instance = font face.
//!
//! Every face is rendered at one pixel size on one baseline, so case survives: `c` is small
//! and sits on the baseline, `C` reaches cap height (scaling each glyph to fill its box would
//! make c/C, o/O, s/S, ... identical).

use serde::{Deserialize, Serialize};

use super::{Examples, Features};

/// Which characters are concepts: the granularity switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    /// `0`-`9`: 10 concepts.
    Digits,
    /// `A`-`Z` and `a`-`z`: 52 concepts.
    Letters,
    /// Both: 62 concepts.
    Both,
}

impl Charset {
    /// The characters, in label order.
    pub fn chars(self) -> Vec<char> {
        let digits = '0'..='9';
        let letters = ('A'..='Z').chain('a'..='z');
        match self {
            Charset::Digits => digits.collect(),
            Charset::Letters => letters.collect(),
            Charset::Both => digits.chain(letters).collect(),
        }
    }
}

/// What rendering kept and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GlyphStats {
    /// Faces rendered.
    pub faces: u64,
    /// Files that are not parseable fonts.
    pub unreadable: u64,
    /// Fonts lacking a character of the set.
    pub incomplete: u64,
}

/// Renders `chars` from every font in `fonts` (name, bytes) at `side x side`, grey.
pub fn render(fonts: &[(String, Vec<u8>)], chars: &[char], side: u32) -> (Examples, GlyphStats) {
    let s = side as usize;
    let px = side as f32 * 0.7;
    let baseline = (side as f32 * 0.78).round() as i32;
    let mut stats = GlyphStats::default();
    let (mut labels, mut data) = (Vec::new(), Vec::new());
    for (_, bytes) in fonts {
        let Ok(font) =
            fontdue::Font::from_bytes(bytes.as_slice(), fontdue::FontSettings::default())
        else {
            stats.unreadable += 1;
            continue;
        };
        if !chars.iter().all(|c| font.chars().contains_key(c)) {
            stats.incomplete += 1;
            continue;
        }
        stats.faces += 1;
        for (label, &c) in chars.iter().enumerate() {
            let (m, bitmap) = font.rasterize(c, px);
            let mut img = vec![0u8; s * s];
            // Centred on its advance; vertically on the shared baseline.
            let left = ((side as f32 - m.advance_width) / 2.0).round() as i32 + m.xmin;
            let top = baseline - m.ymin - m.height as i32;
            for y in 0..m.height {
                for x in 0..m.width {
                    let (ty, tx) = (top + y as i32, left + x as i32);
                    if (0..s as i32).contains(&ty) && (0..s as i32).contains(&tx) {
                        img[ty as usize * s + tx as usize] = bitmap[y * m.width + x];
                    }
                }
            }
            labels.push(label as u32);
            data.extend_from_slice(&img);
        }
    }
    let examples = Examples {
        labels,
        concept_names: chars.iter().map(char::to_string).collect(),
        features: Features::Pixels {
            side,
            channels: 1,
            data,
        },
    };
    (examples, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_have_10_52_and_62_characters() {
        assert_eq!(Charset::Digits.chars().len(), 10);
        assert_eq!(Charset::Letters.chars().len(), 52);
        assert_eq!(Charset::Both.chars().len(), 62);
        assert_eq!(Charset::Both.chars()[10], 'A');
    }

    #[test]
    fn files_that_are_not_fonts_are_counted_not_fatal() {
        let (ex, stats) = render(&[("x.ttf".into(), b"not a font".to_vec())], &['a'], 8);
        assert_eq!((ex.labels.len(), stats.unreadable), (0, 1));
    }
}
