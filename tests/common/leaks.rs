//! Leak scanning: no token, piece of a token or secret in anything a test captured.

use super::http::{Answer, Resp};
use super::sandbox::Out;
use std::collections::BTreeMap;

/// How long a piece of a token must be to count as a leak.
pub const PIECE: usize = 20;

/// What was captured, and what must not be in any of it.
#[derive(Default)]
pub struct Leaks {
    texts: Vec<(String, String)>,
    /// needle → what it is
    needles: BTreeMap<String, String>,
}

impl Leaks {
    /// Leaks holding what these processes printed.
    pub fn of_outs(outs: &[(&str, &Out)]) -> Leaks {
        let mut leaks = Leaks::default();
        for (label, out) in outs {
            leaks.out(label, out);
        }
        leaks
    }

    pub fn text(&mut self, label: impl Into<String>, text: impl Into<String>) {
        self.texts.push((label.into(), text.into()));
    }

    /// A finished process's stdout and stderr.
    pub fn out(&mut self, label: &str, out: &Out) {
        self.text(format!("{label}: stdout"), out.stdout.clone());
        self.text(format!("{label}: stderr"), out.stderr.clone());
    }

    /// A raw HTTP answer, head and body.
    pub fn answer(&mut self, label: &str, a: &Answer) {
        self.text(format!("{label}: HTTP answer"), a.all());
    }

    /// An HTTP answer: its body and headers.
    pub fn page(&mut self, label: &str, page: &Resp) {
        self.text(format!("{label}: body"), page.body.clone());
        self.text(format!("{label}: headers"), format!("{:?}", page.headers));
    }

    pub fn secret(&mut self, label: &str, value: &str) {
        assert!(!value.is_empty(), "empty needle {label}");
        self.needles.insert(value.to_owned(), label.to_owned());
    }

    /// A token: whole, its signature (the third dot-separated part), and every
    /// [`PIECE`]-character piece.
    pub fn token(&mut self, label: &str, token: &str) {
        self.secret(label, token);
        if let Some(sig) = token.split('.').nth(2).filter(|s| !s.is_empty()) {
            self.secret(&format!("{label} signature"), sig);
        }
        let chars: Vec<char> = token.chars().collect();
        for (i, w) in chars.windows(PIECE).enumerate() {
            let piece: String = w.iter().collect();
            self.needles
                .entry(piece)
                .or_insert_with(|| format!("{label}[{i}..{}]", i + PIECE));
        }
    }

    pub fn assert_clean(&self) {
        eprintln!(
            "leak scan: {} texts, {} bytes, {} needles",
            self.texts.len(),
            self.texts.iter().map(|(_, t)| t.len()).sum::<usize>(),
            self.needles.len()
        );
        let mut found = Vec::new();
        for (where_, text) in &self.texts {
            for (needle, what) in &self.needles {
                if let Some(at) = text.find(needle.as_str()) {
                    let from = text[..at]
                        .char_indices()
                        .rev()
                        .nth(60)
                        .map_or(0, |(i, _)| i);
                    found.push(format!(
                        "{what} in {where_} at byte {at}: …{}",
                        &text[from..at]
                    ));
                }
            }
        }
        assert!(
            found.is_empty(),
            "secrets leaked ({} hits): {:#?}",
            found.len(),
            found.iter().take(20).collect::<Vec<_>>()
        );
    }
}

/// A JWT shown in full in `text` — three base64url parts joined by dots, longer than 40
/// characters — or the start of one beyond what masking keeps (`eyJ0…a1B2`).
pub fn full_token_in(text: &str) -> Option<String> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=');
    for line in text.lines() {
        for run in line.split(|c: char| !token_char(c)) {
            let parts = run.split('.').filter(|p| !p.is_empty()).count();
            if parts >= 3 && run.len() > 40 {
                return Some(run.to_string());
            }
            // A token cut by a pane's border still starts like one: `eyJ` and a long tail.
            if let Some(at) = run.find("eyJ")
                && run[at..].len() > 12
            {
                return Some(run.to_string());
            }
        }
    }
    None
}

/// Panics if `text` shows a token in full (see [`full_token_in`]).
pub fn assert_no_full_token(text: &str) {
    if let Some(leak) = full_token_in(text) {
        panic!("a token is on screen in full ({leak:?}):\n{text}");
    }
}
