//! Built-in latent-class data: the model of the theory, with a knob for difficulty.
//!
//! Text: concept c has its own token distribution (a random topic of the vocabulary with random
//! weights); each token of an example comes from the shared Zipf background with probability
//! `difficulty`, else from the topic. Images: concept c has a prototype (blobs and a stroke); each
//! example is the prototype under a random shift, scale and rotation, plus Gaussian noise.

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

use super::{Examples, Features};

fn names(concepts: u32) -> Vec<String> {
    (0..concepts).map(|c| format!("c{c:03}")).collect()
}

/// Generates latent-class token sequences.
pub fn text(
    concepts: u32,
    per_concept: u32,
    vocab: u32,
    length: u32,
    difficulty: f64,
    seed: u64,
) -> Examples {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v = vocab as usize;
    // Background: Zipf(1) over a random ranking of the vocabulary.
    let mut ranking: Vec<usize> = (0..v).collect();
    ranking.shuffle(&mut rng);
    let mut bg_w = vec![0f64; v];
    for (rank, &tok) in ranking.iter().enumerate() {
        bg_w[tok] = 1.0 / (rank as f64 + 1.0);
    }
    let background = WeightedIndex::new(&bg_w).expect("Zipf weights are positive");
    let topic_size = (v / 16).clamp(2, v);
    let topics: Vec<(Vec<u32>, WeightedIndex<f64>)> = (0..concepts)
        .map(|_| {
            let toks: Vec<u32> = rand::seq::index::sample(&mut rng, v, topic_size)
                .into_iter()
                .map(|i| i as u32)
                .collect();
            // Exponential weights: a flat Dirichlet over the topic.
            let w: Vec<f64> = (0..topic_size)
                .map(|_| -(1.0 - rng.random::<f64>()).ln() + 1e-3)
                .collect();
            (
                toks,
                WeightedIndex::new(&w).expect("exponential weights are positive"),
            )
        })
        .collect();
    let total = (concepts * per_concept) as usize;
    let mut labels = Vec::with_capacity(total);
    let mut seqs = Vec::with_capacity(total);
    // Interleave concepts so that ids do not reveal labels.
    for _ in 0..per_concept {
        for (c, (toks, w)) in topics.iter().enumerate() {
            let seq = (0..length)
                .map(|_| {
                    if rng.random::<f64>() < difficulty {
                        background.sample(&mut rng) as u32
                    } else {
                        toks[w.sample(&mut rng)]
                    }
                })
                .collect();
            labels.push(c as u32);
            seqs.push(seq);
        }
    }
    Examples {
        labels,
        concept_names: names(concepts),
        features: Features::Tokens { vocab, seqs },
    }
}

/// Generates latent-class grey images of `side` x `side` pixels.
pub fn image(concepts: u32, per_concept: u32, side: u32, difficulty: f64, seed: u64) -> Examples {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = side as usize;
    let sf = side as f64;
    let prototypes: Vec<Vec<f64>> = (0..concepts).map(|_| prototype(&mut rng, s)).collect();
    let noise = Normal::new(0.0, 0.25 * difficulty + 1e-6).expect("noise std is positive");
    let total = (concepts * per_concept) as usize;
    let mut labels = Vec::with_capacity(total);
    let mut data = Vec::with_capacity(total * s * s);
    for _ in 0..per_concept {
        for (c, proto) in prototypes.iter().enumerate() {
            let d = difficulty;
            let dx = rng.random_range(-1.0..=1.0) * d * sf / 6.0;
            let dy = rng.random_range(-1.0..=1.0) * d * sf / 6.0;
            let scale = 1.0 + rng.random_range(-1.0..=1.0) * 0.15 * d;
            let angle: f64 = rng.random_range(-1.0..=1.0) * 0.3 * d;
            let (sin, cos) = angle.sin_cos();
            let mid = (sf - 1.0) / 2.0;
            for y in 0..s {
                for x in 0..s {
                    // Inverse map: output pixel -> prototype coordinate.
                    let px = x as f64 - mid - dx;
                    let py = y as f64 - mid - dy;
                    let sx = (cos * px + sin * py) / scale + mid;
                    let sy = (-sin * px + cos * py) / scale + mid;
                    let v = bilinear(proto, s, sx, sy) + noise.sample(&mut rng);
                    data.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
                }
            }
            labels.push(c as u32);
        }
    }
    Examples {
        labels,
        concept_names: names(concepts),
        features: Features::Pixels {
            side,
            channels: 1,
            data,
        },
    }
}

fn prototype(rng: &mut ChaCha8Rng, s: usize) -> Vec<f64> {
    let sf = s as f64;
    let mut img = vec![0f64; s * s];
    for _ in 0..3 {
        let cx = rng.random_range(0.2..0.8) * sf;
        let cy = rng.random_range(0.2..0.8) * sf;
        let sigma = rng.random_range(0.06..0.16) * sf;
        let amp = rng.random_range(0.5..1.0);
        for y in 0..s {
            for x in 0..s {
                let r2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                img[y * s + x] += amp * (-r2 / (2.0 * sigma * sigma)).exp();
            }
        }
    }
    // One stroke: a thick segment between two random points.
    let (x0, y0) = (
        rng.random_range(0.1..0.9) * sf,
        rng.random_range(0.1..0.9) * sf,
    );
    let (x1, y1) = (
        rng.random_range(0.1..0.9) * sf,
        rng.random_range(0.1..0.9) * sf,
    );
    let width = 0.06 * sf + 0.5;
    for y in 0..s {
        for x in 0..s {
            let d = segment_distance(x as f64, y as f64, x0, y0, x1, y1);
            if d < width {
                img[y * s + x] += 0.8 * (1.0 - d / width);
            }
        }
    }
    img.iter_mut().for_each(|v| *v = v.min(1.0));
    img
}

fn segment_distance(px: f64, py: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    let (vx, vy) = (x1 - x0, y1 - y0);
    let len2 = (vx * vx + vy * vy).max(1e-9);
    let t = (((px - x0) * vx + (py - y0) * vy) / len2).clamp(0.0, 1.0);
    ((px - x0 - t * vx).powi(2) + (py - y0 - t * vy).powi(2)).sqrt()
}

fn bilinear(img: &[f64], s: usize, x: f64, y: f64) -> f64 {
    let at = |xi: isize, yi: isize| {
        if xi < 0 || yi < 0 || xi >= s as isize || yi >= s as isize {
            0.0
        } else {
            img[yi as usize * s + xi as usize]
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (xi, yi) = (x0 as isize, y0 as isize);
    at(xi, yi) * (1.0 - fx) * (1.0 - fy)
        + at(xi + 1, yi) * fx * (1.0 - fy)
        + at(xi, yi + 1) * (1.0 - fx) * fy
        + at(xi + 1, yi + 1) * fx * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_deterministic_and_shaped() {
        let a = text(5, 4, 50, 7, 0.5, 3);
        assert_eq!(a, text(5, 4, 50, 7, 0.5, 3));
        assert_ne!(a, text(5, 4, 50, 7, 0.5, 4));
        assert_eq!(a.len(), 20);
        assert_eq!(a.concept_names.len(), 5);
        let Features::Tokens { seqs, vocab } = &a.features else {
            panic!("text")
        };
        assert!(
            seqs.iter()
                .all(|s| s.len() == 7 && s.iter().all(|&t| t < *vocab))
        );
        for c in 0..5 {
            assert_eq!(a.labels.iter().filter(|&&l| l == c).count(), 4);
        }
    }

    #[test]
    fn easy_text_concepts_are_separable_by_token_overlap() {
        // With no background, examples of one concept share tokens far more than across concepts.
        let a = text(4, 10, 400, 20, 0.0, 1);
        let Features::Tokens { seqs, .. } = &a.features else {
            panic!("text")
        };
        let overlap = |i: usize, j: usize| seqs[i].iter().filter(|t| seqs[j].contains(t)).count();
        let (mut same, mut diff) = (0, 0);
        for i in 0..a.len() {
            for j in 0..a.len() {
                if i != j {
                    if a.labels[i] == a.labels[j] {
                        same += overlap(i, j)
                    } else {
                        diff += overlap(i, j)
                    }
                }
            }
        }
        // Same-concept pairs are a third as many as cross pairs; demand far more overlap anyway.
        assert!(same > diff, "same {same} diff {diff}");
    }

    #[test]
    fn images_are_deterministic_and_vary_within_concept() {
        let a = image(3, 5, 12, 0.5, 9);
        assert_eq!(a, image(3, 5, 12, 0.5, 9));
        let Features::Pixels { side, data, .. } = &a.features else {
            panic!("image")
        };
        assert_eq!(data.len(), 15 * (*side as usize).pow(2));
        let px = |i: usize| &data[i * 144..(i + 1) * 144];
        // Examples 0 and 3 are both concept 0 but are not identical.
        assert_eq!(a.labels[0], a.labels[3]);
        assert_ne!(px(0), px(3));
        assert!(data.iter().any(|&p| p > 100));
    }
}
