//! Tokenization: lowercase Unicode words (UAX #29 word boundaries), mapped to ids through a
//! vocabulary counted over the corpus or through a fixed number of hash buckets.

use compact_str::CompactString;
use hashbrown::HashMap;
use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

/// How words become ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VocabMode {
    /// Words seen at least `min_count` times, the `max_vocab` most frequent (ties by word);
    /// rarer words are dropped. Needs a counting pass over the corpus.
    Counted {
        /// Minimum corpus frequency.
        min_count: u32,
        /// Largest vocabulary kept.
        max_vocab: u32,
    },
    /// `hash(word) mod buckets`: one pass, no vocabulary, collisions allowed.
    Hashed {
        /// Number of buckets.
        buckets: u32,
    },
}

/// Resolved tokenizer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenizeConfig {
    /// Vocabulary mode.
    pub mode: VocabMode,
    /// Tokens kept per example (the first ones).
    pub max_tokens: u32,
}

/// The lowercase words of `text`, in order.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    split_words(text).map(str::to_lowercase)
}

/// The words of `text` (UAX #29 word boundaries, segments holding a letter or a digit), in
/// order: `unicode_words`, with ASCII text scanned by [`AsciiWords`].
pub(super) fn split_words(text: &str) -> Words<'_> {
    if text.is_ascii() {
        Words::Ascii(AsciiWords::new(text))
    } else {
        Words::Unicode(text.unicode_words())
    }
}

/// The iterator of [`split_words`].
pub(super) enum Words<'a> {
    Ascii(AsciiWords<'a>),
    Unicode(unicode_segmentation::UnicodeWords<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Ascii(w) => w.next(),
            Words::Unicode(w) => w.next(),
        }
    }
}

/// The UAX #29 words of ASCII text, the same as `unicode_words` gives, faster: most corpora
/// are ASCII, and segmenting them was a large share of a text ingest (see the README's
/// Performance section).
///
/// In ASCII the rules (Unicode Standard Annex #29, section 4.1.1) reduce to: letters, digits
/// and `_` join (WB5, WB8 to WB10, WB13a, WB13b); one `:`, `.` or `'` joins two letters (WB6,
/// WB7); one `,`, `;`, `.` or `'` joins two digits (WB11, WB12); everything else breaks, and a
/// segment with no letter or digit (`__`) is not a word.
pub(super) struct AsciiWords<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> AsciiWords<'a> {
    /// The words of `text`, which must be ASCII.
    pub(super) fn new(text: &'a str) -> Self {
        debug_assert!(text.is_ascii());
        Self { text, at: 0 }
    }
}

/// Byte classes of the ASCII word rules, one table lookup per byte instead of a chain of
/// range checks.
const JOIN: u8 = 1;
const ALPHA: u8 = 2;
const DIGIT: u8 = 4;
const MID_LETTER: u8 = 8;
const MID_NUM: u8 = 16;
static CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() {
            class[b] = JOIN | ALPHA;
        } else if c.is_ascii_digit() {
            class[b] = JOIN | DIGIT;
        } else if c == b'_' {
            class[b] = JOIN;
        }
        if matches!(c, b':' | b'.' | b'\'') {
            class[b] |= MID_LETTER;
        }
        if matches!(c, b',' | b';' | b'.' | b'\'') {
            class[b] |= MID_NUM;
        }
        b += 1;
    }
    class
};

impl<'a> Iterator for AsciiWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let class = |i: usize| b.get(i).map_or(0, |&c| CLASS[c as usize]);
        loop {
            while self.at < b.len() && CLASS[b[self.at] as usize] & JOIN == 0 {
                self.at += 1;
            }
            if self.at == b.len() {
                return None;
            }
            let start = self.at;
            // Whether the segment has a letter or digit: `_` alone joins but is no word.
            let mut alnum = 0;
            loop {
                // Sixteen bytes at a time while sixteen are left, then one at a time.
                while self.at + 16 <= b.len() {
                    let (join, letters_digits) = join_bytes(&b[self.at..self.at + 16]);
                    let run = join.trailing_ones() as usize;
                    if letters_digits & ((1u32 << run) - 1) != 0 {
                        alnum |= ALPHA;
                    }
                    self.at += run;
                    if run < 16 {
                        break;
                    }
                }
                while self.at < b.len() && CLASS[b[self.at] as usize] & JOIN != 0 {
                    alnum |= CLASS[b[self.at] as usize];
                    self.at += 1;
                }
                let (prev, mid, next) = (class(self.at - 1), class(self.at), class(self.at + 1));
                let glued = (prev & next & ALPHA != 0 && mid & MID_LETTER != 0)
                    || (prev & next & DIGIT != 0 && mid & MID_NUM != 0);
                if !glued {
                    break;
                }
                self.at += 2;
            }
            if alnum & (ALPHA | DIGIT) != 0 {
                return Some(&self.text[start..self.at]);
            }
        }
    }
}

/// Which of 16 ASCII bytes join a word (letters, digits, `_`: bit i for byte i) and which are
/// letters or digits, sixteen compares at once.
#[inline]
fn join_bytes(bytes: &[u8]) -> (u32, u32) {
    let bytes: &[u8; 16] = bytes.try_into().expect("16 bytes");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `bytes`, unaligned.
    unsafe {
        use std::arch::x86_64::*;
        let v = _mm_loadu_si128(bytes.as_ptr().cast());
        let within = |x: __m128i, lo: u8, hi: u8| {
            // ASCII bytes compare the same signed or unsigned.
            _mm_and_si128(
                _mm_cmpgt_epi8(x, _mm_set1_epi8(lo as i8 - 1)),
                _mm_cmplt_epi8(x, _mm_set1_epi8(hi as i8 + 1)),
            )
        };
        // `b | 0x20` is a lowercase letter exactly when `b` is a letter.
        let letters = within(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', b'z');
        let alnum = _mm_or_si128(letters, within(v, b'0', b'9'));
        let join = _mm_or_si128(alnum, _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8)));
        (
            _mm_movemask_epi8(join) as u32,
            _mm_movemask_epi8(alnum) as u32,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut join, mut alnum) = (0, 0);
        for (i, &c) in bytes.iter().enumerate() {
            let class = CLASS[c as usize];
            join |= u32::from(class & JOIN != 0) << i;
            alnum |= u32::from(class & (ALPHA | DIGIT) != 0) << i;
        }
        (join, alnum)
    }
}

pub use super::interner::Interner;

/// `w` lowercased, in `buf` when it has an uppercase letter (most words have none).
pub(super) fn lowercase<'a>(w: &'a str, buf: &'a mut String) -> &'a str {
    if w.is_ascii() {
        if !w.bytes().any(|b| b.is_ascii_uppercase()) {
            return w;
        }
        buf.clear();
        buf.push_str(w);
        buf.make_ascii_lowercase();
        buf
    } else if w.chars().any(|c| !c.to_lowercase().eq([c])) {
        // Not only uppercase letters: titlecase ones (`ǅ`, Greek with prosgegrammeni) lowercase
        // too, and are not `is_uppercase`.
        // `str::to_lowercase`, not per-char mapping: a final sigma lowercases differently.
        *buf = w.to_lowercase();
        buf
    } else {
        w
    }
}

/// The counted vocabulary of the words seen by `interners`: words seen at least `min_count`
/// times in all, the `max_vocab` most frequent (ties by word). Returns it with, per interner,
/// each local id's vocabulary id ([`DROPPED`] for a word left out), and the number of distinct
/// words seen.
pub fn vocabulary(
    interners: Vec<Interner>,
    min_count: u32,
    max_vocab: u32,
) -> (Vocabulary, Vec<Vec<u32>>, usize) {
    // Merge into one table, remembering where each local id went.
    let mut global: HashMap<CompactString, u32> = HashMap::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut to_global: Vec<Vec<u32>> = Vec::with_capacity(interners.len());
    for i in interners {
        let mut map = Vec::with_capacity(i.len());
        for (w, count) in i.words() {
            let g = match global.get(w) {
                Some(&g) => g,
                None => {
                    counts.push(0);
                    let g = counts.len() as u32 - 1;
                    global.insert(w.into(), g);
                    g
                }
            };
            counts[g as usize] += count;
            map.push(g);
        }
        to_global.push(map);
    }
    let distinct = global.len();
    let mut kept: Vec<(CompactString, u64, u32)> = global
        .into_iter()
        .map(|(w, g)| (w, counts[g as usize], g))
        .filter(|(_, c, _)| *c >= u64::from(min_count))
        .collect();
    kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    kept.truncate(max_vocab as usize);
    let mut final_of = vec![DROPPED; counts.len()];
    for (id, (_, _, g)) in kept.iter().enumerate() {
        final_of[*g as usize] = id as u32;
    }
    let ids = kept
        .iter()
        .enumerate()
        .map(|(i, (w, _, _))| (w.clone(), i as u32))
        .collect();
    let words = kept
        .into_iter()
        .map(|(w, c, _)| (w.into_string(), c))
        .collect();
    let maps = to_global
        .into_iter()
        .map(|m| m.into_iter().map(|g| final_of[g as usize]).collect())
        .collect();
    (Vocabulary { words, ids }, maps, distinct)
}

/// The vocabulary id of a word left out of the vocabulary.
pub const DROPPED: u32 = u32::MAX;

/// Maps one text's local ids (from [`Interner::add`]) through `to_vocab` (from [`vocabulary`]),
/// appending the first `max_tokens` words in the vocabulary to `out`; returns the words dropped
/// as out of vocabulary before that. Gives what [`Tokenizer::encode`] gives on the text.
pub fn remap(
    local: impl IntoIterator<Item = u32>,
    to_vocab: &[u32],
    max_tokens: usize,
    out: &mut Vec<u32>,
) -> usize {
    let start = out.len();
    let mut dropped = 0;
    for l in local {
        if out.len() - start >= max_tokens {
            break;
        }
        match to_vocab[l as usize] {
            DROPPED => dropped += 1,
            id => out.push(id),
        }
    }
    dropped
}

/// A counted vocabulary: id `i` is `words[i]`.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Word and corpus count per id.
    pub words: Vec<(String, u64)>,
    ids: HashMap<CompactString, u32>,
}

/// Words to ids, in either mode.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Option<Vocabulary>,
    buckets: u32,
    max_tokens: usize,
}

impl Tokenizer {
    /// A tokenizer over a counted vocabulary.
    pub fn counted(vocab: Vocabulary, max_tokens: u32) -> Self {
        Self {
            vocab: Some(vocab),
            buckets: 0,
            max_tokens: max_tokens as usize,
        }
    }

    /// A hashing tokenizer.
    pub fn hashed(buckets: u32, max_tokens: u32) -> Self {
        Self {
            vocab: None,
            buckets,
            max_tokens: max_tokens as usize,
        }
    }

    /// Number of distinct ids.
    pub fn vocab_size(&self) -> u32 {
        match &self.vocab {
            Some(v) => v.words.len() as u32,
            None => self.buckets,
        }
    }

    /// The counted vocabulary, if any.
    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        self.vocab.as_ref()
    }

    /// Appends the ids of `text` to `out`; returns how many words were dropped as out of
    /// vocabulary.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> usize {
        let start = out.len();
        let mut dropped = 0;
        let mut lower = String::new();
        for w in split_words(text) {
            if out.len() - start >= self.max_tokens {
                break;
            }
            let w = lowercase(w, &mut lower);
            match &self.vocab {
                Some(v) => match v.ids.get(w) {
                    Some(&id) => out.push(id),
                    None => dropped += 1,
                },
                None => {
                    let h = blake3::hash(w.as_bytes());
                    let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                    out.push((x % u64::from(self.buckets)) as u32);
                }
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_unicode_words() {
        let w: Vec<String> = words("Ça marche: the CAT's 3.5 naïve-ish café!").collect();
        assert_eq!(
            w,
            [
                "ça", "marche", "the", "cat's", "3.5", "naïve", "ish", "café"
            ]
        );
        // Titlecase letters are not uppercase, but lowercase all the same; so does a final
        // sigma, as `str::to_lowercase` has it.
        let w: Vec<String> = words("ǅungla ǆungla ᾼσ ΟΔΟΣ").collect();
        assert_eq!(w, ["ǆungla", "ǆungla", "ᾳσ", "οδος"]);
        let mut interner = Interner::default();
        let mut ids = Vec::new();
        interner.add("ǅungla ǆungla", &mut ids);
        assert_eq!(ids, [0, 0], "one word in the counted vocabulary's pass too");
    }

    /// `unicode_words` on random ASCII strings over the characters its rules treat apart.
    #[test]
    fn ascii_words_are_unicode_words() {
        use rand::{Rng, SeedableRng};
        let alphabet = b"aZq09_.:',;\" \t\r\n\x0b-!/@";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
        for _ in 0..200_000 {
            let len = rng.random_range(0..12);
            let text: String = (0..len)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect();
            let want: Vec<&str> = text.unicode_words().collect();
            let got: Vec<&str> = split_words(&text).collect();
            assert_eq!(got, want, "{text:?}");
        }
        // Long words, so that runs cross the scanner's 16-byte loads, with every ASCII
        // character now and then.
        for _ in 0..50_000 {
            let len = rng.random_range(0..80);
            let text: String = (0..len)
                .map(|_| match rng.random_range(0..20) {
                    0 => char::from(rng.random_range(0u8..128)),
                    1 => char::from(alphabet[rng.random_range(0..alphabet.len())]),
                    2 => ' ',
                    _ => char::from(b"aZq09_"[rng.random_range(0..6)]),
                })
                .collect();
            let want: Vec<&str> = text.unicode_words().collect();
            let got: Vec<&str> = split_words(&text).collect();
            assert_eq!(got, want, "{text:?}");
        }
        // Every ASCII character, two at a time, between letters and digits.
        for a in 0u8..128 {
            for b in 0u8..128 {
                for (x, y) in [('a', 'b'), ('1', '2'), ('a', '2'), ('_', 'x')] {
                    // Alone, and after a word that puts the pair at every place of a 16-byte
                    // load.
                    for lead in [0, 1, 7, 13, 14, 15, 16, 17, 30] {
                        let text = format!(
                            "{}{x}{}{}{y} tail words here",
                            "Qa_1".repeat(8).split_at(lead).0,
                            char::from(a),
                            char::from(b)
                        );
                        let want: Vec<&str> = text.unicode_words().collect();
                        assert_eq!(split_words(&text).collect::<Vec<_>>(), want, "{text:?}");
                    }
                }
            }
        }
    }

    /// Interns `texts` split over two interners, as two threads would.
    fn one_pass(texts: &[&str], min_count: u32, max_vocab: u32) -> (Vocabulary, Vec<Vec<u32>>) {
        let half = texts.len() / 2;
        let mut interners = [Interner::default(), Interner::default()];
        let mut local = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let mut ids = Vec::new();
            interners[usize::from(i >= half)].add(t, &mut ids);
            local.push(ids);
        }
        let (vocab, maps, _) = vocabulary(interners.into(), min_count, max_vocab);
        let ids = local
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut out = Vec::new();
                remap(
                    l.iter().copied(),
                    &maps[usize::from(i >= half)],
                    usize::MAX,
                    &mut out,
                );
                out
            })
            .collect();
        (vocab, ids)
    }

    #[test]
    fn counted_vocabulary_orders_by_frequency_and_drops_rare_words() {
        let (v, _) = one_pass(&["b a b c", "A b d"], 2, 10);
        let names: Vec<&str> = v.words.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(v.words[0].1, 3);
        let t = Tokenizer::counted(v, 3);
        let mut ids = Vec::new();
        assert_eq!(
            t.encode("A c b b a", &mut ids),
            1,
            "`c` is out of vocabulary"
        );
        assert_eq!(ids, [1, 0, 0], "truncated to 3 tokens");
    }

    #[test]
    fn remapped_local_ids_are_what_the_vocabulary_encodes() {
        // Ties broken by word, counts summed across interners, uppercase and a final sigma.
        let texts = [
            "The cat's 3.5 NAÏVE ΟΔΟΣ",
            "the dog the CAT's",
            "ΟΔΟΣ οδος naïve x",
            "zebra Zebra the, the",
        ];
        let (v, ids) = one_pass(&texts, 2, 4);
        let names: Vec<&str> = v.words.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(names, ["the", "οδος", "cat's", "naïve"]);
        let t = Tokenizer::counted(v, u32::MAX);
        for (text, got) in texts.iter().zip(&ids) {
            let mut want = Vec::new();
            t.encode(text, &mut want);
            assert_eq!(got, &want, "{text}");
        }
        // Truncation counts only the words before the limit as dropped.
        let (mut out, map) = (Vec::new(), [DROPPED, 0, DROPPED, 1]);
        assert_eq!(remap([0, 1, 2, 3, 0], &map, 1, &mut out), 1);
        assert_eq!(out, [0]);
    }

    #[test]
    fn hashing_is_stable_and_within_buckets() {
        let t = Tokenizer::hashed(16, 100);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        t.encode("Hello hello world", &mut a);
        t.encode("hello HELLO world", &mut b);
        assert_eq!(a, b);
        assert_eq!(a[0], a[1]);
        assert!(a.iter().all(|&i| i < 16));
    }
}
