//! The generated parts of the docs: a test renders its cases (or a screen) as a Markdown
//! block and [`sync_block`] compares it with the block between `<!-- NAME:start -->` and
//! `<!-- NAME:end -->` in a doc (or rewrites it with `UPDATE_RELIABILITY=1`).
//! [`sync_doc_block`] is that for `docs/reliability.md`; the README's screens use
//! [`sync_block`] directly. Every test file that owns a block uses this one mechanism.

use std::path::Path;
use std::sync::Mutex;

/// The reliability doc.
pub const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md");

/// The README.
pub const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// Tests in one binary that edit the same doc: one at a time.
static DOC_LOCK: Mutex<()> = Mutex::new(());

pub fn updating() -> bool {
    std::env::var("UPDATE_RELIABILITY").is_ok_and(|v| v == "1")
}

/// The first cell of a table row and the second: what a skipped row is known by.
pub fn row_key(line: &str) -> Option<String> {
    let cells: Vec<&str> = line.split(" | ").collect();
    (line.starts_with("| ") && cells.len() > 2).then(|| format!("{} | {}", cells[0], cells[1]))
}

/// Compare the `name` block of `docs/reliability.md` with `generated`: [`sync_block`] on
/// that doc.
pub fn sync_doc_block(name: &str, generated: &str, skipped: &[String]) -> Result<(), String> {
    sync_block(Path::new(DOC), name, generated, skipped)
}

/// Compare the `name` block of `doc` with `generated` (or write it, with
/// `UPDATE_RELIABILITY=1`). Rows whose key is in `skipped` were not produced on this machine
/// and are left out of the comparison.
pub fn sync_block(
    doc: &Path,
    name: &str,
    generated: &str,
    skipped: &[String],
) -> Result<(), String> {
    let _one = DOC_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let shown = doc
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .map_or(doc, |p| p.strip_prefix("/").unwrap_or(p))
        .display()
        .to_string();
    let text = std::fs::read_to_string(doc).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let (head, rest) = text
        .split_once(&start)
        .ok_or_else(|| format!("{shown} has no {start} marker"))?;
    let (current, tail) = rest
        .split_once(&end)
        .ok_or_else(|| format!("{shown} has no {end} marker"))?;
    if updating() {
        if !skipped.is_empty() {
            return Err(format!(
                "not regenerating the {name} block: these cases were skipped here: {skipped:?}"
            ));
        }
        let new = format!("{head}{start}\n{}\n{end}{tail}", generated.trim_end());
        if new != text {
            std::fs::write(doc, new).map_err(|e| format!("cannot write {shown}: {e}"))?;
            eprintln!("rewrote the {name} block of {shown}");
        }
        return Ok(());
    }
    let keep = |l: &&str| row_key(l).is_none_or(|k| !skipped.contains(&k));
    let want: Vec<&str> = generated.trim().lines().filter(keep).collect();
    let have: Vec<&str> = current.trim().lines().filter(keep).collect();
    if want == have {
        return Ok(());
    }
    Err(format!(
        "the {name} block of {shown} is out of date (- doc, + tests); regenerate it with \
         `UPDATE_RELIABILITY=1 cargo test` (or only the test file that owns the block; the \
         same variable regenerates the README's screens):\n{}",
        diff(&have, &want)
    ))
}

/// A line diff (longest common subsequence), `-` for `old` only, `+` for `new` only.
pub fn diff(old: &[&str], new: &[&str]) -> String {
    let (n, m) = (old.len(), new.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", old[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", new[j]));
            j += 1;
        }
    }
    out
}

/// Text for a Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Text as inline code, whatever backticks it holds.
pub fn code(text: &str) -> String {
    let text = text.replace('\n', " ");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// The table of a hardening block: `| Case | Before | Now | Figure | Test |`, one row per
/// case — the case, what it did when it was found, what the test checks now, the figure (as
/// the bound the test holds, so the table is the same on every run), and the tests that hold
/// it (`tests/FILE.rs::name`; several joined by ", " are shown one per line).
pub fn hardening_table(rows: impl IntoIterator<Item = [String; 5]>) -> String {
    let mut md = String::from("| Case | Before | Now | Figure | Test |\n|---|---|---|---|---|\n");
    for [case, before, now, figure, tests] in rows {
        let tests: Vec<String> = tests.split(", ").map(|t| format!("`{t}`")).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&case),
            cell(&before),
            cell(&now),
            cell(&figure),
            tests.join("<br>")
        ));
    }
    md
}
