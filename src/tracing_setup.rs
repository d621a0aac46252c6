//! Logging and tracing for every command: human-readable logs on stderr (`RUST_LOG`, default
//! `info`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://127.0.0.1:4318`), the
//! same spans exported to that OTLP/HTTP collector as protobuf (`OTEL_SERVICE_NAME`, default
//! `optionflow`). The stages open one span per batch (`stage.batch`, with the stage's name and
//! the batch's size).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;

/// Keeps the exporter alive; dropping it flushes the spans not yet sent.
pub(crate) struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("warning: flushing traces to the OTLP collector failed: {e}");
            }
        }
    }
}

/// The OTLP exporter, when an endpoint is configured and it can be built.
fn otlp_provider() -> Option<SdkTracerProvider> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()?;
    if endpoint.trim().is_empty() {
        return None;
    }
    // The HTTP exporter appends /v1/traces to the environment's endpoint itself.
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warning: no trace export to {endpoint}: {e}");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "optionflow".into());
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build(),
    )
}

/// Installs the subscriber for the process.
pub(crate) fn init() -> Tracing {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let provider = otlp_provider();
    // Each layer has its own filter: RUST_LOG=warn quiets the logs, not the exported spans.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("optionflow"))
            .with_filter(LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(otel)
        .init();
    Tracing { provider }
}
