//! kubectl's output templates: `-o jsonpath=TEMPLATE` and
//! `-o custom-columns=SPEC`, read against the JSON that `-o json` prints.
//!
//! Paths are JSONPath (RFC 9535, through `serde_json_path`) written as
//! kubectl writes them: `.items[*].name`, `$.items[0]`, `@.name`,
//! `..name`, `[?(@.status=="online")]`, `['name','status']`. A template is
//! text with `{…}` actions, as in kubectl:
//!
//! - `{.path}` prints every value the path finds, separated by a space;
//!   strings as they are, anything else as compact JSON;
//! - `{"\n"}` prints a JSON-quoted string (`\n`, `\t`, …);
//! - `{range .path}…{end}` repeats what is between for each value found,
//!   with paths inside relative to that value;
//! - text outside braces is printed as it is.
//!
//! A path that finds nothing prints nothing (kubectl's default,
//! `--allow-missing-template-keys`). Not supported: `jsonpath-file=`,
//! Go templates, escaped dots in keys (`{.labels.app\.io}`: use
//! `{.labels['app.io']}`).

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed `-o jsonpath=` template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
}

/// One piece of a template.
#[derive(Debug, Clone)]
enum Node {
    /// Printed as it is.
    Text(String),
    /// Every value found, separated by a space.
    Path(Path),
    /// The body once for each value found, read against it.
    Range(Path, Vec<Node>),
}

/// A JSONPath as the user wrote it, and compiled.
#[derive(Debug, Clone)]
struct Path {
    query: JsonPath,
}

impl Path {
    /// Compiles a kubectl-style path (`.a.b`, `$.a`, `@.a`, `[0]`, `..a`).
    fn parse(written: &str) -> Result<Self, String> {
        let w = written.trim();
        let rfc = if w.is_empty() {
            return Err("empty path".into());
        } else if w == "." || w == "@" || w == "$" {
            "$".to_string()
        } else if let Some(rest) = w.strip_prefix('@') {
            format!("${rest}")
        } else if w.starts_with('$') {
            w.to_string()
        } else if w.starts_with('.') || w.starts_with('[') {
            format!("${w}")
        } else {
            format!("$.{w}")
        };
        let query = JsonPath::parse(&rfc)
            .map_err(|e| format!("`{w}` is not a JSONPath: {}", e.message()))?;
        Ok(Self { query })
    }

    fn find<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        self.query.query(value).all()
    }
}

/// How a value found by a path prints: a string as it is, anything else
/// as compact JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Template {
    /// Parses `source`; the error names what is wrong and where.
    pub fn parse(source: &str) -> Result<Self, String> {
        // Frames of open `{range}`s: the path and the body so far.
        let mut stack: Vec<(Path, Vec<Node>)> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '{' {
                text.push(c);
                continue;
            }
            // An action: up to the matching `}`, quotes respected.
            let mut action = String::new();
            let mut quote: Option<char> = None;
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match quote {
                    Some(q) => {
                        action.push(c);
                        if c == '\\' {
                            if let Some((_, next)) = chars.next() {
                                action.push(next);
                            }
                        } else if c == q {
                            quote = None;
                        }
                    }
                    None if c == '}' => {
                        closed = true;
                        break;
                    }
                    None => {
                        if c == '"' || c == '\'' {
                            quote = Some(c);
                        }
                        action.push(c);
                    }
                }
            }
            if !closed {
                return Err(format!(
                    "`{{` at position {} is not closed with `}}`",
                    at + 1
                ));
            }
            let body = match stack.last_mut() {
                Some((_, body)) => body,
                None => &mut nodes,
            };
            if !text.is_empty() {
                body.push(Node::Text(std::mem::take(&mut text)));
            }
            let action = action.trim();
            if action.is_empty() {
                return Err(format!("empty `{{}}` at position {}", at + 1));
            }
            if action.starts_with('"') {
                let s: String = serde_json::from_str(action)
                    .map_err(|_| format!("{action} is not a quoted string"))?;
                body.push(Node::Text(s));
            } else if action == "end" {
                let Some((path, inner)) = stack.pop() else {
                    return Err(format!(
                        "`{{end}}` at position {} without a `{{range}}`",
                        at + 1
                    ));
                };
                let body = match stack.last_mut() {
                    Some((_, body)) => body,
                    None => &mut nodes,
                };
                body.push(Node::Range(path, inner));
            } else if let Some(path) = action.strip_prefix("range ") {
                stack.push((Path::parse(path)?, Vec::new()));
            } else if action == "range" {
                return Err("`{range}` needs a path: `{range .items[*]}`".into());
            } else {
                body.push(Node::Path(Path::parse(action)?));
            }
        }
        if !stack.is_empty() {
            return Err("`{range …}` without its `{end}`".into());
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(Self {
            source: source.to_string(),
            nodes,
        })
    }

    /// The template as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The template applied to `document`.
    pub fn render(&self, document: &Value) -> String {
        let mut out = String::new();
        render(&self.nodes, document, &mut out);
        out
    }
}

fn render(nodes: &[Node], current: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(p) => {
                let found: Vec<String> = p.find(current).into_iter().map(text_of).collect();
                out.push_str(&found.join(" "));
            }
            Node::Range(p, body) => {
                for item in p.find(current) {
                    render(body, item, out);
                }
            }
        }
    }
}

/// A parsed `-o custom-columns=` spec: a header and a path per column.
#[derive(Debug, Clone)]
pub struct Columns {
    columns: Vec<(String, Path)>,
}

/// What a column shows when its path finds nothing (as kubectl).
pub const NONE: &str = "<none>";

impl Columns {
    /// Parses `HEADER:PATH[,HEADER:PATH...]` (a path may be in braces,
    /// `NAME:{.name}`); the error names the bad column.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec.trim().is_empty() {
            return Err("custom-columns needs at least one HEADER:PATH".into());
        }
        let columns = spec
            .split(',')
            .map(|column| {
                let (header, path) = column
                    .split_once(':')
                    .ok_or_else(|| format!("column `{column}` is not HEADER:PATH"))?;
                let header = header.trim();
                if header.is_empty() {
                    return Err(format!("column `{column}` has no header"));
                }
                let path = path.trim();
                let path = path
                    .strip_prefix('{')
                    .and_then(|p| p.strip_suffix('}'))
                    .unwrap_or(path);
                let path = Path::parse(path).map_err(|e| format!("column {header}: {e}"))?;
                Ok((header.to_string(), path))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { columns })
    }

    /// The headers, in order.
    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|(h, _)| h.clone()).collect()
    }

    /// One row's cells: what each path finds in `item`, several values
    /// separated by commas, [`NONE`] for nothing (or null).
    pub fn cells(&self, item: &Value) -> Vec<String> {
        self.columns
            .iter()
            .map(|(_, path)| {
                let found: Vec<String> = path
                    .find(item)
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .map(text_of)
                    .collect();
                if found.is_empty() {
                    NONE.to_string()
                } else {
                    found.join(",")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nodes() -> Value {
        json!({"items": [
            {"name": "agent-1", "status": "online", "labels": {"role": "edge"}, "cpu_percent": 3.5},
            {"name": "agent-2", "status": "offline", "labels": {}, "cpu_percent": null},
        ]})
    }

    fn render(t: &str) -> String {
        Template::parse(t).unwrap().render(&nodes())
    }

    #[test]
    fn kubectl_templates_render_as_kubectl_does() {
        assert_eq!(render("{.items[*].name}"), "agent-1 agent-2");
        assert_eq!(render("{$.items[0].name}"), "agent-1");
        assert_eq!(
            render("nodes: {.items[*].name}!"),
            "nodes: agent-1 agent-2!"
        );
        assert_eq!(
            render(r#"{range .items[*]}{.name}{"\t"}{.status}{"\n"}{end}"#),
            "agent-1\tonline\nagent-2\toffline\n"
        );
        assert_eq!(render(r#"{.items[?(@.status=="online")].name}"#), "agent-1");
        assert_eq!(render("{.items[0].labels}"), r#"{"role":"edge"}"#);
        assert_eq!(render("{.items[*].cpu_percent}"), "3.5 null");
        assert_eq!(render("{..role}"), "edge");
        // A path that finds nothing prints nothing.
        assert_eq!(render("[{.items[*].missing}]"), "[]");
        // Nested ranges read relative to their item.
        assert_eq!(
            render(r#"{range .items[*]}{.name}:{range .labels.*}{@}{end};{end}"#),
            "agent-1:edge;agent-2:;"
        );
        // Braces inside quotes do not end an action.
        assert_eq!(render(r#"{"}"}"#), "}");
        assert_eq!(render("text only"), "text only");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let err = |t: &str| Template::parse(t).unwrap_err();
        assert!(err("{.items").contains("not closed"), "{}", err("{.items"));
        assert!(err("{range .items[*]}{.name}").contains("without its `{end}`"));
        assert!(err("{.name}{end}").contains("without a `{range}`"));
        assert!(err("{}").contains("empty"));
        assert!(
            err("{.items[}").contains("is not a JSONPath"),
            "{}",
            err("{.items[}")
        );
        assert!(err("{range}").contains("needs a path"));
        assert!(err(r#"{"\q"}"#).contains("not a quoted string"));
    }

    #[test]
    fn custom_columns_pick_a_cell_per_path() {
        let c = Columns::parse("NAME:.name,ROLE:{.labels.role},CPU:.cpu_percent").unwrap();
        assert_eq!(c.headers(), ["NAME", "ROLE", "CPU"]);
        let items = nodes();
        assert_eq!(c.cells(&items["items"][0]), ["agent-1", "edge", "3.5"]);
        assert_eq!(c.cells(&items["items"][1]), ["agent-2", NONE, NONE]);
        let many = Columns::parse("ALL:.items[*].name").unwrap();
        assert_eq!(many.cells(&items), ["agent-1,agent-2"]);
    }

    #[test]
    fn bad_column_specs_name_the_column() {
        let err = |s: &str| Columns::parse(s).unwrap_err();
        assert!(err("").contains("at least one"));
        assert!(err("NAME").contains("`NAME` is not HEADER:PATH"));
        assert!(err(":.name").contains("no header"));
        assert!(err("NAME:").contains("column NAME: empty path"));
        assert!(err("NAME:.name,X:.a[").contains("column X"));
    }
}
