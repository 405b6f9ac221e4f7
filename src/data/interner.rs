//! The word table of a counted vocabulary's one pass: each distinct word gets a local id, in
//! order of first appearance, and a count.
//!
//! This is the ingest's hot loop: one lookup per word of the corpus, in a table of every
//! distinct word (hundreds of thousands in a real corpus, megabytes, past the L2 cache), so
//! most of its time was spent waiting on memory. Two things cut that wait:
//! - a slot holds the word's count and its first 16 bytes, so a lookup of a word up to 16
//!   bytes reads one cache line (hashbrown's `HashMap<CompactString, u32>` read a control
//!   byte, the entry, then the separate count);
//! - the words of a text are hashed first and their slots prefetched some words ahead, so the
//!   misses overlap instead of following one another.
//!
//! Ids, counts and words are exactly those of a map from word to id in first-appearance order;
//! the table layout only changes how fast they are found.

use std::hash::BuildHasher;

use super::tokenize::{AsciiWords, lowercase};
use foldhash::fast::FixedState;
use unicode_segmentation::UnicodeSegmentation;

/// Bytes of a word held in its slot.
const INLINE: usize = 16;
/// Words whose slots are prefetched ahead of the one being looked up.
const AHEAD: usize = 8;
/// An empty slot's id.
const EMPTY: u32 = u32::MAX;

/// One table slot: a cache line holds two.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    count: u64,
    id: u32,
    len: u32,
    /// The word's first bytes, zero-padded.
    head: [u8; INLINE],
}

const VACANT: Slot = Slot {
    count: 0,
    id: EMPTY,
    len: 0,
    head: [0; INLINE],
};

/// The words of a corpus, each given a local id when first seen and counted: the one pass of a
/// counted vocabulary. Texts are kept as local ids (see [`Interner::add`]) until the vocabulary
/// is known, then mapped with [`super::tokenize::remap`], so the source is read once.
pub struct Interner {
    /// Open addressing, linear probing, a power of two long, at most half full.
    slots: Vec<Slot>,
    /// Every word by local id, concatenated; word `i` is `words[starts[i]..starts[i + 1]]`.
    words: Vec<u8>,
    starts: Vec<usize>,
    /// Local id to slot, to read counts back in id order.
    slot_of: Vec<u32>,
    hasher: FixedState,
    /// The current text's words, lowercase: (hash, start, end) in `text_words`.
    pending: Vec<(u64, usize, usize)>,
    text_words: Vec<u8>,
}

impl Default for Interner {
    fn default() -> Self {
        Self {
            slots: vec![VACANT; 1024],
            words: Vec::new(),
            starts: vec![0],
            slot_of: Vec::new(),
            hasher: FixedState::with_seed(0x6e65_6773_7765_6570),
            pending: Vec::new(),
            text_words: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("distinct", &self.slot_of.len())
            .finish()
    }
}

impl Interner {
    /// Counts the lowercase words (UAX #29 word boundaries) of `text` and appends their local
    /// ids to `out`, in order.
    pub fn add(&mut self, text: &str, out: &mut Vec<u32>) {
        // Words first, each hashed, so that the lookups below can prefetch ahead.
        self.pending.clear();
        self.text_words.clear();
        if text.is_ascii() {
            // Most corpora: split, lowercase and copy in one go over the bytes.
            for w in AsciiWords::new(text) {
                let start = self.text_words.len();
                self.text_words
                    .extend(w.bytes().map(|b| b.to_ascii_lowercase()));
                let hash = self.hash(&self.text_words[start..]);
                self.pending.push((hash, start, self.text_words.len()));
            }
        } else {
            let mut lower = String::new();
            for w in text.unicode_words() {
                let w = lowercase(w, &mut lower);
                let start = self.text_words.len();
                self.text_words.extend_from_slice(w.as_bytes());
                self.pending
                    .push((self.hash(w.as_bytes()), start, self.text_words.len()));
            }
        }
        let mask = self.slots.len() - 1;
        for i in 0..self.pending.len().min(AHEAD) {
            prefetch(&self.slots[self.pending[i].0 as usize & mask]);
        }
        for i in 0..self.pending.len() {
            if let Some(&(hash, _, _)) = self.pending.get(i + AHEAD) {
                prefetch(&self.slots[hash as usize & (self.slots.len() - 1)]);
            }
            let (hash, start, end) = self.pending[i];
            out.push(self.intern(hash, start, end));
        }
    }

    /// The local id of `text_words[start..end]`, counted once more.
    fn intern(&mut self, hash: u64, start: usize, end: usize) -> u32 {
        let word = &self.text_words[start..end];
        let key = head(word);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.id == EMPTY {
                break;
            }
            if slot.len as usize == word.len()
                && slot.head == key
                && (word.len() <= INLINE || {
                    let id = slot.id as usize;
                    &self.words[self.starts[id]..self.starts[id + 1]] == word
                })
            {
                slot.count += 1;
                return slot.id;
            }
            i = (i + 1) & mask;
        }
        // New word: inserted at `i`, the first empty slot of its probe sequence.
        let id = self.slot_of.len() as u32;
        self.slots[i] = Slot {
            count: 1,
            id,
            len: word.len() as u32,
            head: key,
        };
        self.slot_of.push(i as u32);
        self.words.extend_from_slice(word);
        self.starts.push(self.words.len());
        if 2 * self.slot_of.len() > self.slots.len() {
            self.grow();
        }
        id
    }

    /// Doubles the table, re-placing every word.
    fn grow(&mut self) {
        let grown = vec![VACANT; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, grown);
        let mask = self.slots.len() - 1;
        for (id, s) in self.slot_of.iter_mut().enumerate() {
            let slot = old[*s as usize];
            let word = &self.words[self.starts[id]..self.starts[id + 1]];
            let mut i = self.hasher.hash_one(word) as usize & mask;
            while self.slots[i].id != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
            *s = i as u32;
        }
    }

    /// A word's hash: the same whichever path found the word.
    fn hash(&self, word: &[u8]) -> u64 {
        self.hasher.hash_one(word)
    }

    /// Distinct words seen.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Whether no word was seen.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Each word with its count, by local id.
    pub fn words(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.slot_of.iter().enumerate().map(|(id, &s)| {
            (
                word_str(&self.words[self.starts[id]..self.starts[id + 1]]),
                self.slots[s as usize].count,
            )
        })
    }
}

/// A word's first bytes, zero-padded: compared whole, one 16-byte comparison, with the length
/// beside it telling apart words that differ only in padding.
fn head(word: &[u8]) -> [u8; INLINE] {
    let mut head = [0; INLINE];
    let n = word.len().min(INLINE);
    head[..n].copy_from_slice(&word[..n]);
    head
}

/// The word back as text: every word entered as a `&str`.
fn word_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("interned words are whole `&str`s")
}

/// Asks for `slot`'s cache line ahead of its use; a hint only.
#[inline(always)]
fn prefetch(slot: &Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching has no architectural effect; the pointer comes from a reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (slot as *const Slot).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Ids in first-appearance order and counts, as a plain map gives them, across growth,
    /// long words (past the inline bytes) and words sharing their first 16 bytes.
    #[test]
    fn ids_and_counts_are_those_of_a_plain_map() {
        let mut texts = Vec::new();
        for t in 0..3000u32 {
            let mut s = String::new();
            for j in 0..(t % 23) {
                let k = (t * 7 + j * 13) % 4099;
                match k % 5 {
                    0 => s.push_str(&format!("Word{k} ")),
                    1 => s.push_str(&format!("abcdefghijklmnop{k} ")),
                    2 => s.push_str(&format!("abcdefghijklmnopqrstuvwxyz{} ", k % 3)),
                    3 => s.push_str(&format!("ΣΊΣΥΦΟΣ{k}, ")),
                    _ => s.push_str(&format!("w{} ", k % 11)),
                }
            }
            texts.push(s);
        }
        let mut interner = Interner::default();
        let mut ids = HashMap::new();
        let mut counts: Vec<u64> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        for text in &texts {
            let mut got = Vec::new();
            interner.add(text, &mut got);
            let want: Vec<u32> = super::super::tokenize::words(text)
                .map(|w| {
                    let next = ids.len() as u32;
                    let id = *ids.entry(w.clone()).or_insert(next);
                    if id == next {
                        counts.push(0);
                        words.push(w);
                    }
                    counts[id as usize] += 1;
                    id
                })
                .collect();
            assert_eq!(got, want, "{text}");
        }
        assert!(interner.len() > 1024, "the table grew: {}", interner.len());
        let got: Vec<(String, u64)> = interner.words().map(|(w, c)| (w.to_owned(), c)).collect();
        let want: Vec<(String, u64)> = words.into_iter().zip(counts).collect();
        assert_eq!(got, want);
    }
}
