//! The account's history: appending one record (open, lock, write, as the worker does for
//! every event), and reading 14 days back into summaries and timelines (what `tokenwatch
//! history` and the dashboard's `h`, every 10 s while open, do), for a busy history: 300
//! records a day.
//!
//! Run: `cargo bench --bench history`.

use chrono::{Duration as Span, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;
use tokenwatch::calendar::Calendar;
use tokenwatch::history::{self, Event, Recorder, Renewal};
use tokenwatch::token::TokenState;

fn history(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("upstox_token.json");
    let mut rec = Recorder::for_token(&token, history::DEFAULT_KEEP);
    let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    // 14 days of 300 records: states, renewals, alerts and hourly calls.
    for day in 0..14 {
        let base = start + Span::days(day);
        for i in 0..300 {
            let at = base + Span::seconds(i * 280);
            let event = match i % 4 {
                0 => Event::State {
                    state: [
                        TokenState::Healthy,
                        TokenState::Warning,
                        TokenState::Expired,
                    ][(i % 3) as usize],
                    from: Some(TokenState::Healthy),
                    expires_at: Some(at + Span::hours(5)),
                },
                1 => Event::Renewal(Renewal::ended(
                    "browser",
                    true,
                    Duration::from_secs(40),
                    Ok(at + Span::hours(18)),
                )),
                2 => Event::Alert {
                    alert: "warning".into(),
                    level: "warning".into(),
                },
                _ => Event::Calls {
                    hour: at,
                    calls: 4,
                    rate_limited: 0,
                },
            };
            rec.record(at, event);
        }
    }
    let (first, last) = (
        history::ist_day(start),
        history::ist_day(start + Span::days(13)),
    );
    let now = start + Span::days(13) + Span::hours(20);
    let calendar = Calendar::nse();
    c.bench_function("history: read 14 days of 300 records into days", |b| {
        b.iter(|| {
            let loaded = history::load(rec.dir(), first, last);
            history::days::days(&loaded, first, last, &calendar, now)
        })
    });
    let at = now;
    let today = rec
        .dir()
        .join(format!("{}.jsonl", history::ist_day(at).format("%Y-%m-%d")));
    c.bench_function("history: append one record", |b| {
        b.iter_batched(
            || {
                // Keep the day's file far from its cap, so every append is a real one.
                if std::fs::metadata(&today).is_ok_and(|m| m.len() > 1 << 20) {
                    std::fs::write(&today, b"").unwrap();
                }
            },
            |()| {
                rec.record(
                    at,
                    Event::Alert {
                        alert: "warning".into(),
                        level: "warning".into(),
                    },
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, history);
criterion_main!(benches);
