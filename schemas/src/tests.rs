//! Round trips of every event through its schema, single-object framing, and compatibility of
//! each schema with its last released version.

use crate::codec::*;
use crate::registry::SCHEMAS;
use crate::types::*;
use crate::{Event, IdString};
use apache_avro::{schema_compatibility::SchemaCompatibility, Schema};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn vote() -> FactorVote {
    FactorVote {
        factor: "iv_zscore".into(),
        score: 91.5,
        zscore: 3.2,
        raw_value: 0.84,
        direction: "bullish".into(),
        voted: true,
        detail: "front calls bid".into(),
        p_value: 0.0014,
        metadata: BTreeMap::from([("gamma_flip".to_string(), 61.0)]),
    }
}

fn contract() -> ChainContract {
    ChainContract {
        symbol: "GME   210129C00070000".into(),
        root: "GME".into(),
        expiry: "2021-01-29".into(),
        right: "call".into(),
        strike: 70.0,
        years_to_expiry: 0.02,
        bid: 4.1,
        ask: 4.3,
        mid: 4.2,
        iv: 2.5,
        delta: 0.42,
        gamma: 0.01,
        vega: 3.0,
        theta: -150.0,
        volume: 1500,
        open_interest: 9000,
        exercise_style: "american".into(),
        rate: 0.01,
        dividend_yield: 0.0,
    }
}

fn round_trip<E: Event + PartialEq + std::fmt::Debug>(ev: E) {
    let mut buf = Vec::new();
    encode_datum(&ev, &mut buf).expect("encode");
    assert_eq!(decode_datum::<E>(&buf).expect("decode"), ev);
    // The schema-aware serializer must write exactly what the generic Value path writes.
    let value = apache_avro::to_value(&ev)
        .unwrap()
        .resolve(&entry::<E>().schema)
        .unwrap();
    #[allow(deprecated)]
    let generic = apache_avro::to_avro_datum(&entry::<E>().schema, value).unwrap();
    // The Value path collects Avro maps into a HashMap, so its map entries come out in random
    // order; ours are in key order (BTreeMap), which is what makes replays byte-identical. Same
    // length and the same decoded event is the comparison that holds for both.
    assert_eq!(
        buf.len(),
        generic.len(),
        "{} encodes to a different length than the Value path",
        E::NAME
    );
    assert_eq!(
        decode_datum::<E>(&generic).expect("decode generic"),
        ev,
        "{} differs from the Value path",
        E::NAME
    );
    let mut single = Vec::new();
    encode_single(&ev, &mut single).unwrap();
    assert_eq!(&single[..2], &SINGLE_OBJECT_MAGIC);
    assert_eq!(decode_single::<E>(&single).unwrap(), ev);
}

fn head() -> (IdString, i64, String) {
    (
        "0123456789abcdef0123456789abcdef".into(),
        1_611_325_800_000_000,
        "GME".into(),
    )
}

#[test]
fn every_event_round_trips_through_its_schema() {
    let (id, t, u) = head();
    round_trip(RawQuote {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone().into(),
        source: "simulator".into(),
        symbol: "GME   210122C00060000".into(),
        bid: 4.1,
        ask: 4.3,
        bid_size: 10,
        ask_size: 12,
        last: Some(4.2),
        volume: 1500,
        open_interest: 9000,
        underlying_price: None,
    });
    round_trip(UnderlyingTick {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone().into(),
        source: "simulator".into(),
        price: 65.01,
        volume: 1,
        sector: Some("Consumer Discretionary".into()),
    });
    round_trip(NormalizedQuote {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone().into(),
        source_event_id: id.clone(),
        symbol: "GME   210122C00060000".into(),
        root: "GME".into(),
        expiry: "2021-01-22".into(),
        expiry_time: t + 1,
        right: "call".into(),
        strike: 60.0,
        bid: 4.1,
        ask: 4.3,
        mid: 4.2,
        spread: 0.2,
        spread_pct: 0.047,
        bid_size: 1,
        ask_size: 2,
        volume: 3,
        open_interest: 4,
        underlying_price: 65.0,
        years_to_expiry: 0.01,
        sector: None,
    });
    round_trip(RejectedQuote {
        event_id: id.clone(),
        event_time: t,
        underlying: u.as_str().into(),
        input_event_id: id.clone(),
        stage: "normalize".into(),
        reason_code: "crossed_market".into(),
        reason: "bid 4.5 above ask 4.3".into(),
        symbol: "X".into(),
    });
    round_trip(ContractGreeks {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone().into(),
        source_event_id: id.clone(),
        symbol: "GME   210122C00060000".into(),
        root: "GME".into(),
        expiry: "2021-01-22".into(),
        right: "call".into(),
        strike: 60.0,
        spot: 65.0,
        years_to_expiry: 0.01,
        rate: 0.01,
        dividend_yield: 0.0,
        bid: 1.0,
        ask: 1.2,
        mid: 1.1,
        iv: 2.5,
        delta: 0.6,
        gamma: 0.01,
        vega: 3.0,
        theta: -150.0,
        rho: 0.4,
        volume: 5,
        open_interest: 6,
        sector: Some("Tech".into()),
        exercise_style: "european".into(),
        vanna: 0.1,
        charm: -0.2,
        vomma: 3.0,
    });
    round_trip(FactorScore {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone(),
        factor: "gamma_exposure".into(),
        window_start: t - 60_000_000,
        window_end: t,
        raw_value: -1.5e9,
        zscore: -3.0,
        score: 95.0,
        direction: "bullish".into(),
        samples: 300,
        detail: "dealers short gamma".into(),
        spot: 65.0,
        sector: None,
        metadata: BTreeMap::from([("call_wall".to_string(), 70.0), ("flip".into(), 61.0)]),
        contracts: vec![contract(), contract()],
    });
    round_trip(Signal {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone(),
        window_end: t,
        sector: "Retail".into(),
        direction: "bullish".into(),
        composite: 92.0,
        agreeing: 3,
        spot: 65.0,
        factors: vec![vote(), vote()],
        probability: 0.71,
        calibrated: true,
        marks: BTreeMap::from([("AMC".to_string(), 17.25), ("GME".into(), 65.0)]),
        contracts: vec![contract()],
    });
    round_trip(Explanation {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone(),
        signal_id: id.clone(),
        sector: "Retail".into(),
        direction: "bullish".into(),
        composite: 92.0,
        spot: 65.0,
        headline: "h".into(),
        markdown: "**m**".into(),
        text: "t".into(),
        factors: vec![vote()],
        marks: BTreeMap::from([("GME".to_string(), 65.0)]),
        html: "<p>&lt;b&gt;</p>".into(),
        telegram: "<b>GME</b>".into(),
    });
    round_trip(RiskDecision {
        event_id: id.clone(),
        event_time: t,
        underlying: u.clone(),
        signal_id: id.clone(),
        explanation_id: id.clone(),
        sector: "Retail".into(),
        direction: "bullish".into(),
        composite: 92.0,
        approved: true,
        rule: "approved".into(),
        reason: "within limits".into(),
        open_signals: 1,
        headline: "h".into(),
        text: "t".into(),
        markdown: "m".into(),
        drawdown: 0.012,
        equity: 9.88,
        html: "<p>h</p>".into(),
        telegram: "<b>h</b>".into(),
    });
    round_trip(Alert {
        event_id: id.clone(),
        event_time: t,
        underlying: u,
        signal_id: id.clone(),
        decision_id: id.clone(),
        sector: "Retail".into(),
        direction: "bullish".into(),
        composite: 92.0,
        channel: "file".into(),
        dedupe_key: id.clone(),
        headline: "h".into(),
        text: "t".into(),
        markdown: "m".into(),
        route: "default".into(),
        group_key: "GME".into(),
        signal_ids: vec![id],
        html: "<p>h</p>".into(),
        telegram: "<b>h</b>".into(),
    });
}

#[test]
fn registry_lists_ten_schemas_with_distinct_fingerprints() {
    assert_eq!(SCHEMAS.len(), 10);
    let mut fps: Vec<u64> = SCHEMAS.iter().map(|e| e.fingerprint_u64()).collect();
    fps.sort_unstable();
    fps.dedup();
    assert_eq!(fps.len(), 10);
    for e in SCHEMAS.iter() {
        assert_eq!(
            e.schema.name().map(|n| n.name()),
            Some(e.name),
            "{}",
            e.file
        );
    }
}

#[test]
fn single_object_rejects_garbage_with_a_reason() {
    assert!(matches!(
        decode_single::<Alert>(&[1, 2, 3]),
        Err(CodecError::Truncated(3))
    ));
    assert!(matches!(
        decode_single::<Alert>(&[0u8; 12]),
        Err(CodecError::BadMagic)
    ));
    let mut unknown = vec![0xC3, 0x01];
    unknown.extend_from_slice(&[9u8; 8]);
    assert!(matches!(
        decode_single::<Alert>(&unknown),
        Err(CodecError::UnknownFingerprint(_))
    ));
    let (id, t, u) = head();
    let tick = UnderlyingTick {
        event_id: id,
        event_time: t,
        underlying: u.into(),
        source: "s".into(),
        price: 1.0,
        volume: 1,
        sector: None,
    };
    let mut buf = Vec::new();
    encode_single(&tick, &mut buf).unwrap();
    assert!(matches!(
        decode_single::<Alert>(&buf),
        Err(CodecError::WrongType { .. })
    ));
    // A truncated datum is a decode error, never a panic.
    buf.truncate(buf.len() - 3);
    assert!(decode_single::<UnderlyingTick>(&buf).is_err());
}

/// Every schema must stay readable by, and able to read, its last released version: a new
/// field needs a default. `schemas/avro/released/v1/` holds the released files.
#[test]
fn every_schema_is_compatible_with_its_released_version() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/avro/released/v1");
    for e in SCHEMAS.iter() {
        let text = std::fs::read_to_string(format!("{dir}/{}", e.file))
            .unwrap_or_else(|err| panic!("{} has no released version ({dir}: {err})", e.file));
        let released = Schema::parse_str(&text).unwrap();
        SchemaCompatibility::can_read(&released, &e.schema)
            .unwrap_or_else(|err| panic!("{} cannot read data written with v1: {err}", e.name));
        SchemaCompatibility::can_read(&e.schema, &released)
            .unwrap_or_else(|err| panic!("v1 readers cannot read new {}: {err}", e.name));
    }
}

proptest! {
    #[test]
    fn prop_raw_quotes_round_trip(bid in -1e6f64..1e6, ask in -1e6f64..1e6, vol in 0i64..i64::MAX,
                                  sym in "[A-Z ]{1,21}", last in proptest::option::of(-1e3f64..1e3)) {
        let ev = RawQuote {
            event_id: "x".into(), event_time: vol, underlying: "U".into(), source: "s".into(),
            symbol: sym.into(), bid, ask, bid_size: 1, ask_size: 2, last, volume: vol, open_interest: 0,
            underlying_price: last,
        };
        let mut buf = Vec::new();
        encode_datum(&ev, &mut buf).unwrap();
        prop_assert_eq!(decode_datum::<RawQuote>(&buf).unwrap(), ev);
    }
}

/// JSON-lines files written before `contracts`, `metadata`, `html` and `telegram` existed
/// (signals.jsonl read by `calibrate`) still parse, with the fields empty.
#[test]
fn json_written_before_the_new_fields_still_parses() {
    let old = r#"{"event_id":"a","event_time":1,"underlying":"GME","window_end":1,"sector":"Retail",
        "direction":"bullish","composite":90.0,"agreeing":2,"spot":20.0,"probability":0.9,
        "calibrated":false,"factors":[{"factor":"iv_zscore","score":99.0,"zscore":3.0,
        "raw_value":0.1,"direction":"bullish","voted":true,"detail":"d","p_value":0.01}]}"#;
    let s: Signal = serde_json::from_str(old).unwrap();
    assert!(s.contracts.is_empty() && s.factors[0].metadata.is_empty());
}

fn apache_datum<T: serde::Serialize>(schema: &Schema, ev: &T) -> Vec<u8> {
    let names = apache_avro::schema::ResolvedSchema::try_from(schema).unwrap();
    let mut buf = Vec::new();
    apache_avro::write_avro_datum_ref(schema, names.get_names(), ev, &mut buf).unwrap();
    buf
}

fn arb_raw_quote() -> impl Strategy<Value = RawQuote> {
    (
        (
            "[0-9a-f]{0,40}",
            any::<i64>(),
            "[A-Z]{0,6}",
            "\\PC{0,12}",
            "\\PC{0,30}",
        ),
        (any::<f64>(), any::<f64>(), any::<i64>(), any::<i64>()),
        (
            proptest::option::of(any::<f64>()),
            any::<i64>(),
            any::<i64>(),
        ),
        proptest::option::of(any::<f64>()),
    )
        .prop_map(
            |(
                (event_id, event_time, underlying, source, symbol),
                (bid, ask, bid_size, ask_size),
                (last, volume, open_interest),
                underlying_price,
            )| RawQuote {
                event_id: event_id.into(),
                event_time,
                underlying: underlying.into(),
                source: source.into(),
                symbol: symbol.into(),
                bid,
                ask,
                bid_size,
                ask_size,
                last,
                volume,
                open_interest,
                underlying_price,
            },
        )
}

fn arb_tick() -> impl Strategy<Value = UnderlyingTick> {
    (
        "[0-9a-f]{0,40}",
        any::<i64>(),
        "[A-Z]{0,6}",
        "\\PC{0,12}",
        any::<f64>(),
        any::<i64>(),
        proptest::option::of("\\PC{0,20}"),
    )
        .prop_map(
            |(event_id, event_time, underlying, source, price, volume, sector)| UnderlyingTick {
                event_id: event_id.into(),
                event_time,
                underlying: underlying.into(),
                source: source.into(),
                price,
                volume,
                sector: sector.map(Into::into),
            },
        )
}

proptest! {
    /// The direct encoders write exactly apache-avro's bytes, for every value (NaN, extreme
    /// longs, multi-byte UTF-8 and empty strings included), alone and under the tape's union.
    #[test]
    fn prop_direct_raw_encoders_match_apache_avro(q in arb_raw_quote(), t in arb_tick()) {
        let mut ours = Vec::new();
        crate::datum::write_raw_quote(&q, &mut ours);
        prop_assert_eq!(&ours, &apache_datum(&entry::<RawQuote>().schema, &q));
        ours.clear();
        crate::datum::write_underlying_tick(&t, &mut ours);
        prop_assert_eq!(&ours, &apache_datum(&entry::<UnderlyingTick>().schema, &t));
        let union = &*crate::RAW_EVENT_SCHEMA;
        for ev in [crate::RawEvent::Quote(q), crate::RawEvent::Tick(t)] {
            ours.clear();
            crate::datum::write_raw_event(&ev, &mut ours);
            prop_assert_eq!(&ours, &apache_datum(union, &ev));
        }
    }
}

proptest! {
    /// The direct decoders read apache-avro's bytes back to the same values (compared by
    /// re-encoding, which the test above ties to apache-avro, since NaN != NaN), consume exactly
    /// the datum, and report every truncation of it as an error instead of panicking.
    #[test]
    fn prop_direct_raw_decoders_read_apache_avro(q in arb_raw_quote(), t in arb_tick()) {
        let union = &*crate::RAW_EVENT_SCHEMA;
        for ev in [crate::RawEvent::Quote(q), crate::RawEvent::Tick(t)] {
            let theirs = apache_datum(union, &ev);
            let mut rest = &theirs[..];
            let back = crate::datum::read_raw_event(&mut rest).unwrap();
            prop_assert!(rest.is_empty());
            let mut again = Vec::new();
            crate::datum::write_raw_event(&back, &mut again);
            prop_assert_eq!(&again, &theirs);
            for cut in 0..theirs.len() {
                prop_assert!(crate::datum::read_raw_event(&mut &theirs[..cut]).is_err(), "{}", cut);
            }
        }
    }

    /// One decoder reading a stream of events (runs of a repeated underlying and source,
    /// with undecodable datums among them) returns for each exactly what a fresh decoder
    /// returns: what it remembers of the events before never shows in an event after.
    #[test]
    fn prop_a_decoder_remembers_nothing_that_shows(
        events in proptest::collection::vec(
            (arb_raw_quote(), arb_tick(), 0usize..4, proptest::collection::vec(any::<u8>(), 0..40)),
            1..12,
        ),
    ) {
        let union = &*crate::RAW_EVENT_SCHEMA;
        let mut decoder = crate::datum::RawEventDecoder::default();
        // The underlying and source of the last event decoded, quote or tick.
        let mut previous: Option<(crate::CompactString, crate::CompactString)> = None;
        for (mut q, t, kind, garbage) in events {
            if let (Some((underlying, source)), true) = (&previous, kind == 1) {
                // The same underlying and source as the event before: the remembered path.
                q.underlying = underlying.clone();
                q.source = source.clone();
            }
            let datum = match kind {
                3 => garbage,
                2 => apache_datum(union, &crate::RawEvent::Tick(t.clone())),
                _ => apache_datum(union, &crate::RawEvent::Quote(q.clone())),
            };
            let (mut ours, mut fresh) = (&datum[..], &datum[..]);
            let got = decoder.read(&mut ours);
            let want = crate::datum::read_raw_event(&mut fresh);
            prop_assert_eq!(got.is_ok(), want.is_ok());
            prop_assert_eq!(ours.len(), fresh.len());
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    crate::datum::write_raw_event(&got, &mut a);
                    crate::datum::write_raw_event(&want, &mut b);
                    prop_assert_eq!(a, b);
                }
                (Err(got), Err(want)) => prop_assert_eq!(got, want),
                _ => unreachable!("checked above"),
            }
            previous = match kind {
                3 => previous,
                2 => Some((t.underlying, t.source)),
                _ => Some((q.underlying, q.source)),
            };
        }
    }

    /// Any long reads back as itself from its encoding, whatever follows it, and takes
    /// exactly its own bytes (one-byte longs take the short path, the rest the loop).
    #[test]
    fn prop_longs_read_back_and_take_their_own_bytes(
        n in any::<i64>(),
        small in -64i64..64,
        after in proptest::collection::vec(any::<u8>(), 0..12),
    ) {
        for n in [n, small] {
            let mut bytes = Vec::new();
            crate::datum::put_long(&mut bytes, n);
            let own = bytes.len();
            bytes.extend_from_slice(&after);
            let mut rest = &bytes[..];
            prop_assert_eq!(crate::datum::get_long(&mut rest), Ok(n));
            prop_assert_eq!(rest, &bytes[own..]);
        }
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn prop_direct_raw_decoder_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = crate::datum::read_raw_event(&mut &bytes[..]);
    }
}

#[test]
fn direct_long_encoding_matches_avro_at_the_edges() {
    for n in [0, -1, 1, 63, 64, -64, -65, i64::MAX, i64::MIN, 1 << 35] {
        let mut ours = Vec::new();
        crate::datum::put_long(&mut ours, n);
        assert_eq!(ours, apache_datum(&Schema::Long, &n), "{n}");
        let mut rest = &ours[..];
        assert_eq!(crate::datum::get_long(&mut rest), Ok(n));
        assert!(rest.is_empty());
    }
}

#[test]
fn direct_decoder_names_what_is_wrong() {
    use crate::datum::{get_long, read_raw_event, DatumError};
    // Eleven groups, or a tenth group above the one bit it has room for.
    assert_eq!(
        get_long(&mut &[0xff; 11][..]),
        Err(DatumError::LongOverflow)
    );
    let mut ten = [0xffu8; 10];
    ten[9] = 0x02;
    assert_eq!(get_long(&mut &ten[..]), Err(DatumError::LongOverflow));
    assert_eq!(
        get_long(&mut &[0x80, 0x80][..]),
        Err(DatumError::Truncated("a long"))
    );
    // Union branch 2 (zig-zag 4) does not exist.
    assert!(matches!(
        read_raw_event(&mut &[4u8][..]),
        Err(DatumError::UnionIndex { index: 2, .. })
    ));
    // A quote whose event id claims length −1 (zig-zag 1).
    assert_eq!(
        read_raw_event(&mut &[0u8, 1][..]),
        Err(DatumError::NegativeLength(-1))
    );
    // An event id of one byte that is not UTF-8.
    assert_eq!(
        read_raw_event(&mut &[0u8, 2, 0xff][..]),
        Err(DatumError::NotUtf8("RawQuote.event_id"))
    );
    // Of 32 bytes (the length ids are read as an array at), not UTF-8, and cut short.
    let mut id32 = vec![0u8, 64];
    id32.extend([0xffu8; 32]);
    assert_eq!(
        read_raw_event(&mut &id32[..]),
        Err(DatumError::NotUtf8("RawQuote.event_id"))
    );
    assert_eq!(
        read_raw_event(&mut &id32[..20]),
        Err(DatumError::Truncated("RawQuote.event_id"))
    );
}

#[test]
fn a_tick_with_a_32_digit_id_reads_back() {
    let tick = crate::UnderlyingTick {
        event_id: crate::EventId::new("tick").part("GME").finish(),
        event_time: 7,
        underlying: "GME".into(),
        source: "sim".into(),
        price: 20.5,
        volume: 3,
        sector: None,
    };
    let mut bytes = Vec::new();
    crate::datum::write_underlying_tick(&tick, &mut bytes);
    let mut rest = &bytes[..];
    assert_eq!(crate::datum::read_underlying_tick(&mut rest), Ok(tick));
    assert!(rest.is_empty());
}
