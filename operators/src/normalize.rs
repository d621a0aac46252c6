//! The `normalize` stage: raw vendor quotes become validated [`NormalizedQuote`]s with a parsed
//! OCC contract, mid, spread and time to expiry; anything unusable becomes a [`RejectedQuote`]
//! with a reason. Underlying ticks pass through and supply the underlying price.

use crate::config::{ConfigErrors, Problems};
use crate::key::TextKey;
use crate::operator::{decode_state, encode_state, rejection, Ctx, Emit, OpError, Operator};
use crate::pricing::{is_am_settled, Right};
use chrono::{Datelike, NaiveDate, TimeZone};
use optionflow_schemas::{
    format_compact,
    time::{years_between, MICROS_PER_SECOND},
    CompactString, EventId, IdString, NormalizedEvent, NormalizedQuote, RawEvent, RawQuote,
    RejectedQuote, UnderlyingTick,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const STAGE: &str = "normalize";

/// The `[normalize]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Quotes whose spread (ask − bid) exceeds this multiple of the mid are rejected
    /// (`wide_spread`). Spread/mid is at most 2 for any quote with a positive bid, so 1.5 only
    /// drops quotes whose ask is more than 7× the bid: no fair value can be read from them.
    pub max_spread_pct: f64,
    /// Seconds an underlying price stays usable for quotes that do not carry their own.
    pub max_underlying_age_secs: u64,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            max_spread_pct: 1.5,
            max_underlying_age_secs: 300,
        }
    }
}

impl NormalizeConfig {
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Problems::default();
        p.check(
            self.max_spread_pct > 0.0 && self.max_spread_pct.is_finite(),
            "max-spread-pct",
            "must be a positive number",
        );
        p.check(
            self.max_underlying_age_secs >= 1,
            "max-underlying-age-secs",
            "must be at least 1",
        );
        p.finish()
    }

    /// Builds the operator.
    pub fn build(&self) -> Result<Normalize, ConfigErrors> {
        self.validate()?;
        Ok(Normalize {
            cfg: self.clone(),
            state: State::default(),
            symbols: SymbolParser::default(),
            last_underlying: None,
        })
    }
}

/// A parsed OCC option symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct OccContract {
    /// Root (1–6 characters).
    pub root: CompactString,
    /// Expiration date.
    pub expiry: NaiveDate,
    /// Call or put.
    pub right: Right,
    /// Strike.
    pub strike: f64,
}

impl OccContract {
    /// The canonical 21-character symbol.
    pub fn symbol(&self) -> CompactString {
        // Written byte by byte into a buffer on the stack, then made a string once: every
        // quote passes here, and `format!` with a strftime-style date (or a push per
        // character) costs more than the rest of the quote's normalization.
        let milli = (self.strike * 1000.0).round() as i64;
        let root = self.root.as_bytes();
        if root.len() <= 6 && (0..100_000_000).contains(&milli) {
            let mut b = [b' '; 21];
            b[..root.len()].copy_from_slice(root);
            b[6..8].copy_from_slice(&two_digits(self.expiry.year().rem_euclid(100) as u32));
            b[8..10].copy_from_slice(&two_digits(self.expiry.month()));
            b[10..12].copy_from_slice(&two_digits(self.expiry.day()));
            b[12] = if self.right == Right::Call {
                b'C'
            } else {
                b'P'
            };
            // Least significant digit first, one division each (a power of ten per digit
            // cost more than the rest of the symbol).
            let mut rest = milli;
            for digit in b[13..].iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            // Valid UTF-8 by construction (the root's own bytes, then ASCII).
            if let Ok(s) = std::str::from_utf8(&b) {
                return s.into();
            }
        }
        // A root longer than six or a strike the OCC format cannot hold (the parser makes
        // neither): kept readable rather than cut.
        let right = if self.right == Right::Call { 'C' } else { 'P' };
        let e = self.expiry;
        format_compact!(
            "{:<6}{:02}{:02}{:02}{right}{milli:08}",
            self.root,
            e.year().rem_euclid(100),
            e.month(),
            e.day()
        )
    }

    /// The expiry as `YYYY-MM-DD`.
    pub fn expiry_iso(&self) -> CompactString {
        let year = self.expiry.year();
        if (0..10_000).contains(&year) {
            let mut b = *b"0000-00-00";
            b[0..2].copy_from_slice(&two_digits((year / 100) as u32));
            b[2..4].copy_from_slice(&two_digits((year % 100) as u32));
            b[5..7].copy_from_slice(&two_digits(self.expiry.month()));
            b[8..10].copy_from_slice(&two_digits(self.expiry.day()));
            if let Ok(s) = std::str::from_utf8(&b) {
                return s.into();
            }
        }
        format_compact!("{}", self.expiry.format("%Y-%m-%d"))
    }
}

/// `n` (0–99) as two ASCII digits.
fn two_digits(n: u32) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// Whether `b` is an ASCII character `char::is_whitespace` accepts (`\t`, `\n`, `\x0B`,
/// `\x0C`, `\r`, space): what `str::trim_end` took off a root before the parse went bytewise.
/// (`u8::is_ascii_whitespace` leaves out `\x0B`.)
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// Eight ASCII digits, the first in the lowest byte of `w` (`u64::from_le_bytes`), paired:
/// each 16-bit lane holds its two digits' number (0–99), the first pair in the lowest lane.
/// `None` when any byte is not a digit. A whole symbol's digits are checked and combined a
/// word at a time rather than a byte at a time.
fn digit_pairs(w: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // A digit's high nibble is 3, and adding 6 to it keeps it there (b'9' + 6 = 0x3F); with
    // every high nibble 3 no byte of the sum carries into the next, so both tests are exact.
    let high = 0xF0 * ONES;
    if w & high != 0x30 * ONES || w.wrapping_add(6 * ONES) & high != 0x30 * ONES {
        return None;
    }
    let d = w - 0x30 * ONES;
    // Byte i becomes 10·dᵢ + dᵢ₊₁ (≤ 99, so no byte overflows); the even bytes are the pairs.
    Some((d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF)
}

/// YYMMDD as chrono's `%y%m%d` reads it (years 70–99 are 19xx, the rest 20xx), without its
/// format-string parser.
fn parse_yymmdd(b: &[u8; 6]) -> Option<NaiveDate> {
    let [y0, y1, m0, m1, d0, d1] = *b;
    let pairs = digit_pairs(u64::from_le_bytes([y0, y1, m0, m1, d0, d1, b'0', b'0']))?;
    let pair = |i: u32| (pairs >> (16 * i)) as u32 & 0xFF;
    let yy = pair(0) as i32;
    let year = yy + if yy < 70 { 2000 } else { 1900 };
    NaiveDate::from_ymd_opt(year, pair(1), pair(2))
}

/// The eight strike digits' number (0–99,999,999), `None` unless all are digits.
fn parse_strike_digits(b: &[u8; 8]) -> Option<u64> {
    let pairs = digit_pairs(u64::from_le_bytes(*b))?;
    // Pairs to fours (≤ 9999 in each 32-bit lane), then the two fours to the number.
    let fours = (pairs * 100 + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((fours & 0xFFFF_FFFF) * 10_000 + (fours >> 32))
}

/// Parses `AAPL  240119C00190000`, `AAPL240119C00190000` or Polygon's `O:AAPL240119C00190000`.
///
/// Every quote's symbol passes here, so it reads bytes: the root (1–6 of `A-Z0-9`, trailing
/// spaces dropped), then a fixed 15-byte tail of date, right and strike digits, each byte
/// checked once, the digits a word at a time. Every byte of a symbol that parses is thus
/// checked to be ASCII, as the `str`-based parser this replaced required first (its
/// `chars()` walks and `u64` parse were ~500 instructions a quote); a test holds the two to
/// the same results.
pub fn parse_occ(symbol: &str) -> Result<OccContract, String> {
    let bad =
        || format!("{symbol:?} is not an OCC option symbol (ROOT + YYMMDD + C/P + 8-digit strike)");
    let text = symbol.strip_prefix("O:").unwrap_or(symbol);
    let bytes = text.as_bytes();
    // At least one byte of root before the 15 of the tail.
    let Some(split) = bytes.len().checked_sub(15).filter(|&n| n > 0) else {
        return Err(bad());
    };
    let (head, tail) = bytes.split_at(split);
    let mut root_len = head.len();
    while root_len > 0 && is_ascii_space(head[root_len - 1]) {
        root_len -= 1;
    }
    if root_len == 0
        || root_len > 6
        || !head[..root_len]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(bad());
    }
    let Some((date, [right, strike @ ..])) = tail.split_first_chunk::<6>() else {
        return Err(bad());
    };
    let expiry = parse_yymmdd(date).ok_or_else(bad)?;
    let right = match right {
        b'C' => Right::Call,
        b'P' => Right::Put,
        _ => return Err(bad()),
    };
    let milli = strike
        .first_chunk::<8>()
        .and_then(parse_strike_digits)
        .ok_or_else(bad)?;
    let strike = milli as f64 / 1000.0;
    if strike <= 0.0 {
        return Err(bad());
    }
    // Every byte up to the root's end is checked ASCII, and the one after it is a space or
    // a digit: a character boundary, so `get` finds the root.
    let root = text.get(..root_len).ok_or_else(bad)?;
    Ok(OccContract {
        root: root.into(),
        expiry,
        right,
        strike,
    })
}

/// Appends `x` as `Display` writes it (the shortest decimal that reads back as `x`, never
/// in exponent form), without the formatting machinery for the usual case of a price in
/// whole cents: zero-bid rejections are a sixth of a simulated session's quotes, and
/// formatting their reasons' two prices was about 1% of a replay's CPU.
///
/// Whole cents: `c / 100.0` is the double nearest the decimal `c/100` (one correctly rounded
/// division of an exact integer), and below 1e9 the doubles are spaced far closer than a cent,
/// so no other decimal of two places or fewer reads back as the same double: that decimal,
/// trailing zeros dropped, is what `Display` writes. Anything else goes through `Display`.
fn push_price(out: &mut String, x: f64) {
    let cents = (x * 100.0).round();
    if !(cents.abs() < 1e11 && cents / 100.0 == x) {
        use std::fmt::Write;
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{x}");
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    // Below 1e11 in magnitude: exact as an integer.
    let cents = cents.abs() as u64;
    out.push_str(itoa::Buffer::new().format(cents / 100));
    let fraction = cents % 100;
    if fraction != 0 {
        out.push('.');
        out.push(char::from(b'0' + (fraction / 10) as u8));
        if !fraction.is_multiple_of(10) {
            out.push(char::from(b'0' + (fraction % 10) as u8));
        }
    }
}

/// Whether an OCC root belongs to `underlying`: itself, an adjusted root (`GME1`), a known
/// weekly/index alias (`SPXW` → `SPX`), a share class written with a separator (`BRK.B` or
/// `BRK/B` has the root `BRKB`), or a vendor's index spelling (Polygon's `I:SPX`).
fn root_matches(root: &str, underlying: &str) -> bool {
    let base = root.trim_end_matches(|c: char| c.is_ascii_digit());
    let underlying = underlying.strip_prefix("I:").unwrap_or(underlying);
    // Compared character by character rather than by building the joined spelling: every
    // quote passes here.
    let joined = underlying.chars().filter(|c| !matches!(c, '.' | '/'));
    base == underlying
        || base.chars().eq(joined)
        || matches!(
            (base, underlying),
            ("SPXW", "SPX") | ("NDXP", "NDX") | ("RUTW", "RUT") | ("VIXW", "VIX")
        )
}

/// Expiration instant in µs: when the option's settlement value is fixed, so that time to expiry
/// is exact to the microsecond and a same-day (0DTE) quote still has a few hours to run. That is
/// the 16:00 New York close of the expiry date, except for AM-settled index options (see
/// [`is_am_settled`]), whose value is fixed by the 09:30 opening prints of that date.
pub fn expiry_instant(root: &str, date: NaiveDate) -> Option<i64> {
    settlement_instant(date, is_am_settled(root, date))
}

/// 09:30 (`am_settled`) or 16:00 New York time on `date`, in µs.
fn settlement_instant(date: NaiveDate, am_settled: bool) -> Option<i64> {
    let (hour, minute) = if am_settled { (9, 30) } else { (16, 0) };
    let at = date.and_hms_opt(hour, minute, 0)?;
    chrono_tz::America::New_York
        .from_local_datetime(&at)
        .single()
        .map(|t| t.timestamp_micros())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Underlying {
    price: f64,
    at: i64,
    sector: Option<CompactString>,
}

/// What the checks of an accepted quote found.
struct Accepted {
    /// The symbol's contract and the strings made from it.
    parsed: ParsedSymbol,
    /// The settlement instant.
    expiry_time: i64,
    /// The quote's own underlying price, or the last tick's.
    spot: f64,
    /// The underlying's sector, when its ticks gave one.
    sector: Option<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    underlyings: BTreeMap<TextKey, Underlying>,
    rejects: BTreeMap<String, u64>,
}

/// The normalize operator.
#[derive(Debug)]
pub struct Normalize {
    cfg: NormalizeConfig,
    state: State,
    symbols: SymbolParser,
    /// The underlying the last quote looked up, as the map had it then: quotes come in runs of
    /// one underlying (its tick, then its chain), so most find theirs here by comparing names,
    /// where the map's search cost ~300 instructions a quote. Cleared by every tick and by a
    /// restore (the only writers of the underlyings); not part of the state.
    last_underlying: Option<(CompactString, Underlying)>,
}

/// A symbol's contract with what every quote of it carries: the canonical symbol, the expiry
/// as `YYYY-MM-DD` and the settlement instant.
#[derive(Debug, Clone)]
struct ParsedSymbol {
    contract: OccContract,
    /// [`OccContract::symbol`].
    symbol: CompactString,
    /// [`OccContract::expiry_iso`].
    expiry_iso: CompactString,
    /// [`expiry_instant`] (`None`: the date has no settlement time in New York).
    expiry_time: Option<i64>,
}

/// Parses each quote's symbol into its [`ParsedSymbol`], with the expiries' settlement
/// instants and dates remembered ([`KnownExpiries`]). The symbols themselves are parsed every
/// time: a memo of them (a search by a hash of the spelling among a chain's thousands of
/// symbols) missed the cache on most quotes and cost more than the parsing and formatting it
/// saved, which are a few dozen instructions each since they are written into stack buffers
/// (2h replay: 786k quotes/s without the memo, 745k with it, 4 alternated runs each).
#[derive(Debug, Default)]
struct SymbolParser {
    /// The expiries of the symbols parsed (many share a date).
    expiries: KnownExpiries,
}

impl SymbolParser {
    /// `symbol` parsed ([`parse_occ`]), with its strings and settlement instant.
    fn parse(&mut self, symbol: &CompactString) -> Result<ParsedSymbol, String> {
        parse_occ(symbol).map(|contract| {
            let expiry = self.expiries.expiry(&contract);
            ParsedSymbol {
                symbol: if is_canonical(symbol, &contract) {
                    symbol.clone()
                } else {
                    contract.symbol()
                },
                expiry_iso: expiry.iso.clone(),
                expiry_time: expiry.instant,
                contract,
            }
        })
    }
}

/// Whether `symbol`, which parsed as `contract`, is already the canonical spelling
/// [`OccContract::symbol`] would write: 21 characters, the root padded with spaces to six.
/// The date, right and strike digits of a symbol that parsed are the ones the canonical form
/// writes back, so only the root's padding (or a vendor's prefix) can differ; most vendors
/// send this form, and copying it saves formatting every quote's symbol again.
fn is_canonical(symbol: &str, contract: &OccContract) -> bool {
    let (bytes, root) = (symbol.as_bytes(), contract.root.len());
    bytes.len() == 21
        && root <= 6
        && bytes[..root] == *contract.root.as_bytes()
        && bytes[root..6].iter().all(|b| *b == b' ')
}

/// What every symbol of one expiry shares, remembered per settlement date and time: a chain
/// has a few dozen expiries, and the time-zone lookup behind each instant cost more than the
/// rest of a quote's checks, and the date's text was written out again for every quote. A pure
/// function's memo, so not part of the checkpointed state.
#[derive(Debug, Default)]
struct KnownExpiries {
    /// (expiry date, AM-settled) → the expiry.
    known: BTreeMap<(NaiveDate, bool), KnownExpiry>,
}

/// One expiry's settlement instant and date text.
#[derive(Debug)]
struct KnownExpiry {
    /// [`expiry_instant`] (`None`: the date has no settlement time in New York).
    instant: Option<i64>,
    /// [`OccContract::expiry_iso`].
    iso: CompactString,
}

impl KnownExpiries {
    /// Dates remembered at most: symbols from outside may carry any date, and the memo must
    /// not grow with them.
    const CAPACITY: usize = 4096;

    /// The settlement instant and date text of `contract`'s expiry.
    fn expiry(&mut self, contract: &OccContract) -> &KnownExpiry {
        let date = contract.expiry;
        let key = (date, is_am_settled(&contract.root, date));
        if self.known.len() >= Self::CAPACITY && !self.known.contains_key(&key) {
            self.known.clear();
        }
        self.known.entry(key).or_insert_with(|| KnownExpiry {
            instant: settlement_instant(date, key.1),
            iso: contract.expiry_iso(),
        })
    }
}

impl Normalize {
    /// Rejections so far, by reason code.
    pub fn reject_counts(&self) -> &BTreeMap<String, u64> {
        &self.state.rejects
    }

    /// Counts a rejection by its reason code and emits it.
    fn reject(&mut self, out: &mut Emit<NormalizedEvent>, rejected: RejectedQuote) {
        // The code is copied into the map once, when it is first seen.
        match self.state.rejects.get_mut(rejected.reason_code.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.state
                    .rejects
                    .insert(rejected.reason_code.to_string(), 1);
            }
        }
        out.reject(rejected);
    }

    fn on_tick(&mut self, t: &UnderlyingTick, out: &mut Emit<NormalizedEvent>) {
        self.last_underlying = None;
        if !(t.price.is_finite() && t.price > 0.0) {
            let reason = format!("underlying price {} is not a positive number", t.price);
            let (id, u) = (&t.event_id, &t.underlying);
            let code = "bad_underlying_price";
            self.reject(out, rejection(STAGE, id, t.event_time, u, u, code, reason));
            return;
        }
        let u = self
            .state
            .underlyings
            .entry(TextKey::from(&t.underlying))
            .or_default();
        u.price = t.price;
        u.at = t.event_time;
        if t.sector.is_some() {
            u.sector.clone_from(&t.sector);
        }
        out.emit(NormalizedEvent::Tick(t.clone()));
    }

    fn check(&mut self, q: &RawQuote) -> Result<Accepted, (&'static str, String)> {
        let parsed = (self.symbols.parse(&q.symbol)).map_err(|e| ("bad_symbol", e))?;
        let c = &parsed.contract;
        if !root_matches(&c.root, &q.underlying) {
            return Err((
                "underlying_mismatch",
                format!("root {} does not belong to {}", c.root, q.underlying),
            ));
        }
        if !q.bid.is_finite()
            || !q.ask.is_finite()
            || q.underlying_price.is_some_and(|p| !p.is_finite())
        {
            return Err((
                "not_finite",
                format!(
                    "bid {} ask {} underlying {:?}",
                    q.bid, q.ask, q.underlying_price
                ),
            ));
        }
        if q.bid < 0.0 || q.ask < 0.0 {
            return Err(("negative_price", format!("bid {} ask {}", q.bid, q.ask)));
        }
        if q.bid <= 0.0 {
            // A sixth of a simulated session's quotes: written without `format!` (see
            // `push_price`).
            let mut reason = String::with_capacity(40);
            reason.push_str("no tradeable bid (bid ");
            push_price(&mut reason, q.bid);
            reason.push_str(", ask ");
            push_price(&mut reason, q.ask);
            reason.push(')');
            return Err(("zero_bid", reason));
        }
        if q.bid > q.ask {
            return Err((
                "crossed_market",
                format!("bid {} above ask {}", q.bid, q.ask),
            ));
        }
        let mid = 0.5 * (q.bid + q.ask);
        if (q.ask - q.bid) / mid > self.cfg.max_spread_pct {
            return Err((
                "wide_spread",
                format!(
                    "spread {:.2} is {:.0}% of mid {mid:.2}",
                    q.ask - q.bid,
                    100.0 * (q.ask - q.bid) / mid
                ),
            ));
        }
        // The reason is formatted only for a rejection (an eager `ok_or` built it for every
        // quote: 3% of a replay's instructions).
        let expiry = parsed.expiry_time.ok_or_else(|| {
            (
                "bad_symbol",
                format!("expiry {} has no settlement time in New York", c.expiry),
            )
        })?;
        if expiry <= q.event_time {
            return Err((
                "expired",
                format!("expired {} before the quote's time", c.expiry),
            ));
        }
        // One search of the underlyings serves both the spot (when the quote has none) and the
        // sector.
        let underlying =
            remembered_underlying(&mut self.last_underlying, &self.state, &q.underlying);
        let spot = match (q.underlying_price, underlying) {
            (Some(p), _) if p > 0.0 => p,
            (_, Some(u))
                if q.event_time - u.at
                    <= self.cfg.max_underlying_age_secs as i64 * MICROS_PER_SECOND =>
            {
                u.price
            }
            _ => {
                return Err((
                    "no_underlying_price",
                    format!("no recent price for {}", q.underlying),
                ))
            }
        };
        Ok(Accepted {
            parsed,
            expiry_time: expiry,
            spot,
            sector: underlying.and_then(|u| u.sector.clone()),
        })
    }

    fn on_quote(&mut self, q: &RawQuote, out: &mut Emit<NormalizedEvent>) {
        if let Some(accepted) = self.accept(q, out) {
            let strings = (q.underlying.clone(), q.event_id.clone());
            out.emit(NormalizedEvent::Quote(Self::normalized(
                q, accepted, strings,
            )));
        }
    }

    /// [`Normalize::on_quote`] on a quote of a batch the stage owns: its underlying and event id
    /// are taken into the normalized quote instead of being copied.
    fn on_owned_quote(&mut self, q: &mut RawQuote, out: &mut Emit<NormalizedEvent>) {
        if let Some(accepted) = self.accept(q, out) {
            let strings = (
                std::mem::take(&mut q.underlying),
                std::mem::take(&mut q.event_id),
            );
            out.emit(NormalizedEvent::Quote(Self::normalized(
                q, accepted, strings,
            )));
        }
    }

    /// Checks a quote: its contract, settlement instant, spot and sector, or `None` once it
    /// has been rejected with the reason.
    fn accept(&mut self, q: &RawQuote, out: &mut Emit<NormalizedEvent>) -> Option<Accepted> {
        match self.check(q) {
            Ok(v) => Some(v),
            Err((code, reason)) => {
                let (id, u, sym) = (&q.event_id, &q.underlying, &q.symbol);
                self.reject(
                    out,
                    rejection(STAGE, id, q.event_time, u, sym, code, reason),
                );
                None
            }
        }
    }

    /// The normalized form of an accepted quote; `underlying` and `source_event_id` are the
    /// quote's own (read from them, not from `q`, which may have given them up).
    fn normalized(
        q: &RawQuote,
        Accepted {
            parsed,
            expiry_time,
            spot,
            sector,
        }: Accepted,
        (underlying, source_event_id): (CompactString, IdString),
    ) -> NormalizedQuote {
        let mid = 0.5 * (q.bid + q.ask);
        let c = parsed.contract;
        NormalizedQuote {
            event_id: EventId::derived(STAGE, &source_event_id),
            event_time: q.event_time,
            sector,
            underlying,
            source_event_id,
            symbol: parsed.symbol,
            root: c.root,
            expiry: parsed.expiry_iso,
            expiry_time,
            right: CompactString::const_new(c.right.as_str()),
            strike: c.strike,
            bid: q.bid,
            ask: q.ask,
            mid,
            spread: q.ask - q.bid,
            spread_pct: (q.ask - q.bid) / mid,
            bid_size: q.bid_size,
            ask_size: q.ask_size,
            volume: q.volume,
            open_interest: q.open_interest,
            underlying_price: spot,
            years_to_expiry: years_between(q.event_time, expiry_time),
        }
    }
}

impl Operator for Normalize {
    type In = RawEvent;
    type Out = NormalizedEvent;

    fn name(&self) -> &'static str {
        STAGE
    }

    fn on_event(
        &mut self,
        ev: &RawEvent,
        _ctx: &Ctx,
        out: &mut Emit<NormalizedEvent>,
    ) -> Result<(), OpError> {
        match ev {
            RawEvent::Quote(q) => self.on_quote(q, out),
            RawEvent::Tick(t) => self.on_tick(t, out),
        }
        Ok(())
    }

    /// The per-event calls, with each quote's strings moved rather than copied (normalize never
    /// fails an event, so there is no error to stop at).
    fn on_batch(
        &mut self,
        mut events: Vec<RawEvent>,
        _ctx: &Ctx,
        out: &mut Emit<NormalizedEvent>,
        _errors: &mut Vec<OpError>,
    ) {
        // At most one output per input: room for all of them at once.
        out.reserve(events.len());
        // By reference: moving each ~200-byte event out of the batch was a copy per quote.
        for ev in &mut events {
            match ev {
                RawEvent::Quote(q) => self.on_owned_quote(q, out),
                RawEvent::Tick(t) => self.on_tick(t, out),
            }
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        encode_state(STAGE, &self.state)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.state = decode_state(STAGE, state)?;
        self.last_underlying = None;
        Ok(())
    }
}

/// `name`'s entry in the underlyings, from `last` when it holds that name (else searched, and
/// kept there for the next quote).
fn remembered_underlying<'a>(
    last: &'a mut Option<(CompactString, Underlying)>,
    state: &State,
    name: &CompactString,
) -> Option<&'a Underlying> {
    if !matches!(last, Some((held, _)) if held == name) {
        *last = state
            .underlyings
            .get(&TextKey::from(name))
            .map(|u| (name.clone(), u.clone()));
    }
    last.as_ref().map(|(_, u)| u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_batch, run_events};

    const T: i64 = 1_704_205_800_000_000; // 2024-01-02 09:30 New York

    proptest::proptest! {
        /// Rejection reasons carry prices exactly as `format!("{}")` writes them.
        #[test]
        fn prices_are_written_as_display_writes_them(
            cents in -10_000_000i64..10_000_000,
            any in proptest::num::f64::ANY,
            scale in 0u32..12,
        ) {
            let whole = cents as f64 / 100.0;
            let scaled = cents as f64 * 10f64.powi(scale as i32 - 6);
            for x in [whole, -whole, any, scaled, 0.0, -0.0, 1e9, 1e9 + 0.01, 99_999_999.99] {
                let mut written = String::new();
                push_price(&mut written, x);
                proptest::prop_assert_eq!(written, format!("{x}"));
            }
        }
    }

    fn quote(symbol: &str, bid: f64, ask: f64) -> RawEvent {
        quote_of("AAPL", T, symbol, bid, ask)
    }

    /// An AAPL quote without an underlying price of its own.
    fn spotless(symbol: &str, bid: f64, ask: f64) -> RawQuote {
        let RawEvent::Quote(mut q) = quote(symbol, bid, ask) else {
            unreachable!("quote() builds quotes")
        };
        q.underlying_price = None;
        q
    }

    /// An AAPL tick at 191.00, with its sector.
    fn aapl_tick() -> RawEvent {
        RawEvent::Tick(UnderlyingTick {
            event_id: "t".into(),
            event_time: T,
            underlying: "AAPL".into(),
            source: "test".into(),
            price: 191.0,
            volume: 1,
            sector: Some("Information Technology".into()),
        })
    }

    fn quote_of(underlying: &str, at: i64, symbol: &str, bid: f64, ask: f64) -> RawEvent {
        RawEvent::Quote(RawQuote {
            event_id: format!("{symbol}{bid}{ask}").into(),
            event_time: at,
            underlying: underlying.into(),
            source: "test".into(),
            symbol: symbol.into(),
            bid,
            ask,
            bid_size: 1,
            ask_size: 1,
            last: None,
            volume: 10,
            open_interest: 100,
            underlying_price: Some(190.0),
        })
    }

    #[test]
    fn share_classes_and_index_spellings_match_their_roots() {
        assert!(root_matches("BRKB", "BRK.B"));
        assert!(root_matches("BRKB", "BRK/B"));
        assert!(root_matches("BFB1", "BF.B"));
        assert!(root_matches("SPXW", "I:SPX"));
        assert!(root_matches("SPX", "I:SPX"));
        assert!(!root_matches("BRKA", "BRK.B"));
        assert!(!root_matches("GM", "GME"));
    }

    #[test]
    fn parses_every_occ_form() {
        for s in [
            "AAPL  240119C00190000",
            "AAPL240119C00190000",
            "O:AAPL240119C00190000",
        ] {
            let c = parse_occ(s).unwrap();
            assert_eq!(
                (c.root.as_str(), c.right, c.strike),
                ("AAPL", Right::Call, 190.0)
            );
            assert_eq!(c.symbol(), "AAPL  240119C00190000");
        }
        assert_eq!(parse_occ("SPXW  240119P04500500").unwrap().strike, 4500.5);
        for bad in [
            "GARBAGE",
            "AAPL  241319C00190000",
            "AAPL  240119X00190000",
            "aapl  240119C00190000",
            "",
            "AAPL  240119C0019000a",
        ] {
            assert!(parse_occ(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// The spelling a quote carries on is the canonical one whatever form came in: copied
        /// when it already is, formatted when not (padding, Polygon's prefix, odd spacing).
        #[test]
        fn every_spelling_normalizes_to_the_canonical_symbol(
            root in "[A-Z][A-Z0-9]{0,5}",
            yymmdd in (0u32..100, 1u32..13, 1u32..29),
            call in proptest::bool::ANY,
            milli in 1u64..100_000_000,
            form in 0usize..4,
        ) {
            let (yy, mm, dd) = yymmdd;
            let rest = format!("{yy:02}{mm:02}{dd:02}{}{milli:08}", if call { 'C' } else { 'P' });
            let symbol = match form {
                0 => format!("{root:<6}{rest}"),
                1 => format!("{root}{rest}"),
                2 => format!("O:{root}{rest}"),
                _ => format!("{root}\t{rest}"),
            };
            let parsed = SymbolParser::default().parse(&symbol.as_str().into()).unwrap();
            proptest::prop_assert_eq!(&parsed.symbol, &parsed.contract.symbol());
            proptest::prop_assert_eq!(parsed.symbol.as_str(), format!("{root:<6}{rest}"));
        }
    }

    /// The `str`-based parser `parse_occ` replaced, kept as its reference (its dates read by
    /// chrono, so that the reference shares no digit code with the parser).
    fn parse_occ_by_str(symbol: &str) -> Result<OccContract, String> {
        let s = symbol.strip_prefix("O:").unwrap_or(symbol);
        let bad = || {
            format!("{symbol:?} is not an OCC option symbol (ROOT + YYMMDD + C/P + 8-digit strike)")
        };
        if s.len() < 16 || !s.is_ascii() {
            return Err(bad());
        }
        let (head, tail) = s.split_at(s.len() - 15);
        let root = head.trim_end();
        if root.is_empty()
            || root.len() > 6
            || !root
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(bad());
        }
        // The date as chrono reads it, apart from the word-at-a-time digits under test.
        let date = &tail[..6];
        let expiry = date
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| NaiveDate::parse_from_str(date, "%y%m%d").ok())
            .flatten()
            .ok_or_else(bad)?;
        let right = match &tail[6..7] {
            "C" => Right::Call,
            "P" => Right::Put,
            _ => return Err(bad()),
        };
        let digits = &tail[7..];
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let strike = digits.parse::<u64>().map_err(|_| bad())? as f64 / 1000.0;
        if strike <= 0.0 {
            return Err(bad());
        }
        Ok(OccContract {
            root: root.into(),
            expiry,
            right,
            strike,
        })
    }

    proptest::proptest! {
        /// Any eight bytes read as the strike's digits give `str::parse`'s number exactly when
        /// all eight are ASCII digits: bytes next to the digits in value (`/`, `:`), digits
        /// with a high bit set, anything.
        #[test]
        fn strike_digits_read_a_word_at_a_time_as_one_by_one(
            bytes in proptest::array::uniform8(proptest::prop_oneof![
                b'0'..=b'9',
                proptest::sample::select(vec![b'/', b':', b'0' | 0x80, b'9' + 6, 0x30 - 6]),
                proptest::num::u8::ANY,
            ]),
        ) {
            let expected = bytes
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| std::str::from_utf8(&bytes).unwrap().parse::<u64>().unwrap());
            proptest::prop_assert_eq!(parse_strike_digits(&bytes), expected);
        }
    }

    proptest::proptest! {
        /// The bytewise parser gives what the `str`-based one gave, the error text included:
        /// symbols in every form, then with one character replaced by anything from a set
        /// that hits each check (every ASCII space `trim_end` drops, lower case, multi-byte
        /// characters, a split inside one), or cut short.
        #[test]
        fn symbols_parse_as_the_str_parser_had_them(
            root in "[A-Z0-9]{1,7}",
            (yy, mm, dd) in (0u32..100, 1u32..13, 1u32..32),
            right in "[CP]",
            strike in "[0-9]{8}",
            form in 0usize..5,
            at in proptest::option::of(0usize..32),
            with in "[ \t\n\x0B\x0C\raZ0Xé€\u{3000}]",
            cut in 0usize..24,
        ) {
            let rest = format!("{yy:02}{mm:02}{dd:02}{right}{strike}");
            let mut symbol = match form {
                0 => format!("{root:<6}{rest}"),
                1 => format!("{root}{rest}"),
                2 => format!("O:{root}{rest}"),
                3 => format!("{root}\x0B\t{rest}"),
                _ => format!(" {root}{rest}"),
            };
            if let Some(at) = at {
                let mut chars: Vec<char> = symbol.chars().collect();
                if at < chars.len() {
                    chars[at] = with.chars().next().unwrap();
                }
                symbol = chars.into_iter().collect();
            }
            for text in [symbol.as_str(), &symbol[..symbol.floor_char_boundary(cut)]] {
                proptest::prop_assert_eq!(parse_occ(text), parse_occ_by_str(text), "{:?}", text);
            }
        }
    }

    #[test]
    fn dates_and_symbols_read_and_print_as_chrono_does() {
        for yy in 0..100 {
            for mm in 0..14 {
                for dd in 0..33 {
                    let text = format!("{yy:02}{mm:02}{dd:02}");
                    let ours = parse_yymmdd(text.as_bytes().try_into().unwrap());
                    assert_eq!(
                        ours,
                        NaiveDate::parse_from_str(&text, "%y%m%d").ok(),
                        "{text}"
                    );
                    let Some(expiry) = ours else { continue };
                    for (root, strike) in [
                        ("A", 0.5),
                        ("SPXW", 4500.5),
                        ("BRKB12", 99_999.999),
                        // Neither an OCC root nor an OCC strike: the slow path.
                        ("LONGROOT", 250_000.0),
                    ] {
                        let c = OccContract {
                            root: root.into(),
                            expiry,
                            right: Right::Put,
                            strike,
                        };
                        let by_format = format!(
                            "{root:<6}{}P{:08}",
                            expiry.format("%y%m%d"),
                            (strike * 1000.0).round() as i64
                        );
                        assert_eq!(c.symbol(), by_format);
                        assert_eq!(c.expiry_iso(), expiry.format("%Y-%m-%d").to_string());
                    }
                }
            }
        }
    }

    #[test]
    fn a_good_quote_is_normalized() {
        let mut op = NormalizeConfig::default().build().unwrap();
        let out = run_events(&mut op, vec![quote("AAPL240119C00190000", 4.0, 4.2)]).unwrap();
        let NormalizedEvent::Quote(q) = &out.events[0] else {
            panic!()
        };
        assert_eq!(q.symbol, "AAPL  240119C00190000");
        assert!((q.mid - 4.1).abs() < 1e-12 && (q.spread - 0.2).abs() < 1e-9);
        // 2024-01-02 09:30 → 2024-01-19 16:00 New York: 17 days 6.5 hours.
        assert!((q.years_to_expiry - (17.0 + 6.5 / 24.0) / 365.0).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_rejected_with_their_reason() {
        let mut op = NormalizeConfig::default().build().unwrap();
        let cases = [
            (quote("AAPL  240119C00190000", f64::NAN, 4.2), "not_finite"),
            (quote("AAPL  240119C00190000", 0.0, 4.2), "zero_bid"),
            (quote("AAPL  240119C00190000", 4.5, 4.2), "crossed_market"),
            (quote("AAPL  240119C00190000", 4.0, -1.0), "negative_price"),
            (quote("AAPL  231229C00190000", 4.0, 4.2), "expired"),
            (quote("GARBAGE", 4.0, 4.2), "bad_symbol"),
            (
                quote("MSFT  240119C00190000", 4.0, 4.2),
                "underlying_mismatch",
            ),
            (quote("AAPL  240119C00190000", 0.05, 1.0), "wide_spread"),
        ];
        let out = run_events(&mut op, cases.iter().map(|(q, _)| q.clone())).unwrap();
        assert!(out.events.is_empty());
        let codes: Vec<&str> = out
            .rejected
            .iter()
            .map(|r| r.reason_code.as_str())
            .collect();
        assert_eq!(codes, cases.iter().map(|(_, c)| *c).collect::<Vec<_>>());
        assert!(out
            .rejected
            .iter()
            .all(|r| !r.reason.is_empty() && r.stage == "normalize"));
        assert_eq!(op.reject_counts().values().sum::<u64>(), 8);
    }

    #[test]
    fn underlying_price_comes_from_ticks_and_state_restores() {
        let mut op = NormalizeConfig::default().build().unwrap();
        let tick = aapl_tick();
        let q = spotless("AAPL  240119C00190000", 4.0, 4.2);
        let mut restored = NormalizeConfig::default().build().unwrap();
        run_events(&mut op, vec![tick]).unwrap();
        restored.restore(&op.snapshot().unwrap()).unwrap();
        let out = run_events(&mut restored, vec![RawEvent::Quote(q)]).unwrap();
        let NormalizedEvent::Quote(n) = &out.events[0] else {
            panic!()
        };
        assert_eq!(n.underlying_price, 191.0);
        assert_eq!(n.sector.as_deref(), Some("Information Technology"));
    }

    /// Each quote sees its own underlying's latest tick, however the quotes and ticks of
    /// several underlyings interleave (the last lookup is remembered between quotes), and a
    /// restore brings back the state's prices, not the ones remembered before it.
    #[test]
    fn each_quote_sees_the_latest_tick_of_its_own_underlying() {
        let tick = |underlying: &str, at: i64, price: f64| {
            RawEvent::Tick(UnderlyingTick {
                event_id: format!("t{underlying}{at}").into(),
                event_time: at,
                underlying: underlying.into(),
                source: "test".into(),
                price,
                volume: 1,
                sector: None,
            })
        };
        let spotless_of = |underlying: &str, at: i64, symbol: &str| {
            let RawEvent::Quote(mut q) = quote_of(underlying, at, symbol, 4.0, 4.2) else {
                unreachable!("quote_of() builds quotes")
            };
            q.underlying_price = None;
            RawEvent::Quote(q)
        };
        let (aapl, msft) = ("AAPL  240119C00190000", "MSFT  240119C00370000");
        let mut op = NormalizeConfig::default().build().unwrap();
        let events = vec![
            tick("AAPL", T, 191.0),
            tick("MSFT", T, 371.0),
            spotless_of("AAPL", T, aapl),
            spotless_of("AAPL", T, aapl),
            spotless_of("MSFT", T, msft),
            spotless_of("AAPL", T, aapl),
            tick("AAPL", T + 1, 192.5),
            spotless_of("MSFT", T + 1, msft),
            spotless_of("AAPL", T + 1, aapl),
        ];
        let spots_in = |events: &[NormalizedEvent]| -> Vec<f64> {
            events
                .iter()
                .filter_map(|e| match e {
                    NormalizedEvent::Quote(q) => Some(q.underlying_price),
                    NormalizedEvent::Tick(_) => None,
                })
                .collect()
        };
        let out = run_events(&mut op, events.clone()).unwrap();
        let expected = [191.0, 191.0, 371.0, 191.0, 371.0, 192.5];
        assert_eq!(spots_in(&out.events), expected);
        let (batched, rejected, _) =
            run_batch(&mut NormalizeConfig::default().build().unwrap(), events);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(spots_in(&batched), expected);

        // AAPL is remembered at 192.50; a checkpoint from when it was 191.00 restores that.
        let mut earlier = NormalizeConfig::default().build().unwrap();
        run_events(&mut earlier, vec![tick("AAPL", T, 191.0)]).unwrap();
        op.restore(&earlier.snapshot().unwrap()).unwrap();
        let out = run_events(&mut op, vec![spotless_of("AAPL", T + 2, aapl)]).unwrap();
        assert_eq!(spots_in(&out.events), [191.0]);
    }

    fn years_of(out: &crate::testing::Collected<NormalizedEvent>) -> f64 {
        match &out.events[..] {
            [NormalizedEvent::Quote(q)] => q.years_to_expiry,
            other => panic!("expected one quote, got {other:?} / {:?}", out.rejected),
        }
    }

    #[test]
    fn am_settled_monthlies_expire_at_the_open() {
        // SPX's January 2024 monthly (third Friday) settles on the 09:30 open: from 2024-01-02
        // 09:30 that is exactly 17 days. The SPXW weekly of the same date runs to the close.
        let mut op = NormalizeConfig::default().build().unwrap();
        let spx = quote_of("SPX", T, "SPX   240119C04700000", 40.0, 41.0);
        assert!((years_of(&run_events(&mut op, vec![spx]).unwrap()) - 17.0 / 365.0).abs() < 1e-12);
        let spxw = quote_of("SPX", T, "SPXW  240119C04700000", 40.0, 41.0);
        let pm = 17.0 + 6.5 / 24.0;
        assert!((years_of(&run_events(&mut op, vec![spxw]).unwrap()) - pm / 365.0).abs() < 1e-12);
    }

    #[test]
    fn a_0dte_quote_an_hour_before_the_close_has_an_hour_left() {
        let at = chrono_tz::America::New_York
            .with_ymd_and_hms(2024, 1, 19, 15, 0, 0)
            .unwrap()
            .timestamp_micros();
        let mut op = NormalizeConfig::default().build().unwrap();
        let q = quote_of("AAPL", at, "AAPL  240119C00190000", 1.0, 1.1);
        let years = years_of(&run_events(&mut op, vec![q]).unwrap());
        assert!((years - 1.0 / (365.0 * 24.0)).abs() < 1e-15, "{years}");
        // The AM-settled SPX monthly of that date stopped at the open: expired by 15:00.
        let spx = quote_of("SPX", at, "SPX   240119C04700000", 40.0, 41.0);
        let out = run_events(&mut op, vec![spx]).unwrap();
        assert_eq!(out.rejected[0].reason_code, "expired");
    }
    #[test]
    fn a_symbol_quoted_again_normalizes_as_the_first_time() {
        // Every spelling of one contract, a symbol that does not parse and one whose expiry
        // has passed, each quoted twice: the second pass (its settlement instants remembered)
        // gives what a stage that never saw them gives.
        let events: Vec<_> = [
            "AAPL  240119C00190000",
            "AAPL240119C00190000",
            "O:AAPL240119C00190000",
            "GARBAGE",
            "AAPL  231229C00190000",
            "AAPL  240119P00185000",
        ]
        .iter()
        .map(|symbol| quote(symbol, 4.0, 4.2))
        .collect();
        let mut seen = NormalizeConfig::default().build().unwrap();
        let first = run_events(&mut seen, events.clone()).unwrap();
        let again = run_events(&mut seen, events.clone()).unwrap();
        let fresh = run_events(&mut NormalizeConfig::default().build().unwrap(), events).unwrap();
        assert_eq!(again.events, fresh.events);
        assert_eq!(again.rejected, fresh.rejected);
        assert_eq!(first.events, fresh.events);
        assert_eq!((again.events.len(), again.rejected.len()), (4, 2));
    }

    #[test]
    fn a_batch_gives_what_its_events_give_one_by_one() {
        let tick = aapl_tick();
        let spotless = spotless("AAPL  240119P00185000", 1.0, 1.1);
        let events = vec![
            quote("AAPL  240119C00190000", 4.0, 4.2),
            // No spot of its own and no tick yet: rejected; after the tick: priced from it,
            // with the tick's sector.
            RawEvent::Quote(spotless.clone()),
            tick,
            RawEvent::Quote(spotless),
            quote("GARBAGE", 1.0, 1.1),
            quote("AAPL  240119C00195000", 2.2, 2.0),
            quote("O:AAPL240119C00200000", 1.0, 1.05),
        ];
        let mut one_by_one = NormalizeConfig::default().build().unwrap();
        let expected = run_events(&mut one_by_one, events.clone()).unwrap();
        let mut batched = NormalizeConfig::default().build().unwrap();
        let (got, rejected, errors) = run_batch(&mut batched, events);

        assert!(errors.is_empty());
        assert_eq!(got, expected.events, "same events, same order");
        assert_eq!(rejected, expected.rejected);
        assert_eq!(batched.snapshot().unwrap(), one_by_one.snapshot().unwrap());
        let quotes: Vec<_> = got
            .iter()
            .filter_map(|e| match e {
                NormalizedEvent::Quote(q) => Some(q),
                _ => None,
            })
            .collect();
        assert_eq!(quotes.len(), 3, "{quotes:?}");
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert!(quotes.iter().all(|q| q.underlying == "AAPL"));
        assert_eq!(quotes[1].sector.as_deref(), Some("Information Technology"));
        assert_eq!(quotes[2].source_event_id, "O:AAPL240119C0020000011.05");
    }
}
