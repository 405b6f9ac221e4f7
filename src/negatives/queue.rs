//! Queue negatives (He et al., "Momentum Contrast for Unsupervised Visual Representation
//! Learning", CVPR 2020, section 3.2): each step's negatives are the last `k` keys, encodings of
//! earlier batches' positives by a momentum copy of the encoder, kept in a FIFO queue. `k` is
//! then independent of the batch size, and every negative is a few steps stale. Points take the
//! uniform pool's anchors and positives; the pool's first row seeds the queue.

use std::ops::Range;

use candle_core::{DType, Tensor};
use candle_nn::VarMap;

use super::{DataShape, Pool, Sampler, SamplerCtx, Strategy, Triplets, uniform::Uniform};
use crate::data::Inputs;
use crate::model::Encoder;
use crate::objective::LossConfig;
use crate::point::SweepPoint;
use crate::{Result, spec};

/// `strategy = "queue"`.
#[derive(Debug)]
pub(super) struct Queue;

impl Strategy for Queue {
    fn kind(&self) -> spec::Strategy {
        spec::Strategy::Queue
    }

    fn pool(&self) -> &'static dyn Pool {
        &Uniform
    }

    fn setting(&self) -> &'static str {
        "negatives.strategy"
    }

    fn check_data(&self, p: &SweepPoint, _shape: &DataShape) -> std::result::Result<(), String> {
        if p.positive != spec::PositiveMode::SameConcept {
            return Err(format!(
                "queue negatives train with same-concept positives (their keys fill the \
                 queue); this point has positive = \"{}\"",
                p.positive.as_str()
            ));
        }
        Ok(())
    }

    fn sampler<'a>(&self, cx: &SamplerCtx<'a>) -> Result<Box<dyn Sampler + 'a>> {
        let p = cx.point;
        let vm = VarMap::new();
        // Built from the point's seed, like the encoder being trained: the same weights.
        let key = Encoder::new(cx.encoder, p.seed, &vm, cx.inputs.device())?;
        let momentum = p.momentum.expect("queue points carry their momentum");
        Ok(Box::new(QueueSampler {
            rows: cx.anchors.len(),
            queue: MomentumQueue::new(key, vm, momentum, p.k as usize, cx.loss),
            used: Vec::new(),
        }))
    }
}

/// The FIFO queue of keys and the momentum encoder that makes them.
pub struct MomentumQueue {
    key: Encoder,
    vars: VarMap,
    momentum: f64,
    loss: LossConfig,
    len: usize,
    /// Ring buffer: example id, key (`dim` f32) and the step it was enqueued at, per slot.
    ids: Vec<u32>,
    keys: Vec<f32>,
    born: Vec<usize>,
    /// Slot the next key goes to (the oldest).
    head: usize,
    dim: usize,
    ages: (f64, u64),
}

impl std::fmt::Debug for MomentumQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentumQueue")
            .field("momentum", &self.momentum)
            .field("len", &self.len)
            .field("ids", &self.ids)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl MomentumQueue {
    /// An empty queue of `len` keys from `key` (whose weights live in `vars`), updated with
    /// `momentum`; keys are represented as `loss` represents encodings.
    pub fn new(key: Encoder, vars: VarMap, momentum: f64, len: usize, loss: LossConfig) -> Self {
        Self {
            key,
            vars,
            momentum,
            loss,
            len,
            ids: Vec::with_capacity(len),
            keys: Vec::new(),
            born: Vec::with_capacity(len),
            head: 0,
            dim: 0,
            ages: (0.0, 0),
        }
    }

    /// Keys of `ids` under the momentum encoder (no gradient, no dropout), `(ids.len(), dim)`.
    ///
    /// # Errors
    /// A candle error from the encoder.
    pub fn encode(&self, inputs: &Inputs, ids: &[u32]) -> Result<Tensor> {
        let f = self.key.encode(&inputs.select(ids)?, None)?;
        Ok(self.loss.represent(&f)?.detach())
    }

    /// Appends the keys `keys` (`(n, dim)`) of examples `ids`, enqueued at `step`, dropping the
    /// oldest beyond the queue's length; only the last `len` of a larger batch stay.
    ///
    /// # Errors
    /// A candle error if `keys` is not `(ids.len(), dim)` f32.
    pub fn push(&mut self, ids: &[u32], keys: &Tensor, step: usize) -> Result<()> {
        let (n, dim) = keys.dims2()?;
        self.dim = dim;
        let flat = keys.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let skip = n.saturating_sub(self.len);
        for (i, &id) in ids.iter().enumerate().skip(skip) {
            let row = &flat[i * dim..(i + 1) * dim];
            if self.ids.len() < self.len {
                self.ids.push(id);
                self.keys.extend_from_slice(row);
                self.born.push(step);
            } else {
                let h = self.head;
                self.ids[h] = id;
                self.keys[h * dim..(h + 1) * dim].copy_from_slice(row);
                self.born[h] = step;
                self.head = (h + 1) % self.len;
            }
        }
        Ok(())
    }

    /// The queue oldest first: example ids and keys `(len, dim)`. Records the entries' ages at
    /// `step` for [`MomentumQueue::staleness`].
    ///
    /// # Errors
    /// A candle error building the tensor.
    pub fn snapshot(&mut self, step: usize) -> Result<(Vec<u32>, Tensor)> {
        let n = self.ids.len();
        let order: Vec<usize> = (0..n).map(|i| (self.head + i) % n.max(1)).collect();
        let mut keys = Vec::with_capacity(n * self.dim);
        for &s in &order {
            keys.extend_from_slice(&self.keys[s * self.dim..(s + 1) * self.dim]);
            self.ages.0 += (step - self.born[s]) as f64;
        }
        self.ages.1 += n as u64;
        let ids = order.iter().map(|&s| self.ids[s]).collect();
        let device = self.key_device();
        Ok((ids, Tensor::from_vec(keys, (n, self.dim), &device)?))
    }

    /// Mean age in steps of the negatives used so far (the step a key was used at minus the
    /// step it was enqueued at); NaN before any use.
    pub fn staleness(&self) -> f64 {
        if self.ages.1 == 0 {
            f64::NAN
        } else {
            self.ages.0 / self.ages.1 as f64
        }
    }

    /// `key <- m key + (1 - m) query` for every weight (He et al. 2020, eq. 2); `query` holds
    /// the encoder being trained, with the same names.
    ///
    /// # Errors
    /// A weight of the key encoder missing from `query`, or a candle error.
    pub fn momentum_update(&self, query: &VarMap) -> Result<()> {
        let q = query.data().lock().expect("an unpoisoned var map");
        let k = self.vars.data().lock().expect("an unpoisoned var map");
        for (name, kv) in k.iter() {
            let qv = q.get(name).ok_or_else(|| {
                crate::Error::Internal(format!("no weight {name} in the encoder being trained"))
            })?;
            let next = ((kv.as_tensor() * self.momentum)?
                + (qv.as_tensor().detach() * (1.0 - self.momentum))?)?;
            kv.set(&next)?;
        }
        Ok(())
    }

    fn key_device(&self) -> candle_core::Device {
        let vars = self.vars.data().lock().expect("an unpoisoned var map");
        vars.values()
            .next()
            .map_or(candle_core::Device::Cpu, |v| v.device().clone())
    }

    /// Whether no key was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The queue's length, `k`.
    pub fn capacity(&self) -> usize {
        self.len
    }

    /// Example ids in the queue, oldest first.
    pub fn ids(&self) -> Vec<u32> {
        let n = self.ids.len();
        (0..n).map(|i| self.ids[(self.head + i) % n]).collect()
    }
}

/// Trains each step against the queue; records the negatives each row was trained with.
#[derive(Debug)]
struct QueueSampler {
    rows: usize,
    queue: MomentumQueue,
    used: Vec<u32>,
}

impl Sampler for QueueSampler {
    fn rows(&self) -> usize {
        self.rows
    }

    fn batch<'s>(
        &'s mut self,
        _step: usize,
        rows: Range<usize>,
        t: Triplets<'s>,
        _encoder: &Encoder,
        _inputs: &Inputs,
    ) -> Result<(Triplets<'s>, Range<usize>)> {
        Ok((t, rows))
    }

    fn queue(&mut self) -> Option<(&mut MomentumQueue, &mut Vec<u32>)> {
        Some((&mut self.queue, &mut self.used))
    }

    fn used<'s>(&'s self, _t: Triplets<'s>) -> (&'s [u32], usize) {
        (&self.used, self.queue.len)
    }

    fn staleness(&self) -> f64 {
        self.queue.staleness()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use std::collections::HashMap;

    use super::*;
    use crate::model::EncoderConfig;

    /// Names of `vars`' weights with their shapes.
    fn shapes(vars: &VarMap) -> HashMap<String, Vec<usize>> {
        let v = vars.data().lock().unwrap();
        v.iter()
            .map(|(n, t)| (n.clone(), t.dims().to_vec()))
            .collect()
    }

    use crate::spec::{EncoderKind, Loss};

    fn queue(len: usize, momentum: f64) -> (MomentumQueue, Encoder, VarMap) {
        let cfg = EncoderConfig::dense(EncoderKind::Mlp, 4, 8, 2);
        let loss = LossConfig {
            loss: Loss::Nce,
            temperature: 1.0,
            tau_plus: 0.0,
            beta: 0.0,
            negative_weight: 1.0,
        };
        let (kv, qv) = (VarMap::new(), VarMap::new());
        let key = Encoder::new(&cfg, 7, &kv, &Device::Cpu).unwrap();
        let query = Encoder::new(&cfg, 7, &qv, &Device::Cpu).unwrap();
        (MomentumQueue::new(key, kv, momentum, len, loss), query, qv)
    }

    fn keys(rows: &[[f32; 2]]) -> Tensor {
        Tensor::from_vec(rows.concat(), (rows.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn the_queue_keeps_the_last_len_keys_oldest_first_with_their_ages() {
        let (mut q, _, _) = queue(3, 0.9);
        q.push(&[10, 11], &keys(&[[1.0, 0.0], [2.0, 0.0]]), 0)
            .unwrap();
        q.push(&[12, 13], &keys(&[[3.0, 0.0], [4.0, 0.0]]), 1)
            .unwrap();
        let (ids, k) = q.snapshot(2).unwrap();
        assert_eq!(ids, [11, 12, 13]);
        assert_eq!(
            k.to_vec2::<f32>().unwrap(),
            [[2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]
        );
        // Ages at step 2: 2, 1, 1.
        assert!((q.staleness() - 4.0 / 3.0).abs() < 1e-12);
        // A batch larger than the queue leaves only its last keys.
        q.push(&[20, 21, 22, 23], &keys(&[[5.0, 0.0]; 4]), 2)
            .unwrap();
        assert_eq!(q.ids(), [21, 22, 23]);
        let (ids, _) = q.snapshot(5).unwrap();
        assert_eq!(ids, [21, 22, 23]);
        // Ages 2, 1, 1 then 3, 3, 3: 13 over 6 uses.
        assert!((q.staleness() - 13.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn the_momentum_update_moves_each_key_weight_towards_the_query() {
        let (q, _, qv) = queue(2, 0.75);
        let before = |vm: &VarMap| {
            let v = vm.data().lock().unwrap();
            let mut all: Vec<(String, Vec<f32>)> = v
                .iter()
                .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };
        assert_eq!(shapes(&q.vars), shapes(&qv));
        // The query moves by +1 everywhere; the key follows by (1 - m) = 0.25 of the gap.
        let k0 = before(&q.vars);
        for v in qv.data().lock().unwrap().values() {
            v.set(&(v.as_tensor() + 1.0).unwrap()).unwrap();
        }
        q.momentum_update(&qv).unwrap();
        for ((name, k1), (_, k0)) in before(&q.vars).iter().zip(&k0) {
            for (a, b) in k1.iter().zip(k0) {
                assert!((a - (b + 0.25)).abs() < 1e-6, "{name}: {a} vs {b} + 0.25");
            }
        }
    }
}
