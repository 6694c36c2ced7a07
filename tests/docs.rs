//! What a user reads: the README (the front door), the manual in `docs/`, the shipped config
//! and `.env.example`, every command's help, the man page and the HTTP API's fixed error texts.
//!
//! - nothing there names internal work: no `SPEC`, no `§`, no `issue 12`, no `../shared`;
//! - every relative link between the README and `docs/` reaches a file, and its `#anchor` a
//!   heading there;
//! - the README stays a front door (≤ 15 KB), with the two generated dashboard screens and no
//!   hand-drawn one;
//! - the `status --json` sample is laid out exactly as the binary prints it;
//! - the API's 404 names the doc that lists the routes, and that doc lists every route.

mod common;

use clap::CommandFactory;
use common::Sandbox;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// README.md and every docs/*.md, as (path relative to the repository, text).
fn markdown_files() -> Vec<(String, String)> {
    let mut files = vec![("README.md".to_string(), read(&root().join("README.md")))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 8, "the manual is in docs/: {docs:?}");
    for p in docs {
        let rel = p.strip_prefix(root()).unwrap().display().to_string();
        files.push((rel, read(&p)));
    }
    files
}

/// Every command's short and long help, from the clap definition the binary uses.
fn help_texts() -> Vec<(String, String)> {
    fn walk(cmd: &mut clap::Command, name: String, out: &mut Vec<(String, String)>) {
        out.push((format!("{name} help"), cmd.render_help().to_string()));
        out.push((format!("{name} --help"), cmd.render_long_help().to_string()));
        for sub in cmd.get_subcommands_mut() {
            let sub_name = format!("{name} {}", sub.get_name());
            walk(sub, sub_name, out);
        }
    }
    let mut cmd = tokenwatch::cli::Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&mut cmd, "tokenwatch".into(), &mut out);
    out
}

/// Where `text` names internal work: `SPEC` as a word, `§`, `issue` followed by a number, or
/// `../shared`. One description per finding.
fn internal_references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut say = |what: &str| found.push(format!("line {}: {what}: {}", n + 1, line.trim()));
        let bytes = line.as_bytes();
        for (i, _) in line.match_indices("SPEC") {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + 4).copied();
            if !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
            {
                say("SPEC");
            }
        }
        if line.contains('§') {
            say("§");
        }
        if line.contains("../shared") {
            say("../shared");
        }
        let lower = line.to_lowercase();
        for (i, _) in lower.match_indices("issue") {
            let rest = lower[i + 5..].trim_start_matches([' ', '#', '-', '_']);
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                say("issue <number>");
            }
        }
    }
    found
}

#[test]
fn the_scan_finds_each_kind_of_internal_reference() {
    for planted in [
        "as SPEC says",
        "see §4",
        "fixed in issue 12",
        "Issue #7 again",
        "read ../shared/UPSTOX.md",
    ] {
        assert_eq!(
            internal_references(planted).len(),
            1,
            "{planted:?} must be found"
        );
    }
    for fine in [
        "SPECIAL case",
        "the issue is the redirect URL",
        "issued at 09:12",
        "shared folder",
    ] {
        assert!(internal_references(fine).is_empty(), "{fine:?} is fine");
    }
}

#[test]
fn nothing_a_user_reads_names_internal_work() {
    let mut texts = markdown_files();
    for rel in ["config/tokenwatch.yaml", ".env.example"] {
        texts.push((rel.into(), read(&root().join(rel))));
    }
    texts.extend(help_texts());
    let man = Sandbox::new().strict_utf8().run(&["man"]);
    assert_eq!(man.code, Some(0), "{}", man.all());
    texts.push(("tokenwatch man".into(), man.stdout));
    for (i, text) in tokenwatch::api::FIXED_ERRORS.iter().enumerate() {
        texts.push((format!("API error text {i}"), text.to_string()));
    }
    let found: Vec<String> = texts
        .iter()
        .flat_map(|(name, text)| {
            internal_references(text)
                .into_iter()
                .map(move |f| format!("{name}, {f}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "internal references where users read:\n{}",
        found.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of `text` outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|l| {
            let t = l.trim_start_matches('#');
            (l.starts_with('#') && t.starts_with(' ')).then(|| slug(t))
        })
        .collect()
}

/// The targets of `[text](target)` links in prose.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_link_between_the_readme_and_the_docs_resolves() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for (rel, text) in markdown_files() {
        let dir = root().join(&rel).parent().unwrap().to_path_buf();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                root().join(&rel)
            } else {
                dir.join(file)
            };
            if !target.exists() {
                bad.push(format!("{rel}: {link}: no such file"));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&target)).iter().any(|a| a == anchor) {
                bad.push(format!("{rel}: {link}: no heading with that anchor"));
            }
        }
    }
    assert!(checked > 40, "only {checked} links checked");
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn every_docs_file_says_what_it_is_for_and_links_back() {
    for (rel, text) in markdown_files().into_iter().skip(1) {
        let head: String = text.lines().take(6).collect::<Vec<_>>().join("\n");
        assert!(
            head.starts_with("# ") && head.contains("](../README.md"),
            "{rel} must start with its title, a line on its purpose and a link back to the \
             README:\n{head}"
        );
    }
    let readme = read(&root().join("README.md"));
    for (rel, _) in markdown_files().into_iter().skip(1) {
        assert!(
            readme.contains(&format!("]({rel})")),
            "the README's table of contents must list {rel}"
        );
    }
}

#[test]
fn the_readme_is_a_front_door_with_generated_screens() {
    let readme = read(&root().join("README.md"));
    // About 15 KB of words; the two generated screens (their box-drawing characters take
    // three bytes each) come on top.
    let screens: usize = ["screen-wide", "screen-narrow"]
        .iter()
        .filter_map(|name| {
            let start = readme.find(&format!("<!-- {name}:start -->"))?;
            let end = readme.find(&format!("<!-- {name}:end -->"))?;
            Some(end.saturating_sub(start))
        })
        .sum();
    let words = readme.len() - screens;
    assert!(
        words <= 15 * 1024 && screens <= 5 * 1024,
        "README.md has {words} bytes of words and {screens} of screens; the manual goes in docs/"
    );
    for section in [
        "## Try the demo",
        "## Quick start",
        "## Daily use",
        "## The manual",
    ] {
        assert!(readme.contains(section), "README.md lacks {section:?}");
    }
    // The screens are generated by the render tests between these markers; the demo's wide
    // screen comes before the tmux pane's narrow one.
    let at = |marker: &str| {
        assert_eq!(
            readme.matches(marker).count(),
            1,
            "{marker} must be in README.md once"
        );
        readme.find(marker).unwrap()
    };
    let wide = at("<!-- screen-wide:start -->");
    assert!(wide < at("<!-- screen-wide:end -->"));
    assert!(at("## Quick start") > wide);
    let narrow = at("<!-- screen-narrow:start -->");
    assert!(narrow < at("<!-- screen-narrow:end -->"));
    assert!(narrow > at("### In tmux beside the engine"));
    // No hand-drawn dashboard anywhere: its frame and key bar come only from the generator.
    let outside_markers = |text: &str| -> String {
        let mut out = String::new();
        let mut inside = false;
        for l in text.lines() {
            if l.starts_with("<!-- screen-") {
                inside = l.ends_with(":start -->");
                continue;
            }
            if !inside {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    };
    for (rel, text) in markdown_files() {
        let text = outside_markers(&text);
        for frame in ["┌ Notifications", "┌ Log ", "r refresh  l login"] {
            assert!(
                !text.contains(frame),
                "{rel} holds a hand-drawn dashboard ({frame:?}); screens are generated"
            );
        }
    }
}

/// Each line's indentation and key (`"key":`): the layout of pretty-printed JSON.
fn json_layout(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let key = t.strip_prefix('"')?.split_once("\":")?.0;
            Some((l.len() - t.len(), key.to_string()))
        })
        .collect()
}

#[test]
fn the_status_json_sample_is_laid_out_as_the_binary_prints_it() {
    let doc = read(&root().join("docs/commands.md"));
    let start = doc
        .find("$ tokenwatch status --json\n")
        .expect("docs/commands.md shows `$ tokenwatch status --json`");
    let sample = &doc[start..];
    let sample = &sample[sample.find('\n').unwrap() + 1..sample.find("```").unwrap()];
    let parsed: serde_json::Value =
        serde_json::from_str(sample).expect("the sample is the JSON the binary prints");

    // The token file sample of docs/token-file.md, as a real token file.
    let token_doc = read(&root().join("docs/token-file.md"));
    let token_start = token_doc.find("```json\n").expect("a token file sample") + 8;
    let token_sample = &token_doc[token_start..];
    let token_sample = &token_sample[..token_sample.find("```").unwrap()];
    let sb = Sandbox::new().strict_utf8();
    sb.write_yaml("token:\n  path: upstox_token.json\n");
    sb.write_token(token_sample);
    let out = sb.run(&["status", "--json"]);
    let printed = out.json();
    // Without an API verdict on file, the binary prints `"last_check": null`: the fields
    // compared are the top level's.
    let top = |text: &str| -> Vec<(usize, String)> {
        json_layout(text)
            .into_iter()
            .filter(|(indent, _)| *indent == 2)
            .collect()
    };
    assert_eq!(
        top(sample),
        top(&out.stdout),
        "docs/commands.md's sample must have the fields, order and layout `status --json` \
         prints:\n{}",
        out.stdout
    );
    assert_eq!(printed["user_id"], parsed["user_id"], "{}", out.stdout);
}

#[test]
fn the_api_404_points_at_the_doc_that_lists_every_route() {
    let text = tokenwatch::api::NO_SUCH_ROUTE;
    let (_, rest) = text.split_once("docs/").expect("the 404 names a docs file");
    let file: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    let file = file.trim_end_matches('.');
    let doc = read(&root().join("docs").join(file));
    assert!(text.contains("\"Routes\"") && anchors(&doc).contains(&"routes".to_string()));
    for route in [
        "GET /api/token/status",
        "GET /api/tokens",
        "POST /api/token/force-refresh",
        "POST /api/upstox/token/refresh",
        "GET /metrics",
        "GET /healthz",
    ] {
        assert!(doc.contains(route), "docs/{file} must list {route}");
    }
}
