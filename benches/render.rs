//! One full frame of the dashboard at 200×60 and at 100×30: layout, text, gauge, the
//! notification stack and a full log pane, drawn into ratatui's TestBackend (no terminal
//! I/O), including ratatui's diff against the previous frame; and the once-a-second redraw
//! for the countdown, which leaves the unchanged log pane to the terminal.
//!
//! Run: `cargo bench --bench render`.

use chrono::{Duration as Span, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;
use std::time::Duration;
use tokenwatch::config::Strategy;
use tokenwatch::messages::{Event, Level, Notification, Snapshot, TokenInfo, Topic};
use tokenwatch::schedule::Renewal;
use tokenwatch::token::verdict::{CheckResult, StoredVerdict};
use tokenwatch::token::{ExpirySource, TokenState};
use tokenwatch::tui::app::App;
use tokenwatch::tui::ui;

fn frame(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 9, 2, 5).unwrap();
    let snap = Snapshot {
        broker: Default::default(),
        account: "default".into(),
        at: now,
        state: TokenState::Healthy,
        token: Some(TokenInfo {
            masked: "eyJ0…a1B2".into(),
            user_id: Some("AB1234".into()),
            user_name: Some("Jane Doe".into()),
            issued_at: Some(now - Span::hours(1)),
            expires_at: now + Span::hours(15),
            expiry_source: ExpirySource::JwtExp,
            obtained_via: Some("oauth".into()),
            version: "3f1c0a9e5b7d2e44".into(),
        }),
        answer: Some(StoredVerdict {
            at: now,
            result: CheckResult::Valid,
            code: None,
        }),
        last_check_at: Some(now),
        last_check_result: Some("valid".into()),
        next_check_at: Some(now + Span::minutes(30)),
        renewal: Renewal::NotDue {
            due_at: now + Span::hours(14),
        },
        busy: false,
        strategy: Strategy::Browser,
        token_file: PathBuf::from("/home/trader/engine/config/upstox_token.json"),
        backups: vec![],
        token_error: None,
        login: None,
        renewals: Default::default(),
        file_writes: Default::default(),
    };
    let mut app = App::new(vec![snap], Duration::from_secs(10), true, true);
    for (level, topic, title) in [
        (Level::Info, Topic::Login, "Logged in"),
        (Level::Warning, Topic::Renewal, "Approve the token request"),
        (
            Level::Critical,
            Topic::Deadline,
            "No valid token before 09:00 IST",
        ),
    ] {
        app.on_event(
            Event::Notice(Notification {
                account: "default".into(),
                level,
                topic,
                title: title.into(),
                message: "press l to log in".into(),
                elsewhere: "log in: tokenwatch login".into(),
                at: now,
            }),
            now,
        );
    }
    // A full log pane, as after a day of checks: the widget lays out the lines it shows.
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..100 {
                tracing::info!(target: "tokenwatch::worker", account = "default", "Token valid, expires in {}.2 hours", 15 - i % 15);
                if i % 10 == 0 {
                    tracing::warn!(target: "tokenwatch::worker", account = "default", "CheckOutcome attempt 1/3 failed: Upstox server error (HTTP 500, UDAPI100500: Something went wrong); retrying in 2s");
                }
            }
        });
        tui_logger::move_events();
    }
    for (w, h) in [(200u16, 60u16), (100, 30)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        // Every frame lays the log pane out again, as when a log line arrives.
        c.bench_function(&format!("full frame {w}x{h}"), |b| {
            b.iter(|| {
                app.log_events += 1;
                terminal.draw(|f| ui::render(&app, now, f)).unwrap();
            });
        });
        // The once-a-second redraw for the countdown: the log pane is unchanged and left as
        // the terminal shows it.
        let mut shown = ui::Shown::default();
        c.bench_function(&format!("countdown tick {w}x{h}"), |b| {
            b.iter(|| {
                terminal
                    .draw(|f| shown = ui::render_frame(&app, now, f, Default::default(), shown))
                    .unwrap();
            });
        });
    }
}

criterion_group!(benches, frame);
criterion_main!(benches);
