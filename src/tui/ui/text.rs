//! Text helpers: display widths, cutting a line to fit (never wrapping into a neighbour),
//! wrapping inside one pane, and the IST time formats of the screen.

use crate::token::expiry::to_ist;
use chrono::{DateTime, Utc};
use ratatui::text::{Line, Span};

/// Display width of `s` in terminal cells.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut b = [0u8; 4];
    width(c.encode_utf8(&mut b))
}

/// The longest prefix of `s` no wider than `max` cells.
fn prefix(s: &str, max: usize) -> (&str, usize) {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let w = char_width(c);
        if used + w > max {
            return (&s[..i], used);
        }
        used += w;
    }
    (s, used)
}

/// `spans` cut to `max` cells, ending with `ellipsis` when something was cut.
pub fn fit<'a>(spans: Vec<Span<'a>>, max: usize, ellipsis: &'static str) -> Line<'a> {
    let total: usize = spans.iter().map(Span::width).sum();
    if total <= max {
        return Line::from(spans);
    }
    let ell = width(ellipsis);
    if max < ell {
        return fit(spans, max, "");
    }
    let mut budget = max - ell;
    let mut out = Vec::new();
    let mut last_style = None;
    for span in spans {
        let w = span.width();
        if w <= budget {
            budget -= w;
            last_style = Some(span.style);
            out.push(span);
            continue;
        }
        let (head, _) = prefix(&span.content, budget);
        if !head.is_empty() {
            out.push(Span::styled(head.to_string(), span.style));
        }
        last_style = Some(span.style);
        break;
    }
    if !ellipsis.is_empty() {
        out.push(Span::styled(ellipsis, last_style.unwrap_or_default()));
    }
    Line::from(out)
}

/// `s` cut to `max` cells with `ellipsis`.
pub fn cut(s: &str, max: usize, ellipsis: &'static str) -> String {
    fit(vec![Span::raw(s)], max, ellipsis)
        .spans
        .iter()
        .map(|s| s.content.as_ref())
        .collect()
}

/// `s` wrapped at spaces into lines of at most `max` cells, at most `lines` of them; the last
/// one ends with `ellipsis` when text was left over. A word longer than a line is cut.
pub fn wrap_words(s: &str, max: usize, lines: usize, ellipsis: &'static str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if max == 0 || lines == 0 {
        return out;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        if out.len() + 1 == lines {
            // The last line takes everything left, cut.
            out.push(cut(&words[i..].join(" "), max, ellipsis));
            break;
        }
        let mut line = String::new();
        while i < words.len() {
            let candidate = if line.is_empty() {
                words[i].to_string()
            } else {
                format!("{line} {}", words[i])
            };
            if width(&candidate) <= max {
                line = candidate;
                i += 1;
            } else if line.is_empty() {
                // One word wider than the line: cut it.
                line = cut(words[i], max, ellipsis);
                i += 1;
                break;
            } else {
                break;
            }
        }
        out.push(line);
    }
    out
}

/// `s` wrapped at spaces into lines of at most `max` cells, as many as it takes. A word
/// longer than a line (a path, an address) is broken after one of [`BREAK_AFTER`] when it
/// can be, and hard only when a run without one is longer than the line. Nothing is lost.
pub fn wrap_all(s: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if max == 0 {
        return out;
    }
    let mut line = String::new();
    for word in s.split_whitespace() {
        let sep = usize::from(!line.is_empty());
        if width(&line) + sep + width(word) <= max {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        let mut rest = word;
        if width(word) > max && !line.is_empty() {
            // A long word starts beside the text before it when a sensible piece fits there.
            let room = max.saturating_sub(width(&line) + 1);
            if let Some(head) = soft_prefix(rest, room).filter(|h| width(h) >= MIN_PIECE) {
                line.push(' ');
                line.push_str(head);
                rest = &rest[head.len()..];
            }
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        while width(rest) > max {
            let head = soft_prefix(rest, max).unwrap_or_else(|| prefix(rest, max).0);
            if head.is_empty() {
                // Not even one character fits (a wide one in a one-cell line): give up on it.
                rest = "";
                break;
            }
            out.push(head.to_string());
            rest = &rest[head.len()..];
        }
        line = rest.to_string();
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// Where a path or an address may be broken: after these.
pub const BREAK_AFTER: [char; 7] = ['/', '?', '&', '=', '-', '_', '.'];

/// The least a piece of a long word is worth starting beside other text.
const MIN_PIECE: usize = 4;

/// The longest prefix of `s` no wider than `max` cells that ends just after one of
/// [`BREAK_AFTER`] and leaves something after it; `None` if there is none.
fn soft_prefix(s: &str, max: usize) -> Option<&str> {
    let (head, _) = prefix(s, max);
    let end = head
        .char_indices()
        .filter(|&(_, c)| BREAK_AFTER.contains(&c))
        .map(|(i, c)| i + c.len_utf8())
        .rfind(|&end| end < s.len())?;
    Some(&s[..end])
}

/// `s` with the home directory `home` written `~` where it starts a path (`/home/jane/x`
/// becomes `~/x`; `/home/janet` stays). Paths on the screen are shorter that way; the
/// caller passes the home the process sees.
pub fn tilde(s: &str, home: Option<&str>) -> String {
    let Some(home) = home
        .map(|h| h.trim_end_matches('/'))
        .filter(|h| !h.is_empty())
    else {
        return s.to_string();
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(home) {
        let after = &rest[i + home.len()..];
        let starts = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "(\"'=:".contains(c));
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| c == '/' || c.is_whitespace() || ")\"',;:".contains(c));
        out.push_str(&rest[..i]);
        if starts && ends {
            out.push('~');
        } else {
            out.push_str(home);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `s` cut into pieces of at most `max` cells (for addresses, which have no spaces), at
/// most `lines` of them; the last ends with `ellipsis` when text was left over.
pub fn wrap_chars(s: &str, max: usize, lines: usize, ellipsis: &'static str) -> Vec<String> {
    let mut out = Vec::new();
    if max == 0 || lines == 0 {
        return out;
    }
    let mut rest = s;
    while !rest.is_empty() {
        if out.len() + 1 == lines {
            out.push(cut(rest, max, ellipsis));
            break;
        }
        let (head, _) = prefix(rest, max);
        if head.is_empty() {
            break;
        }
        out.push(head.to_string());
        rest = &rest[head.len()..];
    }
    out
}

/// `14:02` (IST).
pub fn hm(t: DateTime<Utc>) -> String {
    to_ist(t).format("%H:%M").to_string()
}

/// `14:02:11` (IST).
pub fn hms(t: DateTime<Utc>) -> String {
    to_ist(t).format("%H:%M:%S").to_string()
}

/// `Fri 27 Nov 03:30` (IST).
pub fn day_hm(t: DateTime<Utc>) -> String {
    to_ist(t).format("%a %d %b %H:%M").to_string()
}

/// `Fri 27 Nov 03:30:00` (IST).
pub fn day_hms(t: DateTime<Utc>) -> String {
    to_ist(t).format("%a %d %b %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_ellipsis() {
        let line = fit(vec![Span::raw("hello "), Span::raw("world")], 8, "…");
        assert_eq!(line.to_string(), "hello w…");
        assert_eq!(line.width(), 8);
        let line = fit(vec![Span::raw("hello")], 5, "…");
        assert_eq!(line.to_string(), "hello");
        assert_eq!(fit(vec![Span::raw("hello")], 0, "…").width(), 0);
        assert_eq!(cut("🔑 key", 2, "…"), "…");
        assert_eq!(cut("🔑 key", 3, "…"), "🔑…");
    }

    #[test]
    fn words_wrap_and_cut() {
        assert_eq!(
            wrap_words("press l to log in again", 10, 3, "…"),
            vec!["press l to", "log in", "again"]
        );
        assert_eq!(
            wrap_words("press l to log in again", 10, 2, "…"),
            vec!["press l to", "log in ag…"]
        );
        assert_eq!(wrap_words("abcdefghijkl", 5, 2, "…"), vec!["abcd…"]);
        assert!(wrap_words("x", 0, 2, "…").is_empty());
    }

    #[test]
    fn all_wraps_without_loss() {
        assert_eq!(
            wrap_all("retrying in 4s now", 11),
            vec!["retrying in", "4s now"]
        );
        assert_eq!(
            wrap_all("ab abcdefgh c", 4),
            vec!["ab", "abcd", "efgh", "c"]
        );
        assert_eq!(wrap_all("", 4), vec![""]);
    }

    #[test]
    fn long_words_break_after_separators() {
        // A path breaks after a `/`, not mid-name; what comes before it stays on its line.
        assert_eq!(
            wrap_all("Watching /tmp/tokenwatch-demo-bZv3LS/upstox_token.json", 30),
            vec!["Watching /tmp/tokenwatch-demo-", "bZv3LS/upstox_token.json"]
        );
        assert_eq!(
            wrap_all("Wrote /home/jane/algo/config/upstox_token.json now", 20),
            vec!["Wrote /home/jane/", "algo/config/upstox_", "token.json now"]
        );
        // An address breaks after `?`, `&` and `=`.
        assert_eq!(
            wrap_all("https://x.example/a?response_type=code&client_id=3f9c", 20),
            vec![
                "https://x.example/a?",
                "response_type=code&",
                "client_id=3f9c"
            ]
        );
        // A run with no separator longer than the line still breaks hard.
        assert_eq!(
            wrap_all("key abcdefghijklmnop", 8),
            vec!["key", "abcdefgh", "ijklmnop"]
        );
        // Every piece fits, and nothing is lost.
        let s = "open https://api.upstox.com/v2/login/authorization/dialog?response_type=code&client_id=3f9c2a71-5b8e-4d0a";
        for max in 1..60 {
            let lines = wrap_all(s, max);
            assert!(lines.iter().all(|l| width(l) <= max), "{max}: {lines:?}");
            assert_eq!(lines.concat().replace(' ', ""), s.replace(' ', ""), "{max}");
        }
    }

    #[test]
    fn home_becomes_tilde() {
        let home = Some("/home/jane");
        assert_eq!(
            tilde("/home/jane/algo/upstox_token.json", home),
            "~/algo/upstox_token.json"
        );
        assert_eq!(
            tilde("Watching /home/jane/a.json and /home/jane/b.json", home),
            "Watching ~/a.json and ~/b.json"
        );
        assert_eq!(tilde("/home/janet/a.json", home), "/home/janet/a.json");
        assert_eq!(
            tilde("/srv/home/jane/a.json", home),
            "/srv/home/jane/a.json"
        );
        assert_eq!(tilde("/home/jane/a.json", Some("/home/jane/")), "~/a.json");
        assert_eq!(tilde("/home/jane/a.json", None), "/home/jane/a.json");
        assert_eq!(tilde("/a.json", Some("/")), "/a.json");
    }

    #[test]
    fn chars_wrap() {
        assert_eq!(wrap_chars("abcdefgh", 3, 5, "…"), vec!["abc", "def", "gh"]);
        assert_eq!(wrap_chars("abcdefgh", 3, 2, "…"), vec!["abc", "de…"]);
    }
}
