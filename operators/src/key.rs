//! [`TextKey`]: a map key for short text (tickers, OCC symbols) whose ordering is the text's
//! own but costs two integer comparisons.
//!
//! The score and normalize stages look up a book per quote by underlying and by OCC symbol.
//! With `CompactString` keys each comparison decoded both strings' representations and called
//! `memcmp`, ~54 instructions; a replay made millions of them (6% of its instructions). A key
//! here carries its first 32 bytes as two big-endian integers, so comparing two keys of up to
//! 32 bytes is comparing `(head, tail, len)`, and longer ones fall back to the text only when
//! their first 32 bytes agree. The order, the equality and the serialized form (a string) are
//! exactly those of the text, so maps keyed by it iterate, compare and checkpoint as before.

use optionflow_schemas::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// Short text as a map key, ordered as the text (byte by byte). See the module docs.
#[derive(Clone)]
pub struct TextKey {
    /// Bytes 0..16, zero-padded, big-endian: integer order is the bytes' lexicographic order.
    head: u128,
    /// Bytes 16..32, likewise.
    tail: u128,
    /// The text's length in bytes, saturated (only "more than 32" matters beyond 32).
    len: u32,
    text: CompactString,
}

/// Bytes `from..from + 16` of `bytes` (zero past its end) as a big-endian integer.
fn word(bytes: &[u8], from: usize) -> u128 {
    let rest = bytes.get(from..).unwrap_or_default();
    match rest.first_chunk::<16>() {
        Some(whole) => u128::from_be_bytes(*whole),
        // Fewer than 16 bytes (an OCC symbol's last 5): shifted in one by one and up to the
        // top, where copying them into a zeroed buffer called `memcpy` for a variable length
        // on every key a quote's lookup built.
        None => match rest.len() {
            0 => 0,
            n => rest.iter().fold(0u128, |w, &b| w << 8 | u128::from(b)) << (8 * (16 - n)),
        },
    }
}

impl TextKey {
    /// The key of `text`.
    pub fn new(text: impl Into<CompactString>) -> Self {
        let text = text.into();
        let bytes = text.as_bytes();
        Self {
            head: word(bytes, 0),
            tail: word(bytes, 16),
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            text,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }
}

impl Ord for TextKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match self.head.cmp(&other.head) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        match self.tail.cmp(&other.tail) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        // Equal padded words and both texts within them: the texts differ at most by trailing
        // NULs, and the shorter sorts first, as `str` has it.
        if self.len <= 32 && other.len <= 32 {
            return self.len.cmp(&other.len);
        }
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        a[32.min(a.len())..].cmp(&b[32.min(b.len())..])
    }
}

impl PartialOrd for TextKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for TextKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for TextKey {}

impl Deref for TextKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for TextKey {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for TextKey {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<CompactString> for TextKey {
    fn from(s: CompactString) -> Self {
        Self::new(s)
    }
}

impl From<&CompactString> for TextKey {
    fn from(s: &CompactString) -> Self {
        Self::new(s.clone())
    }
}

impl Serialize for TextKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TextKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CompactString::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A text and another sharing any prefix of it (so long shared prefixes, trailing NULs
        /// and the 16- and 32-byte boundaries all occur), over a few letters, NUL and a
        /// two-byte character.
        #[test]
        fn texts_order_as_their_keys(
            a in "[AB\\x00é]{0,40}",
            shared in 0usize..=40,
            suffix in "[AB\\x00é]{0,10}",
        ) {
            let b: String = a.chars().take(shared).chain(suffix.chars()).collect();
            let (ka, kb) = (TextKey::from(a.as_str()), TextKey::from(b.as_str()));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(kb.cmp(&ka), b.cmp(&a));
            prop_assert_eq!(ka == kb, a == b);
        }
    }

    proptest! {
        /// A word is the bytes, zero-padded to 16, read as a big-endian integer.
        #[test]
        fn a_word_is_the_padded_bytes_big_endian(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            from in 0usize..40,
        ) {
            let mut padded = [0u8; 16];
            for (i, b) in bytes.iter().skip(from).take(16).enumerate() {
                padded[i] = *b;
            }
            prop_assert_eq!(word(&bytes, from), u128::from_be_bytes(padded));
        }
    }

    /// Texts around the 16- and 32-byte boundaries, with NULs and multi-byte characters.
    fn samples() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "A",
            "AAPL",
            "AAPL\0",
            "AAPL  240105C00190000",
            "AAPL  240105C00190000\0",
            "AAPL  240105P00190000",
            "AAPL  240105C0019000",
            "SPY",
            "SPY   240105C00475000",
            "ÿ",
            "é",
            "0123456789abcdef",
            "0123456789abcdef\0",
            "0123456789abcdeg",
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef\0",
            "0123456789abcdef0123456789abcdefA",
            "0123456789abcdef0123456789abcdefB",
            "0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdee0123456789abcdef",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(["zz".repeat(20), "zz".repeat(21), "zz".repeat(20) + "\0"]);
        v
    }

    #[test]
    fn orders_and_compares_as_the_text() {
        let texts = samples();
        for a in &texts {
            for b in &texts {
                let (ka, kb) = (TextKey::from(a.as_str()), TextKey::from(b.as_str()));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ka == kb, a == b, "{a:?} == {b:?}");
            }
        }
    }

    #[test]
    fn serializes_as_the_text_it_keys() {
        for s in samples() {
            let key = TextKey::from(s.as_str());
            let as_key = postcard::to_allocvec(&key).unwrap();
            assert_eq!(
                as_key,
                postcard::to_allocvec(&CompactString::from(&*s)).unwrap()
            );
            let back: TextKey = postcard::from_bytes(&as_key).unwrap();
            assert_eq!(back.as_str(), s.as_str());
            assert_eq!(back, key);
        }
    }
}
