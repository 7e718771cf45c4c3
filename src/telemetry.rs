//! Logging setup and the request id that follows a request through every log line and error.

use std::fmt::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

tokio::task_local! {
    /// The current request's id, set by the request middleware for the request's whole task.
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Runs `f` with `id` as the current request id (for responses rendered outside the request's
/// task).
pub fn with_request_id_sync<R>(id: String, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}

/// Installs the global subscriber; `RUST_LOG` filters (default `info`). Every line written
/// inside a request carries that request's id (from the request's task, so no span is opened
/// per request).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
        LogFormat::Pretty => builder
            .event_format(Tagged(fmt::format().compact()))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// One JSON object per line: `timestamp`, `level`, `target`, `request_id` (inside a request),
/// then the event's fields (`message` among them), each under its own name. Written straight
/// to the line: tracing-subscriber's own JSON formatter builds a serde map of every line and
/// re-parses each span's fields, a sixth of a point GET's instructions (bench/RESULTS.md).
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\",\"target\":", meta.level())?;
        json_str(&mut writer, meta.target())?;
        REQUEST_ID
            .try_with(|id| {
                writer.write_str(",\"request_id\":")?;
                json_str(&mut writer, id)
            })
            .unwrap_or(Ok(()))?;
        let mut fields = JsonFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`: numbers and booleans as JSON, the rest as text.
struct JsonFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: std::fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                json_str(self.writer, field.name())?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |w| write!(w, "{value}"));
        } else {
            self.field(field, |w| w.write_str("null"));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| json_str(w, value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn json_str(writer: &mut impl Write, text: &str) -> std::fmt::Result {
    writer.write_char('"')?;
    Escaped(&mut *writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what passes through it for the inside of a JSON string (RFC 8259 §7).
struct Escaped<'w, W: Write + ?Sized>(&'w mut W);

impl<W: Write + ?Sized> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut clean = 0;
        for (at, byte) in text.bytes().enumerate() {
            let short = match byte {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0..=0x1f => None,
                _ => continue,
            };
            self.0.write_str(&text[clean..at])?;
            match short {
                Some(escape) => self.0.write_str(escape)?,
                None => write!(self.0, "\\u{byte:04x}")?,
            }
            clean = at + 1;
        }
        self.0.write_str(&text[clean..])
    }
}

/// The pretty format, led by the request's id inside a request.
struct Tagged<F>(F);

impl<S, N, F> FormatEvent<S, N> for Tagged<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        REQUEST_ID
            .try_with(|id| write!(writer, "[{id}] "))
            .unwrap_or(Ok(()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        json_str(&mut out, text).expect("written");
        out
    }

    /// The lines a subscriber of `format` writes while `log` runs.
    fn written<F>(format: F, log: impl FnOnce()) -> Vec<String>
    where
        F: FormatEvent<tracing_subscriber::Registry, fmt::format::DefaultFields>
            + Send
            + Sync
            + 'static,
    {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Shared::default();
        let sink = buffer.clone();
        let subscriber = fmt()
            .event_format(format)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes)
            .expect("text")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_line_written_inside_a_request_carries_its_id_in_both_formats() {
        let log = || {
            REQUEST_ID.sync_scope("req-1".into(), || tracing::info!(n = 1, "inside"));
            tracing::info!("outside");
        };
        let pretty = written(Tagged(fmt::format().compact()), log);
        assert!(pretty[0].starts_with("[req-1] ") && pretty[0].contains("inside"));
        assert!(!pretty[1].starts_with('[') && pretty[1].contains("outside"));
        let json: Vec<serde_json::Value> = written(JsonLine, log)
            .iter()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(json[0]["request_id"], "req-1");
        assert_eq!(json[0]["message"], "inside");
        assert_eq!(json[0]["n"], 1);
        assert!(json[1].get("request_id").is_none());
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(500))]

        /// Whatever a field holds, its line's text is the JSON string of it.
        #[test]
        fn text_is_written_as_the_json_string_of_it(text in "\\PC*|[\"\\\\\\x00-\\x1f]{0,8}") {
            let written = escaped(&text);
            let read: String = serde_json::from_str(&written).expect("valid JSON");
            proptest::prop_assert_eq!(read, text);
        }
    }
}
