//! `optionflow quant`: the calculator, checked against textbook values and for clear errors.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_optionflow");

fn quant(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(BIN).arg("quant").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// The worked example in Hull, Options, Futures, and Other Derivatives (BSM chapter):
/// S=42, K=40, r=10%, σ=20%, T=0.5 → call 4.76, put 0.81.
#[test]
fn european_prices_match_hull_and_iv_inverts_them() {
    let common = [
        "--spot", "42", "--strike", "40", "--years", "0.5", "--rate", "0.1",
    ];
    let (ok, call, err) = quant(
        &[
            &["price", "--right", "call", "--vol", "0.2", "--json"],
            &common[..],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!((num(&call, "price") - 4.76).abs() < 0.005, "{call}");
    for k in [
        "delta", "gamma", "vega", "theta", "rho", "vanna", "charm", "vomma",
    ] {
        assert!(num(&call, k).is_finite());
    }
    // Raw units: vega per 1.00 of vol (S·φ(d1)·√T ≈ 8.8 here, not 0.088).
    assert!(num(&call, "vega") > 1.0, "{call}");
    let (_, put, _) = quant(
        &[
            &["price", "--right", "put", "--vol", "0.2", "--json"],
            &common[..],
        ]
        .concat(),
    );
    assert!((num(&put, "price") - 0.81).abs() < 0.005, "{put}");
    let price = format!("{}", num(&call, "price"));
    let (ok, iv, err) = quant(
        &[
            &["iv", "--right", "call", "--price", &price, "--json"],
            &common[..],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!((num(&iv, "iv") - 0.2).abs() < 1e-10, "{iv}");
}

#[test]
fn american_puts_are_worth_at_least_european_and_iv_round_trips() {
    let common = [
        "--right", "put", "--spot", "100", "--strike", "110", "--years", "1", "--rate", "0.08",
    ];
    let (_, eu, _) = quant(&[&["price", "--vol", "0.3", "--json"], &common[..]].concat());
    let (ok, am, err) = quant(
        &[
            &["price", "--vol", "0.3", "--style", "american", "--json"],
            &common[..],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!(
        num(&am, "price") > num(&eu, "price") + 0.1,
        "early exercise premium: {am} vs {eu}"
    );
    let price = format!("{}", num(&am, "price"));
    let (ok, iv, err) = quant(
        &[
            &["iv", "--price", &price, "--style", "american", "--json"],
            &common[..],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!((num(&iv, "iv") - 0.3).abs() < 1e-6, "{iv}");
}

#[test]
fn bad_arguments_exit_non_zero_with_a_clear_message() {
    let base = ["--right", "call", "--spot", "100", "--strike", "95"];
    let cases: [(&[&str], &str); 4] = [
        (&["price", "--years", "0.5", "--vol", "-0.2"], "--vol"),
        (&["price", "--years", "0", "--vol", "0.2"], "--years"),
        (
            &["iv", "--years", "0.5", "--price", "3.0"],
            "below intrinsic",
        ),
        (&["iv", "--years", "0.5", "--price", "150"], "above"),
    ];
    for (args, want) in cases {
        let (ok, _, err) = quant(&[args, &base[..]].concat());
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let help = Command::new(BIN)
        .args(["quant", "price", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("per 1.00 change"));
}
