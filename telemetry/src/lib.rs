//! Logs and traces for Postern's two programs, the gateway and the connector.
//!
//! Concepts:
//! - **Logs** go to stderr, as text for people or as JSON (one object per line) for
//!   log shippers. `POSTERN_LOG` filters them with `tracing`'s directives (`info`,
//!   `postern_gateway=debug,info`).
//! - **Traces** are exported over OTLP/gRPC only when an endpoint is configured
//!   (`--otlp-endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`). Without one,
//!   no exporter exists at all: nothing is sent, nothing is retried, nothing is logged
//!   about a missing collector.
//! - **One sync round is one trace.** The connector opens a root span per round; every
//!   message it sends on the link carries that span's W3C trace context
//!   (`traceparent`, `tracestate`) in `ConnectorMessage.trace_context`, and the gateway
//!   makes the spans of its work for that message children of it ([`inject`],
//!   [`continue_from`]). A collector thus shows the connector's back-end reads and
//!   writes and the gateway's lease, journal and packet handling in one tree.
//! - JSON log lines logged inside an exported span carry its `trace_id` and `span_id`.
//! - Only Postern's own spans are exported (targets starting with `postern`): the
//!   exporter's own gRPC client is never traced, so exporting cannot feed itself.

use std::collections::HashMap;
use std::fmt;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::{self, Format, Json};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?}: use text or json")),
        }
    }
}

/// A telemetry setup failure: the OTLP endpoint could not be used.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Installed logging and, when configured, tracing. Keep it alive for the life of the
/// program: dropping it flushes the spans not yet exported.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporting", &self.traces.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Installs the global subscriber: logs in `format`, and spans exported to
    /// `otlp_endpoint` (`http://collector:4317`) as `service` when one is given.
    /// Must run inside the Tokio runtime (the exporter's gRPC client needs it).
    pub fn init(
        service: &'static str,
        format: LogFormat,
        otlp_endpoint: Option<&str>,
    ) -> Result<Telemetry, Error> {
        let spec = std::env::var("POSTERN_LOG").unwrap_or_else(|_| "info".into());
        // imap-next opens a span at INFO for every read and every fragment: thousands
        // a second in a mail import, a tenth of the connector's CPU. Quiet unless a
        // directive names it.
        let spec = if spec.contains("imap_next") {
            spec
        } else {
            format!("{spec},imap_next=warn")
        };
        let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        let logs = match format {
            LogFormat::Text => logs.boxed(),
            LogFormat::Json => logs
                .json()
                .event_format(JsonWithTrace(tracing_subscriber::fmt::format().json()))
                .boxed(),
        };
        let endpoint = otlp_endpoint.map(str::trim).filter(|e| !e.is_empty());
        let traces = endpoint.map(|e| provider(service, e)).transpose()?;
        let otel = traces.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer(service))
                .with_filter(filter::filter_fn(|meta| {
                    meta.target().starts_with("postern")
                }))
        });
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(otel)
            .try_init()
            .map_err(|e| Error(format!("logging is already set up: {e}")))?;
        if let Some(e) = endpoint {
            tracing::info!(endpoint = %e, "exporting traces over OTLP");
        }
        Ok(Telemetry { traces })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.traces.take() {
            // Flushes what the batch holds; an unreachable collector only costs the
            // export timeout once, at exit.
            let _ = p.shutdown();
        }
    }
}

/// JSON log lines that carry, when traces are exported, the `trace_id` and `span_id`
/// of the span they were logged in: the way from a log line to its trace.
struct JsonWithTrace(Format<Json>);

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        // Asked before the line is formatted: formatting holds the span's data.
        let ids = current_ids();
        let mut line = String::new();
        self.0
            .format_event(ctx, format::Writer::new(&mut line), event)?;
        match (ids, line.strip_prefix('{')) {
            (Some((trace, span)), Some(rest)) => {
                write!(
                    writer,
                    r#"{{"trace_id":"{trace}","span_id":"{span}",{rest}"#
                )
            }
            _ => writer.write_str(&line),
        }
    }
}

/// The trace and span ids of the current span, when it is exported.
fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

fn provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, Error> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| Error(format!("OTLP endpoint {endpoint}: {e}")))?;
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The W3C trace context (`traceparent`, and `tracestate` when set) of `span`, to
/// send along with a message. Empty when traces are not exported.
pub fn inject(span: &tracing::Span) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier
}

/// [`inject`] for the span the caller is in.
pub fn inject_current() -> HashMap<String, String> {
    inject(&tracing::Span::current())
}

/// Makes `span` a child of the remote span described by `carrier` (what [`inject`]
/// produced on the other side). Without a valid `traceparent`, `span` stays where it
/// was; a malformed one is ignored, never an error: trace context is advisory.
pub fn continue_from(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if carrier.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(carrier);
    use opentelemetry::trace::TraceContextExt;
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_parse_and_bad_ones_are_named() {
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        let e = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(e.contains("yaml") && e.contains("text or json"), "{e}");
    }

    #[test]
    fn without_an_exporter_nothing_is_injected() {
        // No subscriber with an OpenTelemetry layer: spans have no trace context, so
        // messages carry none (and pay nothing for it).
        let span = tracing::info_span!("round");
        assert!(inject(&span).is_empty());
    }

    /// `traceparent` is `00-<trace id>-<span id>-<flags>`.
    fn ids(carrier: &HashMap<String, String>) -> (String, String) {
        let parts: Vec<&str> = carrier["traceparent"].split('-').collect();
        (parts[1].to_string(), parts[2].to_string())
    }

    #[test]
    fn context_crosses_from_one_span_to_another_as_parent() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let round = tracing::info_span!("round");
            let sent = round.in_scope(inject_current);
            assert_eq!(sent, inject(&round));
            let (trace, round_id) = ids(&sent);
            // On the other side: a fresh span continued from what was sent.
            let packet = tracing::info_span!(parent: None, "packet");
            continue_from(&packet, &sent);
            let (packet_trace, packet_id) = ids(&inject(&packet));
            assert_eq!(packet_trace, trace);
            assert_ne!(packet_id, round_id);
            // Without context, a span starts a trace of its own.
            let other = tracing::info_span!(parent: None, "other");
            continue_from(&other, &HashMap::new());
            assert_ne!(ids(&inject(&other)).0, trace);
        });
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        let span = tracing::info_span!("packet");
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_string(), "not-a-trace".to_string());
        continue_from(&span, &carrier);
        assert!(inject(&span).is_empty());
    }
}
