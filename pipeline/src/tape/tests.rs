use super::*;
use optionflow_schemas::{RawEvent, RawQuote, UnderlyingTick};
use std::path::{Path, PathBuf};

const CODECS: [TapeCodec; 4] = [
    TapeCodec::Null,
    TapeCodec::Deflate,
    TapeCodec::Snappy,
    TapeCodec::Zstandard,
];

fn tick(i: i64) -> RawEvent {
    RawEvent::Tick(UnderlyingTick {
        event_id: format!("id{i}").into(),
        event_time: i,
        underlying: "SPY".into(),
        source: "test".into(),
        price: 100.0 + i as f64,
        volume: i,
        sector: None,
    })
}

fn quote(i: i64) -> RawEvent {
    RawEvent::Quote(RawQuote {
        event_id: format!("q{i}").into(),
        event_time: i,
        underlying: "SPY".into(),
        source: "test".into(),
        symbol: "SPY   240119C00400000".into(),
        bid: 1.0,
        ask: 1.1 + (i % 7) as f64 * 0.01,
        bid_size: 1,
        ask_size: 1,
        last: (i % 3 == 0).then_some(1.05),
        volume: i,
        open_interest: 10,
        underlying_price: Some(400.0),
    })
}

/// Enough events for several 64 KiB blocks.
fn many() -> Vec<RawEvent> {
    (0..3000).flat_map(|i| [tick(i), quote(i)]).collect()
}

fn write(path: &Path, codec: TapeCodec, events: &[RawEvent]) -> u64 {
    let mut w = TapeWriter::open(path, 0, 0, codec).unwrap();
    for ev in events {
        w.append(ev).unwrap();
    }
    w.commit().unwrap().0
}

fn read(path: &Path) -> Vec<RawEvent> {
    TapeReader::open(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn temp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn truncate_to_a_commit_and_append_reads_back_whole() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let path = temp(&dir, "t.avro");
        let mut w = TapeWriter::open(&path, 0, 0, codec).unwrap();
        for i in 0..10 {
            w.append(&tick(i)).unwrap();
            w.append(&quote(i)).unwrap();
        }
        let (bytes, events) = w.commit().unwrap();
        assert_eq!(events, 20);
        // Written after the commit, then lost in a crash.
        for i in 100..105 {
            w.append(&tick(i)).unwrap();
        }
        w.commit().unwrap();
        drop(w);
        // The kept tape goes on in its own codec, whatever the new writer is asked for.
        let mut w = TapeWriter::open(&path, bytes, events, TapeCodec::Null).unwrap();
        assert_eq!(w.codec(), codec);
        for i in 10..12 {
            w.append(&quote(i)).unwrap();
        }
        assert_eq!(w.commit().unwrap().1, 22);
        drop(w);
        let mut want: Vec<RawEvent> = (0..10).flat_map(|i| [tick(i), quote(i)]).collect();
        want.extend((10..12).map(quote));
        assert_eq!(read(&path), want, "{codec:?}");
        assert_eq!(TapeReader::open(&path).unwrap().codec(), codec);
    }
}

/// Any Avro tool reads our tapes: apache-avro's own reader gets the same events back from a
/// tape of every codec, and our reader reads what apache-avro's writer wrote.
#[test]
fn tapes_are_avro_container_files_both_ways() {
    let events = many();
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let ours = temp(&dir, "ours.avro");
        write(&ours, codec, &events);
        let reader = apache_avro::Reader::new(std::fs::File::open(&ours).unwrap()).unwrap();
        let theirs: Vec<RawEvent> = reader
            .map(|v| apache_avro::from_value(&v.unwrap()).unwrap())
            .collect();
        assert_eq!(theirs, events, "apache-avro reading our {codec:?} tape");

        let by_apache = temp(&dir, "theirs.avro");
        let mut w = apache_avro::Writer::builder()
            .schema(&RAW_TAPE_SCHEMA)
            .writer(std::fs::File::create(&by_apache).unwrap())
            .codec(codec.avro())
            .build()
            .unwrap();
        for ev in &events {
            w.append_ser(ev).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            read(&by_apache),
            events,
            "our reader on apache-avro's {codec:?}"
        );
    }
}

#[test]
fn compressed_tapes_are_smaller() {
    let events = many();
    let dir = tempfile::tempdir().unwrap();
    let size = |codec: TapeCodec| write(&temp(&dir, codec.avro_name()), codec, &events);
    let null = size(TapeCodec::Null);
    for codec in [TapeCodec::Deflate, TapeCodec::Snappy, TapeCodec::Zstandard] {
        let compressed = size(codec);
        assert!(compressed * 3 < null, "{codec:?}: {compressed} of {null}");
    }
}

#[test]
fn a_damaged_tape_is_an_error_that_says_where() {
    let events = many();
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let path = temp(&dir, "t.avro");
        let len = write(&path, codec, &events) as usize;
        let good = std::fs::read(&path).unwrap();

        // Cut inside the last block: everything before it reads, then an error, then the end.
        std::fs::write(&path, &good[..len - 20]).unwrap();
        let results: Vec<_> = TapeReader::open(&path).unwrap().collect();
        let (last, before) = results.split_last().unwrap();
        assert!(before.iter().all(Result::is_ok));
        assert!(before.len() < events.len());
        let err = last.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("corrupt at byte") && err.contains("ends inside"),
            "{err}"
        );

        // A wrong sync marker after a block.
        let mut bad = good.clone();
        bad[len - 1] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let err = TapeReader::open(&path)
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(err.contains("sync marker"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir, "x.avro");
    std::fs::write(&path, b"not a tape at all").unwrap();
    let err = TapeReader::open(&path).err().unwrap().to_string();
    assert!(err.contains("not an Avro object container file"), "{err}");
    // An Avro file of another schema.
    let mut w = apache_avro::Writer::new(
        &apache_avro::Schema::Long,
        std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    w.append_value(apache_avro::types::Value::Long(1)).unwrap();
    w.flush().unwrap();
    drop(w);
    assert!(matches!(
        TapeReader::open(&path),
        Err(TapeError::Foreign { .. })
    ));
}

/// Random bytes in the blocks' place never panic the reader: each tape ends in an error or
/// reads through.
#[test]
fn garbage_blocks_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir, "t.avro");
    for codec in CODECS {
        write(&path, codec, &[]);
        let header = std::fs::read(&path).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut bytes = header.clone();
            for _ in 0..(round % 64) * 4 {
                // xorshift: deterministic noise.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state as u8);
            }
            std::fs::write(&path, &bytes).unwrap();
            for r in TapeReader::open(&path).unwrap() {
                if r.is_err() {
                    break;
                }
            }
        }
    }
}
