//! Documentation that cannot rot: every guide in `docs/` is compiled as doctests, every code
//! block says its language, and no link in the README, the guides or the rustdoc is dead.
//!
//! The crate is not published, so links to docs.rs, crates.io or a GitHub repository of
//! `authed` lead nowhere; guides link to each other and to the source with relative links.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every guide in docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut guides: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("readable docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    guides.sort();
    assert!(!guides.is_empty(), "no guide found in docs/");
    files.extend(guides);
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The lines outside fenced code blocks, with their line numbers (1-based).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans, so that `[a](b)` inside backticks is not a link.
fn without_code_spans(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Link targets of a markdown text: inline links `[text](target)` and reference definitions
/// `[label]: target`, with the line they are on.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((_, target)) = trimmed.split_once("]: ")
        {
            found.push((n, target.trim().to_owned()));
            continue;
        }
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            found.push((n, after[..end].trim().to_owned()));
            rest = &after[end..];
        }
    }
    found
}

/// The anchors GitHub gives the headings of a markdown text.
fn anchors(text: &str) -> HashSet<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, line)| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// URLs that would document the crate if it were published; today they are dead.
fn is_unpublished_crate_url(url: &str) -> bool {
    [
        "docs.rs/authed",
        "crates.io/crates/authed",
        "github.com/authed-rs",
    ]
    .iter()
    .any(|dead| url.contains(dead))
}

#[test]
fn relative_links_in_the_readme_and_guides_point_at_files_and_headings_that_exist() {
    let mut dead = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        for (line, target) in links(&text) {
            let at = format!("{}:{line}: {target}", file.display());
            if target.starts_with("http://") || target.starts_with("https://") {
                if is_unpublished_crate_url(&target) {
                    dead.push(format!("{at} (the crate is not published)"));
                }
                continue;
            }
            if target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a file has a folder").join(path)
            };
            if !linked.exists() {
                dead.push(format!("{at} (no such file)"));
                continue;
            }
            let is_markdown = linked.extension().is_some_and(|ext| ext == "md");
            if !anchor.is_empty() && is_markdown && !anchors(&read(&linked)).contains(anchor) {
                dead.push(format!("{at} (no such heading)"));
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn rustdoc_does_not_link_to_the_unpublished_crate() {
    let mut dead = Vec::new();
    let mut folders = vec![root().join("src"), root().join("examples")];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("readable source folder") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                for (n, line) in read(&path).lines().enumerate() {
                    if is_unpublished_crate_url(line) {
                        dead.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        dead.is_empty(),
        "links to the unpublished crate:\n{}",
        dead.join("\n")
    );
}

#[test]
fn every_code_block_in_the_readme_and_guides_names_its_language() {
    // An unmarked block is compiled as Rust: a shell command or an HTTP exchange then fails
    // the doctests with a confusing syntax error, so every block says what it is.
    let mut unmarked = Vec::new();
    for file in markdown_files() {
        let mut in_code = false;
        for (n, line) in read(&file).lines().enumerate() {
            let Some(info) = line.trim_start().strip_prefix("```") else {
                continue;
            };
            if !in_code && info.trim().is_empty() {
                unmarked.push(format!("{}:{}", file.display(), n + 1));
            }
            in_code = !in_code;
        }
    }
    assert!(
        unmarked.is_empty(),
        "code blocks without a language (use rust, text, sh, toml, json, http):\n{}",
        unmarked.join("\n")
    );
}

#[test]
fn every_guide_is_compiled_as_doctests() {
    let lib = read(&root().join("src/lib.rs"));
    let missing: Vec<String> = markdown_files()
        .into_iter()
        .skip(1) // README.md, included on its own
        .filter_map(|guide| {
            let name = guide.file_name()?.to_str()?.to_owned();
            let include = format!("include_str!(\"../docs/{name}\")");
            (!lib.contains(&include)).then_some(name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "guides not included in the `guides` doctest module of src/lib.rs: {missing:?}"
    );
    assert!(lib.contains("include_str!(\"../README.md\")"));
}

#[test]
fn every_test_the_threat_model_names_exists() {
    // docs/security.md names the test behind each rule as `file::test` (tests/file.rs) or
    // `module::tests::test` (a unit test in src/); a renamed or deleted test must not leave
    // a rule without its proof.
    let security = read(&root().join("docs/security.md"));
    let mut sources = String::new();
    let mut folders = vec![root().join("src"), root().join("tests")];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("readable source folder") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                sources.push_str(&read(&path));
            }
        }
    }
    let (mut named, mut missing) = (0, Vec::new());
    for span in security.split('`').skip(1).step_by(2) {
        let segments: Vec<&str> = span.split("::").collect();
        let is_path = segments.len() >= 2
            && segments.iter().all(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        let is_test = is_path
            && (segments.contains(&"tests")
                || root()
                    .join("tests")
                    .join(format!("{}.rs", segments[0]))
                    .exists());
        if !is_test {
            continue;
        }
        named += 1;
        let name = segments[segments.len() - 1];
        let file = root().join("tests").join(format!("{}.rs", segments[0]));
        let found = if segments.contains(&"tests") {
            sources.contains(&format!("fn {name}("))
        } else {
            read(&file).contains(&format!("fn {name}("))
        };
        if !found {
            missing.push(span.to_owned());
        }
    }
    assert!(
        named >= 20,
        "the threat model names its tests ({named} found)"
    );
    assert!(
        missing.is_empty(),
        "docs/security.md names tests that do not exist: {missing:?}"
    );
}
