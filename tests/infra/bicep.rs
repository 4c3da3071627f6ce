//! Just enough Bicep reading for the infra tests (there is no Bicep compiler offline): find a
//! declaration, cut out the balanced block after it, and read string lists and one-line properties.
//! Comments and string literals (with `${...}` interpolation) are skipped when matching brackets.
//! Anything unexpected panics with a message naming the file and the thing looked for.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a file relative to the repository root.
pub fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bracket {
    Open(usize, u8),
    Close(usize, u8),
}

/// Brackets outside comments and strings, with their byte offsets.
fn brackets(text: &str) -> Vec<Bracket> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    lex_code(b, &mut i, &mut out, true);
    out
}

/// Scans code until the end of input or, inside an interpolation, until its closing `}`.
fn lex_code(b: &[u8], i: &mut usize, out: &mut Vec<Bracket>, top: bool) {
    let mut depth = 0usize;
    while *i < b.len() {
        let c = b[*i];
        match c {
            b'/' if b.get(*i + 1) == Some(&b'/') => {
                while *i < b.len() && b[*i] != b'\n' {
                    *i += 1;
                }
                continue;
            }
            b'/' if b.get(*i + 1) == Some(&b'*') => {
                *i += 2;
                while *i + 1 < b.len() && !(b[*i] == b'*' && b[*i + 1] == b'/') {
                    *i += 1;
                }
                *i += 2;
                continue;
            }
            b'\'' => {
                assert!(
                    !b[*i..].starts_with(b"'''"),
                    "multi-line Bicep strings are not supported by this reader"
                );
                lex_string(b, i, out);
                continue;
            }
            b'{' | b'[' | b'(' => {
                if top {
                    out.push(Bracket::Open(*i, c));
                }
                depth += 1;
            }
            b'}' | b']' | b')' => {
                if !top && depth == 0 && c == b'}' {
                    *i += 1;
                    return;
                }
                depth = depth.saturating_sub(1);
                if top {
                    out.push(Bracket::Close(*i, c));
                }
            }
            _ => {}
        }
        *i += 1;
    }
}

/// Skips a string literal starting at the quote, including nested interpolations.
fn lex_string(b: &[u8], i: &mut usize, out: &mut Vec<Bracket>) {
    *i += 1;
    while *i < b.len() {
        match b[*i] {
            b'\\' => *i += 2,
            b'\'' => {
                *i += 1;
                return;
            }
            b'$' if b.get(*i + 1) == Some(&b'{') => {
                *i += 2;
                lex_code(b, i, out, false);
            }
            _ => *i += 1,
        }
    }
    panic!("unterminated string literal");
}

fn matching_close(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'[' => b']',
        _ => b')',
    }
}

/// The balanced `{...}` or `[...]` that follows the first occurrence of `marker`.
pub fn block_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not found"));
    let toks = brackets(text);
    let start = toks
        .iter()
        .position(|t| matches!(t, Bracket::Open(p, c) if *p > at && (*c == b'{' || *c == b'[')))
        .unwrap_or_else(|| panic!("no block after `{marker}`"));
    let Bracket::Open(open_at, open) = toks[start] else {
        unreachable!()
    };
    let mut depth = 0usize;
    for t in &toks[start..] {
        match *t {
            Bracket::Open(..) => depth += 1,
            Bracket::Close(p, c) => {
                depth -= 1;
                if depth == 0 {
                    assert_eq!(c, matching_close(open), "unbalanced block after `{marker}`");
                    return &text[open_at..=p];
                }
            }
        }
    }
    panic!("block after `{marker}` is not closed")
}

/// The elements of a one-string-per-line array block (`[ 'a' \n 'b' ]`). Any element that is not
/// a plain string literal panics, so a list that grew an expression is noticed.
pub fn string_list(block: &str) -> Vec<String> {
    let inner = block
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not an array block: {block}"));
    inner
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| {
            let s = l
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .unwrap_or_else(|| panic!("array element is not a string literal: {l}"));
            assert!(
                !s.contains('\'') && !s.contains("${"),
                "array element is not a plain string literal: {l}"
            );
            s.to_string()
        })
        .collect()
}

/// The text after `key:` on the one line of `block` that starts with it (after indentation).
/// Panics when the key is absent or appears more than once.
pub fn line_value<'a>(block: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    let hits: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one `{key}:` line, found {}",
        hits.len()
    );
    hits[0]
}

/// Whether some line of `block` starts with `key:`.
pub fn has_key(block: &str, key: &str) -> bool {
    let prefix = format!("{key}:");
    block.lines().any(|l| l.trim().starts_with(prefix.as_str()))
}

/// A plain string literal `'...'` without interpolation, unquoted.
pub fn unquote(value: &str) -> &str {
    let s = value
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("not a string literal: {value}"));
    assert!(!s.contains("${"), "string is interpolated: {value}");
    s
}

/// `(name, value expression)` of every `{ name: '...' value: ... }` entry of an appSettings block.
pub fn app_settings(block: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    for line in block.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("name:") {
            assert!(name.is_none(), "app setting without value before {line}");
            name = Some(unquote(n.trim()).to_string());
        } else if let Some(v) = line.strip_prefix("value:") {
            let n = name
                .take()
                .unwrap_or_else(|| panic!("value without name: {line}"));
            out.push((n, v.trim().to_string()));
        }
    }
    assert!(name.is_none(), "last app setting has no value");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_in_strings_and_comments_are_ignored() {
        let text = "x = { a: '}${f('{')}' // } ]\n b: [ 'c' ] /* { */ }\ny = [ 'z' ]";
        assert_eq!(
            block_after(text, "x ="),
            "{ a: '}${f('{')}' // } ]\n b: [ 'c' ] /* { */ }"
        );
        assert_eq!(block_after(text, "y ="), "[ 'z' ]");
    }

    #[test]
    fn string_list_rejects_expressions() {
        assert_eq!(string_list("[\n 'a'\n // note\n 'b'\n]"), ["a", "b"]);
        let r = std::panic::catch_unwind(|| string_list("[\n 'a'\n other\n]"));
        assert!(r.is_err());
    }

    #[test]
    fn app_settings_pair_names_and_values() {
        let block = "[\n{\nname: 'A'\nvalue: 'x'\n}\n{\nname: 'B'\nvalue: foo.bar\n}\n]";
        assert_eq!(
            app_settings(block),
            [
                ("A".to_string(), "'x'".to_string()),
                ("B".to_string(), "foo.bar".to_string())
            ]
        );
    }
}
