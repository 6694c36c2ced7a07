//! Log capture: what tokenwatch logs through `tracing`, as the text `tracing_subscriber::fmt`
//! writes (no colours) and as the level and message of each of tokenwatch's own events.

use std::sync::{Arc, Mutex, OnceLock};
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Captured logs; clones share them.
#[derive(Clone, Default)]
pub struct Logs {
    text: Arc<Mutex<Vec<u8>>>,
    events: Arc<Mutex<Vec<(Level, String)>>>,
}

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.text.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Every line logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.text.lock().unwrap().clone()).expect("log text is UTF-8")
    }

    /// How many of tokenwatch's events were recorded so far.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// The last warning or error tokenwatch logged since event `from`, as `LEVEL message`.
    pub fn last_problem(&self, from: usize) -> Option<String> {
        self.events.lock().unwrap()[from..]
            .iter()
            .rev()
            .find(|(level, _)| *level <= Level::WARN)
            .map(|(level, msg)| format!("{level} {msg}"))
    }

    /// A subscriber that writes here: the text of everything `filter` (an `EnvFilter`
    /// directive: `debug`, `tokenwatch=trace`) lets through, and tokenwatch's events at
    /// debug level and up.
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        let text = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(EnvFilter::new(filter));
        let ours = Targets::new().with_target("tokenwatch", Level::DEBUG);
        tracing_subscriber::registry()
            .with(text)
            .with(Record(self.clone()).with_filter(ours))
    }
}

/// Records the level and `message` of each event.
struct Record(Logs);

impl<S: tracing::Subscriber> Layer<S> for Record {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        let level = *event.metadata().level();
        self.0.events.lock().unwrap().push((level, m.0));
    }
}

/// Everything logged on this thread (a current-thread runtime runs its tasks here) while the
/// capture lives, debug level and up.
pub struct LogCapture {
    logs: Logs,
    _guard: tracing::subscriber::DefaultGuard,
}

impl std::ops::Deref for LogCapture {
    type Target = Logs;
    fn deref(&self) -> &Logs {
        &self.logs
    }
}

/// Capture this thread's logs, debug level and up.
pub fn capture_logs() -> LogCapture {
    let logs = Logs::default();
    let guard = tracing::subscriber::set_default(logs.subscriber("debug"));
    LogCapture {
        logs,
        _guard: guard,
    }
}

/// The logs of every thread, tokenwatch's at trace level: one global subscriber, installed by
/// the first call. For tests on multi-thread runtimes; they all share it.
pub fn global_logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing::subscriber::set_global_default(logs.subscriber("tokenwatch=trace"))
            .expect("one global subscriber");
        logs
    })
}
