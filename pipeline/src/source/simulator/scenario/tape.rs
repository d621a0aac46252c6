//! A reproducible tape: the usual `quotes.raw` Avro object container file, but with a sync
//! marker derived from the scenario (apache-avro draws a random one) and a header whose
//! metadata is written in key order (apache-avro writes it from a `HashMap`), deflate blocks,
//! and the scenario's description in the header metadata. Any Avro reader, and
//! [`crate::tape::TapeReader`], reads it like any other tape.

use super::ScenarioError;
use crate::tape::RAW_TAPE_SCHEMA;
use apache_avro::{Codec, DeflateSettings, Writer};
use optionflow_schemas::RawEvent;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Bytes of events per block before compression: large blocks compress better.
const BLOCK_SIZE: usize = 1 << 20;

/// Avro's zig-zag varint encoding of a `long`.
fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// The container header: magic, the metadata map (one block, keys in order), the marker.
fn header(metadata: &BTreeMap<String, Vec<u8>>, marker: &[u8; 16]) -> Vec<u8> {
    let mut out = b"Obj\x01".to_vec();
    if !metadata.is_empty() {
        put_long(&mut out, metadata.len() as i64);
        for (k, v) in metadata {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v);
        }
    }
    put_long(&mut out, 0);
    out.extend_from_slice(marker);
    out
}

/// Writes `events` to `path` (replacing it), `user_metadata` in the header beside the schema
/// and codec; `marker` is the file's sync marker.
pub(super) fn write(
    path: &Path,
    events: &[RawEvent],
    user_metadata: &BTreeMap<String, String>,
    marker: [u8; 16],
) -> Result<u64, ScenarioError> {
    let name = path.display().to_string();
    let avro = |e: apache_avro::Error| ScenarioError::Tape(format!("{name}: {e}"));
    let io = |e: std::io::Error| ScenarioError::Tape(format!("{name}: {e}"));
    let schema =
        serde_json::to_string(&*RAW_TAPE_SCHEMA).map_err(|e| ScenarioError::Tape(e.to_string()))?;
    let mut metadata: BTreeMap<String, Vec<u8>> = user_metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    metadata.insert("avro.schema".into(), schema.into_bytes());
    metadata.insert("avro.codec".into(), b"deflate".to_vec());
    let mut buf = header(&metadata, &marker);
    {
        let mut w = Writer::builder()
            .schema(&RAW_TAPE_SCHEMA)
            .writer(&mut buf)
            .codec(Codec::Deflate(DeflateSettings::default()))
            .block_size(BLOCK_SIZE)
            .marker(marker)
            .has_header(true)
            .build()
            .map_err(avro)?;
        for ev in events {
            w.append_ser(ev).map_err(avro)?;
        }
        w.flush().map_err(avro)?;
    }
    let partial = path.with_extension("avro.partial");
    let mut f = std::fs::File::create(&partial).map_err(io)?;
    f.write_all(&buf).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)?;
    Ok(buf.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::TapeReader;
    use optionflow_schemas::UnderlyingTick;

    #[test]
    fn the_tape_reads_back_and_is_the_same_bytes_every_time() {
        let events: Vec<RawEvent> = (0..500)
            .map(|i| {
                RawEvent::Tick(UnderlyingTick {
                    event_id: format!("t{i}").into(),
                    event_time: i,
                    underlying: "SPY".into(),
                    source: "scenario".into(),
                    price: 300.0 + i as f64 / 100.0,
                    volume: i,
                    sector: None,
                })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let meta = BTreeMap::from([("optionflow.scenario".to_string(), "test".to_string())]);
        let (a, b) = (dir.path().join("a.avro"), dir.path().join("b.avro"));
        write(&a, &events, &meta, [7; 16]).unwrap();
        write(&b, &events, &meta, [7; 16]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let back: Vec<RawEvent> = TapeReader::open(&a).unwrap().map(Result::unwrap).collect();
        assert_eq!(back, events);
        let reader = apache_avro::Reader::new(std::fs::File::open(&a).unwrap()).unwrap();
        assert_eq!(
            reader.user_metadata().get("optionflow.scenario"),
            Some(&b"test".to_vec())
        );
    }
}
