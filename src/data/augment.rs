//! Seeded image augmentations for augmentation positives: random resized crop (nearest
//! neighbour), horizontal flip, brightness and contrast jitter, Gaussian noise. Images are
//! `side x side x channels` rows of f32 in [0, 1], channels last.

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// Resolved augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Augment {
    /// Smallest crop side fraction; 1: no crop.
    pub crop: f64,
    /// Random horizontal flip.
    pub flip: bool,
    /// Brightness / contrast factor range half-width.
    pub jitter: f64,
    /// Gaussian noise standard deviation.
    pub noise: f64,
}

impl Augment {
    /// The settings `[train.augment]` defaults to.
    pub const DEFAULT: Augment = Augment {
        crop: 0.6,
        flip: false,
        jitter: 0.4,
        noise: 0.05,
    };

    /// Writes one augmented view of `src` into `dst` (same length).
    pub fn view(
        &self,
        src: &[f32],
        dst: &mut [f32],
        side: usize,
        channels: usize,
        rng: &mut impl Rng,
    ) {
        debug_assert_eq!(src.len(), side * side * channels);
        // Crop window: side fraction in [crop, 1], anywhere inside the image.
        let frac = if self.crop < 1.0 {
            rng.random_range(self.crop..=1.0)
        } else {
            1.0
        };
        let win = ((side as f64 * frac).round() as usize).clamp(1, side);
        let (oy, ox) = (
            rng.random_range(0..=side - win),
            rng.random_range(0..=side - win),
        );
        let flip = self.flip && rng.random_bool(0.5);
        let factor = |rng: &mut dyn rand::RngCore| {
            if self.jitter > 0.0 {
                rng.random_range(1.0 - self.jitter..=1.0 + self.jitter) as f32
            } else {
                1.0
            }
        };
        let (brightness, contrast) = (factor(rng), factor(rng));
        let mean = src.iter().sum::<f32>() / src.len().max(1) as f32;
        for y in 0..side {
            let sy = oy + y * win / side;
            for x in 0..side {
                let xx = if flip { side - 1 - x } else { x };
                let sx = ox + xx * win / side;
                for c in 0..channels {
                    dst[(y * side + x) * channels + c] = src[(sy * side + sx) * channels + c];
                }
            }
        }
        if self.jitter == 0.0 && self.noise == 0.0 {
            return;
        }
        let noise = Normal::new(0.0f32, self.noise.max(0.0) as f32).expect("a finite deviation");
        for v in dst.iter_mut() {
            let mut p = ((*v - mean) * contrast + mean) * brightness;
            if self.noise > 0.0 {
                p += noise.sample(rng);
            }
            *v = p.clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const OFF: Augment = Augment {
        crop: 1.0,
        flip: false,
        jitter: 0.0,
        noise: 0.0,
    };

    #[test]
    fn identity_when_everything_is_off_and_flip_mirrors_rows() {
        let src: Vec<f32> = (0..2 * 3 * 3).map(|i| i as f32 / 20.0).collect();
        let mut dst = vec![0.0; src.len()];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        OFF.view(&src, &mut dst, 3, 2, &mut rng);
        assert_eq!(dst, src);
        let flip = Augment { flip: true, ..OFF };
        let mut flipped = false;
        for _ in 0..20 {
            flip.view(&src, &mut dst, 3, 2, &mut rng);
            if dst != src {
                // Pixel (0, 0) now holds pixel (0, 2), channel by channel.
                assert_eq!(&dst[..2], &src[4..6]);
                flipped = true;
            }
        }
        assert!(flipped, "a fair coin flips at least once in 20 draws");
    }

    #[test]
    fn views_are_seeded_in_range_and_differ() {
        let src: Vec<f32> = (0..8 * 8).map(|i| (i % 7) as f32 / 7.0).collect();
        let aug = Augment {
            crop: 0.5,
            flip: true,
            jitter: 0.4,
            noise: 0.1,
        };
        let view = |seed| {
            let mut dst = vec![0.0; src.len()];
            aug.view(&src, &mut dst, 8, 1, &mut ChaCha8Rng::seed_from_u64(seed));
            dst
        };
        assert_eq!(view(3), view(3));
        assert_ne!(view(3), view(4));
        assert!(view(5).iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
