//! One full frame of the dashboard at 200×60 and at 100×30: layout, text, gauge and the
//! notification stack, drawn into ratatui's TestBackend (no terminal I/O).
//!
//! Run: `cargo bench --bench render`.

use chrono::{Duration as Span, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;
use std::time::Duration;
use tokenwatch::config::Strategy;
use tokenwatch::schedule::{Renewal, Verdict};
use tokenwatch::token::{ExpirySource, TokenState};
use tokenwatch::tui::app::App;
use tokenwatch::tui::ui;
use tokenwatch::worker::{Event, Level, Notification, Snapshot, TokenInfo, Topic};

fn frame(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 9, 2, 5).unwrap();
    let snap = Snapshot {
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
            life_fraction: 0.9,
        }),
        verdict: Verdict::Valid(now),
        last_validation_at: Some(now),
        last_validation_result: Some("valid".into()),
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
                at: now,
            }),
            now,
        );
    }
    for (w, h) in [(200u16, 60u16), (100, 30)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        c.bench_function(&format!("full frame {w}x{h}"), |b| {
            b.iter(|| {
                terminal.draw(|f| ui::render(&app, now, f)).unwrap();
            });
        });
    }
}

criterion_group!(benches, frame);
criterion_main!(benches);
