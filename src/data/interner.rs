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
    /// The word's first bytes, zero-padded, little-endian.
    head: u128,
}

const VACANT: Slot = Slot {
    count: 0,
    id: EMPTY,
    len: 0,
    head: 0,
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
    /// The current texts' words, hashed, waiting to be looked up.
    pending: Vec<Pending>,
    /// The current texts' words longer than [`INLINE`] bytes (every word of a non-ASCII
    /// text), lowercase, end to end.
    text_words: Vec<u8>,
    /// The current ASCII text and [`INLINE`] zero bytes, so that every word's head is one load.
    padded: Vec<u8>,
}

/// A word of the current text: its hash, head and length, and where `text_words` holds it
/// (words longer than [`INLINE`] bytes and non-ASCII texts' words only).
#[derive(Clone, Copy)]
struct Pending {
    hash: u64,
    key: u128,
    len: usize,
    start: usize,
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
            padded: Vec::new(),
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
        self.add_texts([text], out, &mut Vec::new());
    }

    /// [`Interner::add`] for each of `texts` in turn, all their ids appended to `out`; `ends`
    /// gets the length of `out` after each text. One text's lookups overlap the next one's:
    /// every word is hashed first and slots are prefetched some words ahead across texts, so
    /// the first words of a text wait on memory no longer than the others.
    pub fn add_texts<'t>(
        &mut self,
        texts: impl IntoIterator<Item = &'t str>,
        out: &mut Vec<u32>,
        ends: &mut Vec<usize>,
    ) {
        self.pending.clear();
        self.text_words.clear();
        let first_end = ends.len();
        for text in texts {
            self.words_of(text);
            ends.push(self.pending.len());
        }
        let mask = self.slots.len() - 1;
        for p in self.pending.iter().take(AHEAD) {
            prefetch(&self.slots[p.hash as usize & mask]);
        }
        let base = out.len();
        for i in 0..self.pending.len() {
            if let Some(p) = self.pending.get(i + AHEAD) {
                prefetch(&self.slots[p.hash as usize & (self.slots.len() - 1)]);
            }
            let p = self.pending[i];
            out.push(self.intern(p));
        }
        for end in &mut ends[first_end..] {
            *end += base;
        }
    }

    /// Queues the words of `text` for lookup.
    fn words_of(&mut self, text: &str) {
        if text.is_ascii() {
            // Most corpora: a word's first 16 bytes are loaded, lowercased and hashed in
            // registers; only longer words are copied, to be compared whole.
            self.padded.clear();
            self.padded.extend_from_slice(text.as_bytes());
            // Every word's head is read as 16 bytes, whatever its length.
            self.padded.extend_from_slice(&[0; INLINE]);
            let base = text.as_ptr() as usize;
            for w in AsciiWords::new(text) {
                let (at, len) = (w.as_ptr() as usize - base, w.len());
                let key = ascii_lowercase(head(&self.padded[at..], len));
                if len <= INLINE {
                    self.pending.push(Pending {
                        hash: short_hash(key, len),
                        key,
                        len,
                        start: 0,
                    });
                } else {
                    let start = self.text_words.len();
                    self.text_words
                        .extend(w.bytes().map(|b| b.to_ascii_lowercase()));
                    let hash = word_hash(&self.hasher, &self.text_words[start..]);
                    self.pending.push(Pending {
                        hash,
                        key,
                        len,
                        start,
                    });
                }
            }
        } else {
            let mut lower = String::new();
            for w in text.unicode_words() {
                let w = lowercase(w, &mut lower).as_bytes();
                let start = self.text_words.len();
                self.text_words.extend_from_slice(w);
                self.text_words.extend_from_slice(&[0; INLINE]);
                let (key, len) = (head(&self.text_words[start..], w.len()), w.len());
                self.text_words.truncate(start + len);
                self.pending.push(Pending {
                    hash: word_hash(&self.hasher, w),
                    key,
                    len,
                    start,
                });
            }
        }
    }

    /// The local id of the pending word `p`, counted once more.
    fn intern(&mut self, p: Pending) -> u32 {
        let long = |words: &[u8]| &self.text_words[p.start..p.start + p.len] == words;
        let mask = self.slots.len() - 1;
        let mut i = p.hash as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.id == EMPTY {
                break;
            }
            if slot.len as usize == p.len
                && slot.head == p.key
                && (p.len <= INLINE || {
                    let id = slot.id as usize;
                    long(&self.words[self.starts[id]..self.starts[id + 1]])
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
            len: p.len as u32,
            head: p.key,
        };
        self.slot_of.push(i as u32);
        if p.len <= INLINE {
            self.words.extend_from_slice(&p.key.to_le_bytes()[..p.len]);
        } else {
            self.words
                .extend_from_slice(&self.text_words[p.start..p.start + p.len]);
        }
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
            let mut i = word_hash(&self.hasher, word) as usize & mask;
            while self.slots[i].id != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
            *s = i as u32;
        }
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

/// The first bytes of a word of `len` bytes at the start of `bytes` (at least [`INLINE`] long),
/// zero-padded: compared whole, one 16-byte comparison, with the length beside it telling apart
/// words that differ only in padding. One load and a mask: a copy of `len` bytes was a call to
/// `memcpy` and a stalled load of its result.
fn head(bytes: &[u8], len: usize) -> u128 {
    let raw = u128::from_le_bytes(bytes[..INLINE].try_into().expect("16 bytes"));
    match len {
        0 => 0,
        n if n >= INLINE => raw,
        n => raw & (u128::MAX >> (8 * (INLINE - n))),
    }
}

/// ASCII bytes lowercased sixteen at a time (bytes `A` to `Z` gain 0x20): a byte plus 0x3f
/// reaches 0x80 from `A` on, plus 0x25 from past `Z` on, and no ASCII byte carries into the next.
fn ascii_lowercase(x: u128) -> u128 {
    const HIGH: u128 = 0x8080_8080_8080_8080_8080_8080_8080_8080;
    let from_a = x.wrapping_add(HIGH / 0x80 * 0x3f);
    let past_z = x.wrapping_add(HIGH / 0x80 * 0x25);
    x | ((from_a & !past_z & HIGH) >> 2)
}

/// A lowercase word's hash: the same whichever path found the word.
fn word_hash(hasher: &FixedState, word: &[u8]) -> u64 {
    if word.len() <= INLINE {
        let mut padded = [0; INLINE];
        padded[..word.len()].copy_from_slice(word);
        short_hash(u128::from_le_bytes(padded), word.len())
    } else {
        hasher.hash_one(word)
    }
}

/// The hash of a word of `len` bytes, at most [`INLINE`], with head `key` (zero-padded): two
/// folded multiplies of the head's halves (foldhash's mixing step), in registers.
fn short_hash(key: u128, len: usize) -> u64 {
    const SEEDS: [u64; 3] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
    ];
    let fold = |a: u64, b: u64| {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    };
    let (lo, hi) = (key as u64, (key >> 64) as u64);
    fold(fold(lo ^ SEEDS[0], hi ^ SEEDS[1]) ^ len as u64, SEEDS[2])
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

    #[test]
    fn ascii_bytes_lowercase_as_the_standard_library_does() {
        for b in 0..0x80u8 {
            for at in 0..INLINE {
                let mut bytes = [b'a'; INLINE];
                bytes[at] = b;
                let mut want = bytes;
                want.make_ascii_lowercase();
                let got = ascii_lowercase(u128::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got, want, "byte {b:#x} at {at}");
            }
        }
    }

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
        // Texts looked up together give what they give one at a time.
        let mut batched = Interner::default();
        let (mut got, mut ends) = (Vec::new(), Vec::new());
        for texts in texts.chunks(7) {
            batched.add_texts(texts.iter().map(String::as_str), &mut got, &mut ends);
        }
        let mut one_by_one = Interner::default();
        let (mut want, mut want_ends) = (Vec::new(), Vec::new());
        for text in &texts {
            one_by_one.add(text, &mut want);
            want_ends.push(want.len());
        }
        assert_eq!((got, ends), (want, want_ends));
        let got: Vec<(String, u64)> = interner.words().map(|(w, c)| (w.to_owned(), c)).collect();
        let want: Vec<(String, u64)> = words.into_iter().zip(counts).collect();
        assert_eq!(got, want);
    }
}
