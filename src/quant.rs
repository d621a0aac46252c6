//! `optionflow quant`: the pricing engine as a calculator users can script.

use anyhow::{bail, Result};
use optionflow_operators::pricing::{implied_vol_for, price_and_greeks, ExerciseStyle, Right};

/// Units, printed by `--help`: the same raw units as the events and the APIs.
const UNITS: &str = "Units: rate, dividend and vol as decimals (0.05 = 5%); years in years \
(0.5 = six months); vega and rho per 1.00 change of vol or rate (not per 1%); theta and charm \
per year (divide by 365 for per day); vanna per 1.00 of vol; vomma per 1.00 of vol, squared.";

#[derive(clap::Subcommand)]
pub(crate) enum QuantCommand {
    /// Price and greeks of one option.
    #[command(after_help = UNITS)]
    Price(PriceArgs),
    /// Implied volatility of one option price.
    #[command(after_help = UNITS)]
    Iv(IvArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum RightArg {
    Call,
    Put,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum StyleArg {
    European,
    American,
}

/// The contract, shared by both commands.
#[derive(clap::Args)]
pub(crate) struct ContractArgs {
    /// call or put.
    #[arg(long)]
    right: RightArg,
    /// Underlying price.
    #[arg(long)]
    spot: f64,
    /// Strike.
    #[arg(long)]
    strike: f64,
    /// Time to expiry in years (> 0).
    #[arg(long)]
    years: f64,
    /// Continuously compounded risk-free rate (0.05 = 5%).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    rate: f64,
    /// Continuous dividend yield (0.02 = 2%).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    dividend: f64,
    /// Exercise style: european (Black-Scholes-Merton) or american (Bjerksund-Stensland 2002).
    #[arg(long, default_value = "european")]
    style: StyleArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub(crate) struct PriceArgs {
    #[command(flatten)]
    contract: ContractArgs,
    /// Volatility (0.25 = 25%), > 0.
    #[arg(long)]
    vol: f64,
}

#[derive(clap::Args)]
pub(crate) struct IvArgs {
    #[command(flatten)]
    contract: ContractArgs,
    /// Option price to solve for.
    #[arg(long)]
    price: f64,
}

impl ContractArgs {
    fn check(&self) -> Result<(Right, ExerciseStyle)> {
        let mut problems = Vec::new();
        for (name, v) in [("--spot", self.spot), ("--strike", self.strike)] {
            if !(v.is_finite() && v > 0.0) {
                problems.push(format!("{name} {v}: must be a positive number"));
            }
        }
        if !(self.years.is_finite() && self.years > 0.0) {
            problems.push(format!(
                "--years {}: must be positive (time to expiry in years)",
                self.years
            ));
        }
        for (name, v) in [("--rate", self.rate), ("--dividend", self.dividend)] {
            if !v.is_finite() {
                problems.push(format!("{name} {v}: must be a finite number"));
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        let right = match self.right {
            RightArg::Call => Right::Call,
            RightArg::Put => Right::Put,
        };
        let style = match self.style {
            StyleArg::European => ExerciseStyle::European,
            StyleArg::American => ExerciseStyle::American,
        };
        Ok((right, style))
    }
}

/// Runs a `quant` subcommand, printing its result.
pub(crate) fn run(cmd: QuantCommand) -> Result<()> {
    match cmd {
        QuantCommand::Price(a) => {
            let (right, style) = a.contract.check()?;
            if !(a.vol.is_finite() && a.vol > 0.0) {
                bail!("--vol {}: must be a positive number (0.25 = 25%)", a.vol);
            }
            let c = &a.contract;
            let g = price_and_greeks(
                style, right, c.spot, c.strike, c.years, c.rate, c.dividend, a.vol,
            )
            .map_err(|e| anyhow::anyhow!("cannot price: {e}"))?;
            let fields = [
                ("price", g.price),
                ("delta", g.delta),
                ("gamma", g.gamma),
                ("vega", g.vega),
                ("theta", g.theta),
                ("rho", g.rho),
                ("vanna", g.vanna),
                ("charm", g.charm),
                ("vomma", g.vomma),
            ];
            if fields.iter().any(|(_, v)| !v.is_finite()) {
                bail!("the model gave no finite value for these inputs: {fields:?}");
            }
            print(c.json, &fields);
        }
        QuantCommand::Iv(a) => {
            let (right, style) = a.contract.check()?;
            if !(a.price.is_finite() && a.price > 0.0) {
                bail!("--price {}: must be a positive number", a.price);
            }
            let c = &a.contract;
            let iv = implied_vol_for(
                style, right, c.spot, c.strike, c.years, c.rate, c.dividend, a.price,
            )
            .map_err(|e| anyhow::anyhow!("no implied volatility: {e}"))?;
            print(c.json, &[("iv", iv)]);
        }
    }
    Ok(())
}

fn print(json: bool, fields: &[(&str, f64)]) {
    if json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (k, v) in fields {
            println!("{k:<6} {v:>14.8}");
        }
    }
}
