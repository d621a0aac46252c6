//! Deterministic event ids.
//!
//! An event's id is a hash of what caused it (the ids of its inputs, plus a tag naming the
//! stage), never a random value or a counter tied to one process, so a replay or a redelivery
//! produces the same id and every downstream write can be an idempotent upsert.

use crate::IdString;
use xxhash_rust::xxh3::xxh3_128;

/// Builder for a deterministic 128-bit event id, rendered as 32 lowercase hex digits.
///
/// ```
/// use optionflow_schemas::EventId;
/// let a = EventId::new("signal").part("GME").part_i64(1_611_325_800_000_000).finish();
/// let b = EventId::new("signal").part("GME").part_i64(1_611_325_800_000_000).finish();
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 32);
/// ```
pub struct EventId {
    /// The parts so far, hashed in one pass by [`EventId::finish`]. XXH3 of the concatenation
    /// is the digest a streaming hasher fed the same bytes gives, so this is the same id; the
    /// streaming state (~600 bytes) would be copied on every move of the builder.
    bytes: Vec<u8>,
}

impl EventId {
    /// Starts an id in the namespace `tag` (the stage or event kind creating it).
    pub fn new(tag: &str) -> Self {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(0xff);
        Self { bytes }
    }

    /// Adds a string part (length-prefixed, so `("ab","c")` and `("a","bc")` differ).
    pub fn part(mut self, s: &str) -> Self {
        self.bytes
            .extend_from_slice(&(s.len() as u64).to_le_bytes());
        match <&[u8; 32]>::try_from(s.as_bytes()) {
            // Most parts are other events' ids, 32 hex digits: a copy of a known length is a
            // few moves, where one of any length is a call to `memcpy`.
            Ok(id) => self.bytes.extend_from_slice(id),
            Err(_) => self.bytes.extend_from_slice(s.as_bytes()),
        }
        self
    }

    /// Adds an integer part.
    pub fn part_i64(mut self, v: i64) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The id `EventId::new(tag).part(input).finish()` gives, formed on the stack: a stage's
    /// output id from its input's id, which every quote needs twice (normalize, greeks), and
    /// for which the builder's vector was an allocation and a free each time.
    pub fn derived(tag: &str, input: &str) -> IdString {
        /// Room for a stage's tag and another event's id, with the separator and the length.
        const ROOM: usize = 96;
        let len = tag.len() + 1 + 8 + input.len();
        if len > ROOM {
            return Self::new(tag).part(input).finish();
        }
        let mut bytes = [0u8; ROOM];
        let (tag_end, input_start) = (tag.len(), tag.len() + 9);
        bytes[..tag_end].copy_from_slice(tag.as_bytes());
        bytes[tag_end] = 0xff;
        bytes[tag_end + 1..input_start].copy_from_slice(&(input.len() as u64).to_le_bytes());
        match <&[u8; 32]>::try_from(input.as_bytes()) {
            // An id, as in `part`: a copy of known length rather than a call to `memcpy`.
            Ok(id) => bytes[input_start..len].copy_from_slice(id),
            Err(_) => bytes[input_start..len].copy_from_slice(input.as_bytes()),
        }
        hex_id(xxh3_128(&bytes[..len]))
    }

    /// Finishes the id as 32 hex digits (held inline: no allocation).
    pub fn finish(self) -> IdString {
        hex_id(xxh3_128(&self.bytes))
    }
}

/// A 128-bit digest as an id: 32 lowercase hex digits, held inline.
fn hex_id(h: u128) -> IdString {
    let mut digits = [0u8; 32];
    digits[..16].copy_from_slice(&hex_digits((h >> 64) as u64));
    digits[16..].copy_from_slice(&hex_digits(h as u64));
    // As an array: a move of known length, where `from_str` copied a slice (`memcpy`).
    IdString::from_buf(digits).expect("hex digits are ASCII")
}

/// The 16 lowercase hex digits of `x`, most significant first: the text of
/// `format!("{x:016x}")`. Every event gets an id, so the digits are formed sixteen at a time in
/// one 128-bit word (a nibble per byte, then each byte raised to its ASCII digit) rather than
/// by 32 table lookups, each a byte load and a byte store.
fn hex_digits(x: u64) -> [u8; 16] {
    const fn bytes(b: u8) -> u128 {
        u128::from_ne_bytes([b; 16])
    }
    // Spread the nibbles apart, halving the distance each step: nibble k ends in byte k.
    let mut n = u128::from(x);
    n = (n | (n << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    n = (n | (n << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    n = (n | (n << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    n = (n | (n << 4)) & bytes(0x0f);
    // A byte holds 0–15: adding 6 carries into its bit 4 exactly when it is a letter, which
    // then moves up by the 39 between b'9' + 1 and b'a'. No byte passes 102, so none carries.
    let letters = ((n + bytes(6)) >> 4) & bytes(1);
    (n + bytes(b'0') + letters * 39).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::Xxh3;

    proptest::proptest! {
        /// The digits are `format!`'s, for any word.
        #[test]
        fn hex_digits_are_the_lowercase_hex_text(x: u64) {
            let expected = format!("{x:016x}");
            proptest::prop_assert_eq!(&hex_digits(x)[..], expected.as_bytes());
        }
    }

    proptest::proptest! {
        /// A derived id is the builder's for the same tag and input, ids of 32 digits and
        /// inputs too long for the stack buffer included.
        #[test]
        fn derived_ids_are_the_builders(tag in "[a-z]{0,12}", input in ".{0,100}", hex in "[0-9a-f]{32}") {
            for input in [input.as_str(), hex.as_str()] {
                proptest::prop_assert_eq!(
                    EventId::derived(&tag, input),
                    EventId::new(&tag).part(input).finish()
                );
            }
        }
    }

    #[test]
    fn hex_digits_of_the_edges() {
        for x in [0, 9, 10, 15, 16, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(&hex_digits(x)[..], format!("{x:016x}").as_bytes(), "{x:#x}");
        }
    }

    #[test]
    fn renders_the_hash_as_32_lowercase_hex_digits() {
        for tag in ["normalize", "greeks", "", "sim"] {
            let mut hasher = Xxh3::new();
            hasher.update(tag.as_bytes());
            hasher.update(&[0xff]);
            hasher.update(&5u64.to_le_bytes());
            hasher.update(b"GME 7");
            let expected = format!("{:032x}", hasher.digest128());
            assert_eq!(EventId::new(tag).part("GME 7").finish(), expected);
        }
    }

    /// Ids made of many parts, longer than the streaming hasher's internal buffer, are the
    /// streaming digest of the same bytes (the ids recorded before the builder hashed in one
    /// pass).
    #[test]
    fn long_ids_are_the_streaming_digest() {
        for n in [0usize, 3, 40, 200] {
            let mut hasher = Xxh3::new();
            hasher.update(b"tag");
            hasher.update(&[0xff]);
            let mut id = EventId::new("tag");
            for i in 0..n {
                let part = "x".repeat(i % 37);
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
                hasher.update(&(i as i64).to_le_bytes());
                id = id.part(&part).part_i64(i as i64);
            }
            assert_eq!(
                id.finish(),
                format!("{:032x}", hasher.digest128()),
                "{n} parts"
            );
        }
    }
}
