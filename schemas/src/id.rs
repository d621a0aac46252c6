//! Deterministic event ids.
//!
//! An event's id is a hash of what caused it (the ids of its inputs, plus a tag naming the
//! stage), never a random value or a counter tied to one process, so a replay or a redelivery
//! produces the same id and every downstream write can be an idempotent upsert.

use xxhash_rust::xxh3::Xxh3;

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
    hasher: Xxh3,
}

impl EventId {
    /// Starts an id in the namespace `tag` (the stage or event kind creating it).
    pub fn new(tag: &str) -> Self {
        let mut hasher = Xxh3::new();
        hasher.update(tag.as_bytes());
        hasher.update(&[0xff]);
        Self { hasher }
    }

    /// Adds a string part (length-prefixed, so `("ab","c")` and `("a","bc")` differ).
    pub fn part(mut self, s: &str) -> Self {
        self.hasher.update(&(s.len() as u64).to_le_bytes());
        self.hasher.update(s.as_bytes());
        self
    }

    /// Adds an integer part.
    pub fn part_i64(mut self, v: i64) -> Self {
        self.hasher.update(&v.to_le_bytes());
        self
    }

    /// Finishes the id as 32 hex digits.
    pub fn finish(self) -> String {
        // Every event gets an id, so the digits are written directly rather than through the
        // formatting machinery (the same text as `format!("{h:032x}")`, several times cheaper).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let h = self.hasher.digest128();
        let digits: Vec<u8> = (0..32)
            .map(|i| HEX[((h >> (4 * (31 - i))) & 0xf) as usize])
            .collect();
        String::from_utf8(digits).expect("hex digits are ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
