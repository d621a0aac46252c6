//! Calibration: maps a signal's 0–100 composite to the probability that its direction is right.
//!
//! Composites rank signals but are not probabilities; a user deciding how much to trust a
//! signal needs the hit rate that signals of that composite have had. The mapping is fitted
//! offline from labelled outcomes (isotonic regression, which only assumes that a higher
//! composite is never worse, or Platt's logistic fit) and loaded by the consensus stage from a
//! JSON file. Until a file exists the identity prior `composite / 100` is used and signals say
//! `calibrated: false`.
//!
//! File format:
//! ```json
//! {"method": "isotonic", "points": [[60.0, 0.48], [75.0, 0.55], [90.0, 0.71]]}
//! {"method": "platt", "a": 4.2, "b": -2.9}
//! ```
//! Isotonic points are `[composite, probability]`, composites strictly increasing and
//! probabilities non-decreasing; between points the probability is interpolated linearly and
//! beyond the ends it is held flat. Platt: `p = 1 / (1 + exp(-(a · composite/100 + b)))`.

use serde::{Deserialize, Serialize};

/// A fitted (or prior) mapping from composite to probability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Calibration {
    /// `composite / 100`: the prior before any outcomes exist.
    #[default]
    Identity,
    /// Piecewise-linear through monotone `[composite, probability]` points.
    Isotonic {
        /// The fitted points.
        points: Vec<(f64, f64)>,
    },
    /// Logistic in `composite / 100`.
    Platt {
        /// Slope.
        a: f64,
        /// Intercept.
        b: f64,
    },
}

impl Calibration {
    /// Parses and validates a calibration file's text; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<Calibration, String> {
        let cal: Calibration =
            serde_json::from_str(text).map_err(|e| format!("not a calibration file: {e}"))?;
        cal.validate()?;
        Ok(cal)
    }

    /// The file's text for this calibration.
    pub fn to_json(&self) -> String {
        // Serializing a plain enum of numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            Calibration::Identity => Ok(()),
            Calibration::Platt { a, b } if a.is_finite() && b.is_finite() => Ok(()),
            Calibration::Platt { .. } => Err("platt: a and b must be finite numbers".into()),
            Calibration::Isotonic { points } => {
                if points.is_empty() {
                    return Err("isotonic: needs at least one point".into());
                }
                for (x, p) in points {
                    if !(x.is_finite() && (0.0..=1.0).contains(p)) {
                        return Err(format!(
                            "isotonic: point [{x}, {p}] needs a finite composite and a probability in [0, 1]"
                        ));
                    }
                }
                for w in points.windows(2) {
                    if w[1].0 <= w[0].0 || w[1].1 < w[0].1 {
                        return Err(format!(
                            "isotonic: points must have increasing composites and non-decreasing probabilities ({:?} then {:?})",
                            w[0], w[1]
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether this is a fitted mapping rather than the identity prior.
    pub fn is_fitted(&self) -> bool {
        !matches!(self, Calibration::Identity)
    }

    /// The probability for a composite in 0–100.
    pub fn probability(&self, composite: f64) -> f64 {
        let p = match self {
            Calibration::Identity => composite / 100.0,
            Calibration::Platt { a, b } => 1.0 / (1.0 + (-(a * composite / 100.0 + b)).exp()),
            Calibration::Isotonic { points } => interpolate(points, composite),
        };
        p.clamp(0.0, 1.0)
    }

    /// Fits an isotonic calibration to `(composite, hit)` outcomes with the pool-adjacent-
    /// violators algorithm: the least-squares non-decreasing step function, whose blocks become
    /// the points (each at its block's mean composite).
    pub fn fit_isotonic(outcomes: &[(f64, bool)]) -> Result<Calibration, String> {
        let mut sorted: Vec<(f64, f64)> = outcomes
            .iter()
            .filter(|(x, _)| x.is_finite())
            .map(|&(x, hit)| (x, f64::from(u8::from(hit))))
            .collect();
        if sorted.is_empty() {
            return Err("no outcomes to fit".into());
        }
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (sum of composites, sum of hits, count); outcomes at one composite start
        // as one block, since the fit is a function of the composite.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (x, y) in sorted {
            match blocks.last_mut() {
                Some(last) if last.0 / last.2 == x => {
                    *last = (last.0 + x, last.1 + y, last.2 + 1.0);
                }
                _ => blocks.push((x, y, 1.0)),
            }
            while blocks.len() >= 2 {
                let (b, a) = (blocks[blocks.len() - 1], blocks[blocks.len() - 2]);
                if a.1 / a.2 <= b.1 / b.2 {
                    break;
                }
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
            }
        }
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(blocks.len());
        for (sx, sy, n) in blocks {
            let (x, p) = (sx / n, sy / n);
            // Equal mean composites from separate blocks cannot be points of a function: merge.
            match points.last_mut() {
                Some(last) if x <= last.0 => last.1 = last.1.max(p),
                _ => points.push((x, p)),
            }
        }
        let cal = Calibration::Isotonic { points };
        cal.validate()?;
        Ok(cal)
    }
}

fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let i = points.partition_point(|p| p.0 <= x);
    let (a, b) = (points[i - 1], points[i]);
    a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_the_prior() {
        let c = Calibration::default();
        assert!(!c.is_fitted());
        assert_eq!(c.probability(83.0), 0.83);
    }

    #[test]
    fn isotonic_interpolates_and_holds_flat_beyond_the_ends() {
        let c = Calibration::from_json(
            r#"{"method":"isotonic","points":[[60.0,0.4],[80.0,0.6],[90.0,0.9]]}"#,
        )
        .unwrap();
        assert!(c.is_fitted());
        assert_eq!(c.probability(10.0), 0.4);
        assert!((c.probability(70.0) - 0.5).abs() < 1e-12);
        assert!((c.probability(85.0) - 0.75).abs() < 1e-12);
        assert_eq!(c.probability(99.0), 0.9);
    }

    #[test]
    fn platt_is_logistic_in_the_composite() {
        let c = Calibration::from_json(r#"{"method":"platt","a":4.0,"b":-3.0}"#).unwrap();
        assert!((c.probability(75.0) - 0.5).abs() < 1e-12);
        assert!(c.probability(90.0) > 0.5 && c.probability(50.0) < 0.5);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, want) in [
            ("{", "not a calibration file"),
            (r#"{"method":"spline"}"#, "not a calibration file"),
            (r#"{"method":"isotonic","points":[]}"#, "at least one point"),
            (
                r#"{"method":"isotonic","points":[[80,0.6],[70,0.7]]}"#,
                "increasing composites",
            ),
            (r#"{"method":"isotonic","points":[[80,1.6]]}"#, "in [0, 1]"),
        ] {
            let err = Calibration::from_json(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn pava_pools_violators_into_a_monotone_fit() {
        // Hit rates by composite: 60 → 1/2, 70 → 0/2 (violates), 80 → 2/2. PAVA pools 60 and 70
        // into one block at composite 65 with rate 1/4.
        let outcomes = [
            (60.0, true),
            (60.0, false),
            (70.0, false),
            (70.0, false),
            (80.0, true),
            (80.0, true),
        ];
        let c = Calibration::fit_isotonic(&outcomes).unwrap();
        assert_eq!(
            c,
            Calibration::Isotonic {
                points: vec![(65.0, 0.25), (80.0, 1.0)]
            }
        );
        // The fitted file round-trips.
        assert_eq!(Calibration::from_json(&c.to_json()).unwrap(), c);
        assert!(Calibration::fit_isotonic(&[]).is_err());
    }
}
