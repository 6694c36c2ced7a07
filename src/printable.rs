//! Text from outside (a token file, an API answer, a lock file, a callback request) on its way
//! to a terminal, a log line or an alert: control characters are taken out where the text comes
//! in, so an escape sequence in a user name can never retitle, clear or recolour the screen.

/// `text` without control characters (C0, DEL and C1, which includes ESC and the CSI
/// introducer); tabs and line breaks become one space, so the text stays on one line.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// [`printable`] for an optional field.
pub fn printable_opt(text: Option<String>) -> Option<String> {
    text.map(|t| printable(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_go() {
        assert_eq!(printable("Ann\x1b]0;pwned\x07 Lee"), "Ann]0;pwned Lee");
        assert_eq!(printable("a\x1b[2Jb\u{9b}31mc\x7f"), "a[2Jb31mc");
        assert_eq!(printable("one\ntwo\r\tthree"), "one two  three");
        assert_eq!(printable("Ānanya Rao"), "Ānanya Rao");
        assert_eq!(printable_opt(Some("x\x00y".into())), Some("xy".into()));
    }
}
