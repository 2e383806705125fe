//! Proves the documentation holds together: every relative link and `#anchor` in the repository's Markdown files resolves inside the repository, and the numbers the docs quote from the code (the README's settings table, and quotes written `` `NAME` = N ``) are the code's.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use messenger::config::Config;
use serde_json::Value;

/// Files written on another branch that the docs already link to. A link to one of them is not
/// broken while the file is missing; once it exists, its links and anchors are checked like any
/// other. (`docs/configuration.md` is generated from `Config` on the settings branch.)
const PENDING: &[&str] = &[];

/// Directories that hold no documentation of this repository (hidden ones are skipped too).
const SKIP_DIRS: &[&str] = &["target", "node_modules", "artifacts"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file under `root`, as paths relative to it, sorted.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(root.join(&dir)).expect("read a directory");
        for entry in entries.map(|e| e.expect("a directory entry")) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = dir.join(&name);
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() && !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                dirs.push(rel);
            } else if kind.is_file() && name.ends_with(".md") {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// The text with fenced code blocks blanked (line numbers kept): what Markdown renders as prose.
fn without_fences(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Inline code spans blanked: a link inside backticks is not a link.
fn without_code_spans(line: &str) -> String {
    let mut inside = false;
    line.chars()
        .map(|c| match c {
            '`' => {
                inside = !inside;
                ' '
            }
            _ if inside => ' ',
            c => c,
        })
        .collect()
}

/// The link targets of one line of prose: `[text](target)`, `![alt](target)`, `[ref]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    if let Some(rest) = line.trim_start().strip_prefix('[') {
        if let Some((_, target)) = rest.split_once("]:") {
            if let Some(target) = target.split_whitespace().next() {
                targets.push(target.to_owned());
            }
        }
    }
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let target = match rest.strip_prefix('<') {
            Some(inner) => inner.split('>').next().unwrap_or(""),
            None => {
                let mut depth = 0usize;
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| match c {
                        '(' => {
                            depth += 1;
                            false
                        }
                        ')' if depth == 0 => true,
                        ')' => {
                            depth -= 1;
                            false
                        }
                        c => c.is_whitespace(),
                    })
                    .map_or(rest.len(), |(i, _)| i);
                &rest[..end]
            }
        };
        targets.push(target.to_owned());
    }
    targets
}

/// GitHub's anchor for a heading: the rendered text, lower-cased, without punctuation other
/// than `-` and `_`, spaces turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` renders as its text.
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once("](") {
            Some((label, tail)) if !label.contains('[') => {
                text.push_str(label);
                rest = tail.split_once(')').map_or("", |(_, t)| t);
            }
            _ => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a Markdown file offers: its headings' slugs (repeats get `-1`, `-2`, as on
/// GitHub) and explicit `<a id="...">` / `<a name="...">`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in without_fences(text).lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let title = line[hashes..].trim().trim_end_matches('#').trim();
            let base = slug(title);
            let mut candidate = base.clone();
            let mut n = 0;
            while found.contains(&candidate) {
                n += 1;
                candidate = format!("{base}-{n}");
            }
            found.insert(candidate);
        }
        for key in ["<a id=\"", "<a name=\""] {
            for part in line.split(key).skip(1) {
                if let Some((id, _)) = part.split_once('"') {
                    found.insert(id.to_owned());
                }
            }
        }
    }
    found
}

/// `a/./b/../c` as `a/c`; `None` if it climbs above its start (out of the repository).
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `%20` and friends, as a browser reads a link's path.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What checking the links of a tree found.
#[derive(Debug, Default)]
struct Report {
    files: usize,
    /// Relative links whose target was checked.
    relative: usize,
    /// `#anchor`s checked against a Markdown file's headings.
    anchors: usize,
    /// Links to a `PENDING` file that does not exist yet.
    pending: usize,
    problems: Vec<String>,
}

/// Checks every relative link (and anchor) of every Markdown file under `root`.
fn check_links(root: &Path, pending: &[&str]) -> Report {
    let mut report = Report::default();
    for file in markdown_files(root) {
        report.files += 1;
        let text = fs::read_to_string(root.join(&file)).expect("read a Markdown file");
        for (n, line) in without_fences(&text).lines().enumerate() {
            for target in link_targets(line) {
                let place = format!("{}:{}: link {target:?}", file.display(), n + 1);
                if let Some(problem) = check_link(root, &file, &target, pending, &mut report) {
                    report.problems.push(format!("{place}: {problem}"));
                }
            }
        }
    }
    report
}

/// Why one link is broken, if it is.
fn check_link(
    root: &Path,
    file: &Path,
    target: &str,
    pending: &[&str],
    report: &mut Report,
) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None; // leaves the repository by design; not checked here
    }
    if target.is_empty() {
        return Some("empty target".into());
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let path = percent_decoded(path.split('?').next().unwrap_or(""));
    if path.starts_with('/') {
        return Some("absolute path: links must be relative to the file".into());
    }
    let here = file.parent().unwrap_or(Path::new(""));
    let joined = if path.is_empty() {
        file.to_owned() // `#anchor` alone: this file
    } else {
        here.join(&path)
    };
    let Some(resolved) = normalize(&joined) else {
        return Some("points outside the repository".into());
    };
    report.relative += 1;
    if !root.join(&resolved).exists() {
        if pending.iter().any(|p| Path::new(p) == resolved) {
            report.pending += 1;
            return None;
        }
        return Some(format!("no such file {}", resolved.display()));
    }
    let is_markdown = resolved.extension().is_some_and(|e| e == "md");
    if anchor.is_empty() || !(is_markdown || path.is_empty()) {
        return None;
    }
    report.anchors += 1;
    let text = fs::read_to_string(root.join(&resolved)).expect("read the linked file");
    if anchors(&text).contains(anchor) {
        None
    } else {
        Some(format!(
            "no heading for #{anchor} in {}",
            resolved.display()
        ))
    }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let report = check_links(&root(), PENDING);
    assert!(
        report.problems.is_empty(),
        "broken links:\n{}",
        report.problems.join("\n")
    );
    // Not vacuous: the walk found the documents, their links and their anchors.
    let files = markdown_files(&root());
    for needed in ["README.md", "CHANGELOG.md", "docs/api.md", "docs/box.md"] {
        assert!(files.contains(&PathBuf::from(needed)), "{needed} not found");
    }
    assert!(report.files >= 8, "only {} Markdown files", report.files);
    assert!(report.relative >= 40, "only {} links", report.relative);
    assert!(report.anchors >= 20, "only {} anchors", report.anchors);
}

#[test]
fn the_checker_catches_broken_links() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs-check");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("docs")).unwrap();
    fs::write(
        dir.join("docs/b.md"),
        "# B title\n\n## `Code` and more: here\n",
    )
    .unwrap();
    fs::write(
        dir.join("README.md"),
        "# Top\n\n[ok](docs/b.md#code-and-more-here) [self](#top) [web](https://example.com)\n\
         [pending](docs/later.md) `[not a link](nowhere.md)`\n\
         ```\n[in a fence](nowhere.md)\n```\n\
         [missing](docs/c.md) [anchor](docs/b.md#nope) [out](../outside.md)\n\
         ![image](/abs.png)\n[ref]: docs/gone.md\n",
    )
    .unwrap();
    let report = check_links(&dir, &["docs/later.md"]);
    let problems: Vec<&str> = report
        .problems
        .iter()
        .map(|p| p.split_once("\": ").unwrap().1)
        .collect();
    assert_eq!(
        problems,
        [
            "no such file docs/c.md",
            "no heading for #nope in docs/b.md",
            "points outside the repository",
            "absolute path: links must be relative to the file",
            "no such file docs/gone.md",
        ],
        "{:#?}",
        report.problems
    );
    assert_eq!((report.relative, report.anchors, report.pending), (6, 3, 1));
}

#[test]
fn headings_become_github_anchors() {
    assert_eq!(slug("A connection's origin"), "a-connections-origin");
    assert_eq!(
        slug("The Kurento room API (`/room`)"),
        "the-kurento-room-api-room"
    );
    assert_eq!(
        slug("Why httparse and not tiny_http"),
        "why-httparse-and-not-tiny_http"
    );
    assert_eq!(slug("See [api](docs/api.md) here"), "see-api-here");
    let found = anchors("# Same\n## Same\n```\n# not a heading\n```\n<a id=\"x\"></a>\n");
    assert_eq!(
        found,
        BTreeSet::from(["same".into(), "same-1".into(), "x".into()])
    );
}

/// The built-in defaults as the configuration file writes them.
fn defaults() -> Value {
    serde_json::to_value(Config::default()).expect("settings serialize")
}

/// Whether a default as the docs write it (`1,000`, `true`, `127.0.0.1:9998`, `[]`) is `value`.
fn same_value(quoted: &str, value: &Value) -> bool {
    let quoted = quoted.trim().trim_matches('`');
    match value {
        Value::String(s) => quoted == s,
        Value::Bool(b) => quoted == b.to_string(),
        Value::Array(_) => serde_json::from_str::<Value>(quoted).is_ok_and(|q| q == *value),
        Value::Number(n) => {
            let digits: String = quoted.chars().filter(|c| !matches!(c, ',' | '_')).collect();
            digits.parse::<f64>().ok() == n.as_f64()
        }
        _ => false,
    }
}

#[test]
fn readme_settings_table_quotes_the_defaults() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Settings\n")
        .nth(1)
        .expect("README has a Settings section");
    let section = section.split("\n## ").next().unwrap();
    let defaults = defaults();
    let mut rows = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let value = defaults
            .get(name)
            .unwrap_or_else(|| panic!("README's settings table names {name:?}, not a setting"));
        assert!(
            same_value(cells[2], value),
            "README says {name} defaults to {}, the code says {value}",
            cells[2]
        );
        rows += 1;
    }
    assert!(rows >= 8, "only {rows} rows in README's settings table");
}

/// The integer a `const NAME: T = <expr>;` in `src/` has, for literals and products of them.
fn constant(name: &str) -> Option<f64> {
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                let Some((_, rest)) = line.split_once(&format!("const {name}:")) else {
                    continue;
                };
                let expr = rest.split_once('=')?.1.split(';').next()?;
                let factors: Option<Vec<f64>> = expr
                    .split('*')
                    .map(|f| f.trim().replace('_', "").parse::<f64>().ok())
                    .collect();
                return factors.map(|f| f.iter().product());
            }
        }
    }
    None
}

#[test]
fn quoted_numbers_are_the_codes() {
    let defaults = defaults();
    let mut checked = 0;
    for file in markdown_files(&root()) {
        let text = without_fences(&fs::read_to_string(root().join(&file)).unwrap());
        // ``double-backtick spans`` show the notation itself; odd pieces of the rest are
        // inside backticks: a name, then the text after it.
        let text: String = text.split("``").step_by(2).collect::<Vec<_>>().join(" ");
        let pieces: Vec<&str> = text.split('`').collect();
        for (name, after) in pieces.iter().zip(&pieces[1..]).skip(1).step_by(2) {
            let Some(value) = after.strip_prefix(" = ") else {
                continue;
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let value: String = value
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_'))
                .collect();
            let value = value.trim_end_matches(['.', ',']);
            if value.is_empty() {
                continue; // `name` = `text`: a value given as code, not a quoted number
            }
            let place = format!("{}: `{name}` = {value}", file.display());
            if name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                let code =
                    constant(name).unwrap_or_else(|| panic!("{place}: no const {name} in src/"));
                assert!(
                    same_value(value, &Value::from(code)),
                    "{place}: the code has {code}"
                );
            } else if let Some(code) = defaults.get(name) {
                assert!(same_value(value, code), "{place}: the default is {code}");
            } else {
                continue; // not a setting (`nproc` = 2): prose, not a quote of the code
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} quoted numbers found");
}
