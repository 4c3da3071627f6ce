//! Just enough YAML reading for the SAM template (there is no YAML crate in the build): the
//! block-style mappings, `- ` lists and `>-` folded scalars infra/aws/template.yaml uses, read by
//! indentation. Values come back as their raw text (`!Ref X`, `"quoted"`), unevaluated. Anything
//! the reader does not know panics with a message naming the path looked for.
#![allow(dead_code)]

/// One meaningful line: indentation and text (comments and blank lines dropped).
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .filter_map(|l| {
            let trimmed = l.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return None;
            }
            Some(Line {
                indent: l.len() - trimmed.len(),
                text: trimmed.trim_end(),
            })
        })
        .collect()
}

/// `key: rest` of a mapping line (`rest` may be empty); `None` for other lines.
fn key_of(text: &str) -> Option<(&str, &str)> {
    let (key, rest) = text.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(' ') || key.starts_with('-') || key.starts_with('"') {
        return None;
    }
    Some((key, rest.trim()))
}

/// A node of the template: its own line's value and the lines nested under it.
#[derive(Clone, Debug)]
pub struct Node<'a> {
    pub path: String,
    /// Text after `key:` on the node's line (empty for a nested block).
    pub value: &'a str,
    children: Vec<Line<'a>>,
}

impl<'a> Node<'a> {
    /// The whole template as a node.
    pub fn root(text: &'a str) -> Node<'a> {
        Node {
            path: String::new(),
            value: "",
            children: lines(text),
        }
    }

    fn child_indent(&self) -> Option<usize> {
        self.children.iter().map(|l| l.indent).min()
    }

    /// Direct `key:` entries of this block, in order.
    pub fn entries(&self) -> Vec<(String, Node<'a>)> {
        let Some(indent) = self.child_indent() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.children.len() {
            let line = self.children[i];
            i += 1;
            if line.indent != indent {
                continue;
            }
            let Some((key, rest)) = key_of(line.text) else {
                continue;
            };
            let start = i;
            while i < self.children.len() && self.children[i].indent > indent {
                i += 1;
            }
            out.push((
                key.to_string(),
                Node {
                    path: format!("{}/{key}", self.path),
                    value: rest,
                    children: self.children[start..i].to_vec(),
                },
            ));
        }
        out
    }

    /// The entry `key`, or `None`.
    pub fn find(&self, key: &str) -> Option<Node<'a>> {
        self.entries()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, n)| n)
    }

    /// The entry at `path` (keys from here); panics naming the path when missing.
    pub fn at(&self, path: &[&str]) -> Node<'a> {
        let mut node = self.clone();
        for key in path {
            node = node
                .find(key)
                .unwrap_or_else(|| panic!("infra/aws/template.yaml: {}/{key} missing", node.path));
        }
        node
    }

    /// Items of a `- item` list (each item's first line, without the dash, and its nested lines
    /// joined): `- !Ref X` gives `!Ref X`.
    pub fn list(&self) -> Vec<String> {
        let Some(indent) = self.child_indent() else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for line in &self.children {
            if line.indent == indent {
                let item = line.text.strip_prefix('-').unwrap_or_else(|| {
                    panic!(
                        "infra/aws/template.yaml: {} is not a list (line `{}`)",
                        self.path, line.text
                    )
                });
                out.push(item.trim().to_string());
            } else if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(line.text);
            }
        }
        out
    }

    /// The node's scalar: the inline value, or a `>-` folded block (lines joined by spaces).
    pub fn scalar(&self) -> String {
        let (tag, style) = match self.value.rsplit_once(' ') {
            Some((tag, style)) if style == ">-" => (format!("{tag} "), style),
            _ if self.value == ">-" => (String::new(), ">-"),
            _ => (String::new(), ""),
        };
        if style.is_empty() {
            return self.value.to_string();
        }
        let folded: Vec<&str> = self.children.iter().map(|l| l.text).collect();
        format!("{tag}{}", folded.join(" "))
    }
}

/// A value without surrounding double quotes.
pub fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}
