//! The Grafana dashboard in `deploy/` stays in step with the code: it is valid JSON, every panel
//! queries Prometheus, and every metric it names is one the pipeline emits.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `optionflow_…` metric name registered with the `metrics` macros under `dir`.
fn emitted(dir: &Path, names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            emitted(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                for part in text.split(macro_name).skip(1) {
                    let name: String = part
                        .trim_start()
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name.starts_with("optionflow_") {
                        names.insert(name);
                    }
                }
            }
        }
    }
}

/// The metric names in a PromQL expression.
fn queried(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("optionflow_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_the_pipeline_emits() {
    let text =
        std::fs::read_to_string(root().join("deploy/grafana/dashboards/optionflow.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut names = BTreeSet::new();
    emitted(&root().join("pipeline/src"), &mut names);
    assert!(
        names.contains("optionflow_stage_events_in_total"),
        "{names:?}"
    );
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "prometheus", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            for m in queried(t["expr"].as_str().unwrap()) {
                assert!(
                    names.contains(&m),
                    "panel {} queries {m}, which nothing emits",
                    p["title"]
                );
                used.insert(m);
            }
        }
    }
    // The list: events/s, latency, lag, queue depth, rejects, vendors, alerts, hit rates.
    for m in [
        "optionflow_stage_events_out_total",
        "optionflow_stage_batch_seconds",
        "optionflow_stage_watermark_seconds",
        "optionflow_stage_queue_depth",
        "optionflow_rejects_total",
        "optionflow_vendor_errors_total",
        "optionflow_coverage_refreshed_underlyings",
        "optionflow_alerts_delivered_total",
        "optionflow_signal_hit_rate",
    ] {
        assert!(used.contains(m), "no panel shows {m}");
    }
    let datasource = std::fs::read_to_string(
        root().join("deploy/grafana/provisioning/datasources/prometheus.yml"),
    )
    .unwrap();
    assert!(datasource.contains("uid: prometheus"));
}
