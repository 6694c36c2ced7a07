//! The generated parts of `docs/reliability.md`: a test renders its cases as a Markdown block
//! and [`sync_doc_block`] compares it with the block between `<!-- NAME:start -->` and
//! `<!-- NAME:end -->` in the doc (or rewrites it with `UPDATE_RELIABILITY=1`). Every test
//! file that owns a block uses this one mechanism.

use std::sync::Mutex;

/// The reliability doc.
pub const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md");

/// Both table tests edit the one doc: one at a time.
static DOC_LOCK: Mutex<()> = Mutex::new(());

pub fn updating() -> bool {
    std::env::var("UPDATE_RELIABILITY").is_ok_and(|v| v == "1")
}

/// The first cell of a table row and the second: what a skipped row is known by.
pub fn row_key(line: &str) -> Option<String> {
    let cells: Vec<&str> = line.split(" | ").collect();
    (line.starts_with("| ") && cells.len() > 2).then(|| format!("{} | {}", cells[0], cells[1]))
}

/// Compare the `name` block of the doc with `generated` (or write it, with
/// `UPDATE_RELIABILITY=1`). Rows whose key is in `skipped` were not produced on this machine
/// and are left out of the comparison.
pub fn sync_doc_block(name: &str, generated: &str, skipped: &[String]) -> Result<(), String> {
    let _one = DOC_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let doc = std::fs::read_to_string(DOC).map_err(|e| format!("cannot read {DOC}: {e}"))?;
    let (head, rest) = doc
        .split_once(&start)
        .ok_or_else(|| format!("{DOC} has no {start} marker"))?;
    let (current, tail) = rest
        .split_once(&end)
        .ok_or_else(|| format!("{DOC} has no {end} marker"))?;
    if updating() {
        if !skipped.is_empty() {
            return Err(format!(
                "not regenerating the {name} block: these cases were skipped here: {skipped:?}"
            ));
        }
        let new = format!("{head}{start}\n{}\n{end}{tail}", generated.trim_end());
        if new != doc {
            std::fs::write(DOC, new).map_err(|e| format!("cannot write {DOC}: {e}"))?;
            eprintln!("fault_suite: rewrote the {name} block of {DOC}");
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
        "the {name} block of docs/reliability.md is out of date (- doc, + tests); \
         regenerate it with `UPDATE_RELIABILITY=1 cargo test` (or only the test file that owns the block):\n{}",
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
