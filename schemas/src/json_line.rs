//! JSON lines written directly, for the records a replay writes by the thousand: the same
//! bytes as `serde_json`, without its byte-at-a-time escaping of strings that need none.
//!
//! A simulated session rejects about a sixth of its quotes (zero bids), and each rejection is
//! a line of `rejected-*.jsonl`: through `serde_json` one cost ~3,400 instructions, most of
//! them in checking each byte of its ids and reason for characters to escape.

use crate::types::RejectedQuote;

/// Appends `s` as a JSON string: copied between quotes when no byte needs escaping (checked
/// without an early exit, so the check runs many bytes at a time), else by `serde_json`.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly these: control characters, the quote and the backslash.
    let escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escape {
        serde_json::to_writer(&mut *out, s).expect("a string serializes into a vector");
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Appends `v` as serde_json writes an integer.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

impl RejectedQuote {
    /// Appends this record's JSON object (no newline): the same bytes as
    /// `serde_json::to_writer`, fields in declaration order.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"event_id\":");
        push_str(out, &self.event_id);
        out.extend_from_slice(b",\"event_time\":");
        push_i64(out, self.event_time);
        let fields: [(&[u8], &str); 6] = [
            (b",\"underlying\":", &self.underlying),
            (b",\"input_event_id\":", &self.input_event_id),
            (b",\"stage\":", &self.stage),
            (b",\"reason_code\":", &self.reason_code),
            (b",\"reason\":", &self.reason),
            (b",\"symbol\":", &self.symbol),
        ];
        for (key, value) in fields {
            out.extend_from_slice(key);
            push_str(out, value);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rejection(text: &str, event_time: i64) -> RejectedQuote {
        RejectedQuote {
            event_id: "71cd86c8a78e7c7f1e7dd463b150c2f5".into(),
            event_time,
            underlying: text.into(),
            input_event_id: format!("in{text}").into(),
            stage: "normalize".into(),
            reason_code: "zero_bid".into(),
            reason: format!("no tradeable bid ({text})"),
            symbol: text.chars().rev().collect(),
        }
    }

    fn written(r: &RejectedQuote) -> Vec<u8> {
        let mut out = Vec::new();
        r.write_json(&mut out);
        out
    }

    #[test]
    fn escapes_what_serde_json_escapes() {
        for text in [
            "",
            "SPY   240105P00395000",
            "quote \" and \\ backslash",
            "tab\tnew\nline\r\u{1}\u{1f}",
            "del \u{7f}, é, 日本, 🙂 and /",
        ] {
            let r = rejection(text, -1_704_205_800_000_000);
            assert_eq!(
                String::from_utf8(written(&r)).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    proptest! {
        #[test]
        fn a_rejection_is_the_bytes_serde_json_writes(text in any::<String>(), at in any::<i64>()) {
            let r = rejection(&text, at);
            prop_assert_eq!(written(&r), serde_json::to_vec(&r).unwrap());
        }
    }
}
