//! Label selectors as the `-l/--selector` flags of `nodes list`, `config`
//! and `exec` take them, in kubectl's grammar:
//!
//! | written | a node matches when |
//! |---|---|
//! | `key=value`, `key==value` | its label `key` is `value` |
//! | `key!=value` | its label `key` is not `value`, or it has no `key` |
//! | `key in (a,b)` | its label `key` is `a` or `b` |
//! | `key notin (a,b)` | its label `key` is neither, or it has no `key` |
//! | `key` | it has a label `key` |
//! | `!key` | it has no label `key` |
//!
//! Requirements separated by commas must all match, and so must those of
//! every `--selector` given. Anything else is refused while the command
//! line is parsed (exit 2), naming the bad part; `role!` is not read as a
//! key. Keys are 1 to [`MAX_LABEL_BYTES`] bytes, values at most that (an
//! empty value, `key=`, is allowed, as in kubectl), as the agent's labels
//! are; neither may contain whitespace or `=!(),`.

use std::collections::HashMap;

use cdn_proto::limits::MAX_LABEL_BYTES;
use cdn_proto::v1::{LabelRequirement, SelectorOperator};

/// The key of the pair cdnctl adds to the legacy `selector` map when a
/// selector has requirements the map cannot express: no node has this
/// label, so a master older than `label_selector` selects no node instead
/// of too many (its value is the selector, for that master's audit log).
pub const NEEDS_NEWER_MASTER: &str = "label-selector (needs a newer masterd)";

/// A lexical piece of a selector, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A key, a value, or the words `in` and `notin`.
    Word(String),
    /// `!` before a key.
    Not,
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
    Open,
    Close,
    Comma,
}

impl Token {
    fn shown(&self) -> String {
        match self {
            Token::Word(w) => format!("`{w}`"),
            Token::Not => "`!`".into(),
            Token::Equals => "`=`".into(),
            Token::NotEquals => "`!=`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::Comma => "`,`".into(),
        }
    }
}

/// Characters that are syntax, never part of a key or value.
fn is_syntax(c: char) -> bool {
    c.is_whitespace() || matches!(c, '=' | '!' | '(' | ')' | ',')
}

/// The tokens of `s`, each with its byte range.
fn lex(s: &str) -> Vec<(usize, usize, Token)> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '=' => {
                if chars.peek().is_some_and(|(_, n)| *n == '=') {
                    chars.next();
                }
                Token::Equals
            }
            '!' => {
                if chars.peek().is_some_and(|(_, n)| *n == '=') {
                    chars.next();
                    Token::NotEquals
                } else {
                    Token::Not
                }
            }
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            _ => {
                let mut word = String::from(c);
                while let Some((_, n)) = chars.peek().copied() {
                    if is_syntax(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                Token::Word(word)
            }
        };
        let end = chars.peek().map_or(s.len(), |(i, _)| *i);
        out.push((at, end, token));
    }
    out
}

/// Reads tokens of one `--selector` value.
struct Parser<'a> {
    source: &'a str,
    tokens: Vec<(usize, usize, Token)>,
    next: usize,
    /// Where the requirement being read starts.
    start: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, _, t)| t)
    }

    fn take(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.next).map(|(_, _, t)| t.clone());
        self.next += 1;
        t
    }

    /// The requirement read so far, up to the end of the last token taken
    /// (to the end of the input after the last): the part an error names.
    fn so_far(&self) -> &str {
        let end = match self.next.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some((_, end, _)) => *end,
            None if self.next > 0 => self.source.len(),
            None => self.start,
        };
        self.source
            .get(self.start..end.max(self.start))
            .unwrap_or_default()
            .trim()
    }

    fn error(&self, problem: impl std::fmt::Display) -> String {
        let part = self.so_far();
        if part.is_empty() {
            problem.to_string()
        } else {
            format!("`{part}`: {problem}")
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.take() {
            Some(Token::Word(k)) => check_key(&k).map(|_| k).map_err(|e| self.error(e)),
            Some(other) => {
                Err(self.error(format!("expected a label key, found {}", other.shown())))
            }
            None => Err(self.error("expected a label key")),
        }
    }

    /// A value after `=` or `!=`: a word, or nothing (the empty value).
    fn value(&mut self) -> Result<String, String> {
        if matches!(self.peek(), None | Some(Token::Comma)) {
            return Ok(String::new());
        }
        match self.take() {
            Some(Token::Word(v)) => check_value(&v).map(|_| v).map_err(|e| self.error(e)),
            Some(other) => Err(self.error(format!("expected a value, found {}", other.shown()))),
            None => Ok(String::new()),
        }
    }

    /// `(a, b, …)` after `in` or `notin`.
    fn set(&mut self, op: &str) -> Result<Vec<String>, String> {
        if self.take() != Some(Token::Open) {
            return Err(self.error(format!("`{op}` must be followed by `(value, ...)`")));
        }
        let mut values = Vec::new();
        loop {
            match self.take() {
                Some(Token::Word(v)) => {
                    check_value(&v).map_err(|e| self.error(e))?;
                    values.push(v);
                }
                Some(Token::Close) if values.is_empty() => {
                    return Err(self.error(format!("`{op} ()` needs at least one value")));
                }
                Some(other) => {
                    return Err(self.error(format!("expected a value, found {}", other.shown())));
                }
                None => return Err(self.error("`(` is not closed with `)`")),
            }
            match self.take() {
                Some(Token::Comma) => continue,
                Some(Token::Close) => return Ok(values),
                Some(other) => {
                    return Err(self.error(format!("expected `,` or `)`, found {}", other.shown())));
                }
                None => return Err(self.error("`(` is not closed with `)`")),
            }
        }
    }

    fn requirement(&mut self) -> Result<LabelRequirement, String> {
        self.start = self.tokens.get(self.next).map_or(0, |(at, _, _)| *at);
        let req = |key, operator: SelectorOperator, values| LabelRequirement {
            key,
            operator: operator.into(),
            values,
        };
        if self.peek() == Some(&Token::Not) {
            self.next += 1;
            let key = self.key()?;
            return Ok(req(key, SelectorOperator::DoesNotExist, Vec::new()));
        }
        let key = self.key()?;
        match self.peek().cloned() {
            None | Some(Token::Comma) => Ok(req(key, SelectorOperator::Exists, Vec::new())),
            Some(Token::Equals) => {
                self.next += 1;
                let v = self.value()?;
                Ok(req(key, SelectorOperator::Equals, vec![v]))
            }
            Some(Token::NotEquals) => {
                self.next += 1;
                let v = self.value()?;
                Ok(req(key, SelectorOperator::NotEquals, vec![v]))
            }
            Some(Token::Word(w)) if w == "in" || w == "notin" => {
                self.next += 1;
                let values = self.set(&w)?;
                let op = if w == "in" {
                    SelectorOperator::In
                } else {
                    SelectorOperator::NotIn
                };
                Ok(req(key, op, values))
            }
            Some(Token::Not) => {
                self.next += 1;
                Err(self.error(format!(
                    "`!` after a key is not an operator; did you mean `{key}!=VALUE`, or `!{key}` for nodes without it?"
                )))
            }
            Some(other) => {
                self.next += 1;
                Err(self.error(format!(
                    "expected `=`, `==`, `!=`, `in`, `notin`, `,` or the end after the key, found {}",
                    other.shown()
                )))
            }
        }
    }
}

fn check_key(k: &str) -> Result<(), String> {
    if k.len() > MAX_LABEL_BYTES {
        return Err(format!(
            "label key is {} bytes, at most {MAX_LABEL_BYTES}",
            k.len()
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    if v.len() > MAX_LABEL_BYTES {
        return Err(format!(
            "label value is {} bytes, at most {MAX_LABEL_BYTES}",
            v.len()
        ));
    }
    Ok(())
}

/// Parses one `--selector` value into its requirements; the error names
/// the bad part (`` `role!`: `!` after a key is not an operator; … ``).
pub fn parse(s: &str) -> Result<Vec<LabelRequirement>, String> {
    let mut p = Parser {
        source: s,
        tokens: lex(s),
        next: 0,
        start: 0,
    };
    if p.tokens.is_empty() {
        return Err("empty selector".into());
    }
    let mut out = Vec::new();
    loop {
        out.push(p.requirement()?);
        match p.take() {
            None => return Ok(out),
            Some(Token::Comma) if p.peek().is_none() => {
                return Err(p.error("nothing after the last `,`"));
            }
            Some(Token::Comma) => {}
            Some(other) => {
                return Err(p.error(format!(
                    "unexpected {} (separate requirements with `,`)",
                    other.shown()
                )));
            }
        }
    }
}

/// One requirement as kubectl writes it (`role!=edge`, `pop in (fra,ams)`).
pub fn show(r: &LabelRequirement) -> String {
    let values = || r.values.join(",");
    match r.operator() {
        SelectorOperator::Equals => format!("{}={}", r.key, values()),
        SelectorOperator::NotEquals => format!("{}!={}", r.key, values()),
        SelectorOperator::In => format!("{} in ({})", r.key, values()),
        SelectorOperator::NotIn => format!("{} notin ({})", r.key, values()),
        SelectorOperator::Exists => r.key.clone(),
        SelectorOperator::DoesNotExist => format!("!{}", r.key),
        SelectorOperator::Unspecified => format!("{} ?", r.key),
    }
}

/// The selector of every `--selector` given, as requests carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wire {
    /// Every requirement (`label_selector`).
    pub requirements: Vec<LabelRequirement>,
    /// The legacy map for masters that predate `label_selector`: the
    /// `key=value` requirements, and [`NEEDS_NEWER_MASTER`] when the map
    /// cannot say the rest.
    pub legacy: HashMap<String, String>,
}

/// Every requirement of every `--selector` given (all must match), and the
/// legacy map older masters read.
pub fn merge(flags: &[Vec<LabelRequirement>]) -> Wire {
    let requirements: Vec<LabelRequirement> = flags.iter().flatten().cloned().collect();
    let mut legacy = HashMap::new();
    let mut expressible = true;
    for r in &requirements {
        let value = r.values.first().cloned().unwrap_or_default();
        if r.operator() != SelectorOperator::Equals
            || legacy
                .insert(r.key.clone(), value.clone())
                .is_some_and(|v| v != value)
        {
            expressible = false;
        }
    }
    if !expressible {
        let text: Vec<String> = requirements.iter().map(show).collect();
        legacy.insert(NEEDS_NEWER_MASTER.to_string(), text.join(","));
    }
    Wire {
        requirements,
        legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> Vec<String> {
        parse(s).unwrap().iter().map(show).collect()
    }

    #[test]
    fn kubectl_grammar_parses() {
        assert_eq!(shown("region=eu,role=edge"), ["region=eu", "role=edge"]);
        assert_eq!(shown("role==edge"), ["role=edge"]);
        assert_eq!(shown("role!=edge"), ["role!=edge"]);
        assert_eq!(shown("pop in (fra, ams)"), ["pop in (fra,ams)"]);
        assert_eq!(shown("pop notin (fra)"), ["pop notin (fra)"]);
        assert_eq!(shown("gpu"), ["gpu"]);
        assert_eq!(shown("!gpu"), ["!gpu"]);
        assert_eq!(shown("tier="), ["tier="]);
        assert_eq!(
            shown(" role != edge , !gpu,pop in(fra,ams),x "),
            ["role!=edge", "!gpu", "pop in (fra,ams)", "x"]
        );
        // `in` and `notin` are keys where a key is expected.
        assert_eq!(shown("in=1,notin"), ["in=1", "notin"]);
        assert_eq!(shown("app.io/name=web_1.2"), ["app.io/name=web_1.2"]);
        let r = &parse("pop notin (fra,ams)").unwrap()[0];
        assert_eq!(r.operator(), SelectorOperator::NotIn);
        assert_eq!(r.values, ["fra", "ams"]);
    }

    #[test]
    fn anything_else_is_refused_naming_the_bad_part() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(
            err("role!"),
            "`role!`: `!` after a key is not an operator; did you mean `role!=VALUE`, or `!role` for nodes without it?"
        );
        assert_eq!(
            err("a=b=c"),
            "`a=b=`: unexpected `=` (separate requirements with `,`)"
        );
        assert_eq!(
            err("pop in (fra,ams"),
            "`pop in (fra,ams`: `(` is not closed with `)`"
        );
        assert_eq!(
            err("pop in fra"),
            "`pop in fra`: `in` must be followed by `(value, ...)`"
        );
        assert_eq!(
            err("pop in ()"),
            "`pop in ()`: `in ()` needs at least one value"
        );
        assert_eq!(
            err("role=edge)"),
            "`role=edge)`: unexpected `)` (separate requirements with `,`)"
        );
        assert_eq!(err("=x"), "`=`: expected a label key, found `=`");
        assert_eq!(err("a,"), "`a,`: nothing after the last `,`");
        assert_eq!(err("a,,b"), "`,`: expected a label key, found `,`");
        assert_eq!(err(""), "empty selector");
        assert_eq!(err("!"), "`!`: expected a label key");
        assert_eq!(
            err("a b"),
            "`a b`: expected `=`, `==`, `!=`, `in`, `notin`, `,` or the end after the key, found `b`"
        );
        assert_eq!(err("a=(b)"), "`a=(`: expected a value, found `(`");
        let long = "k".repeat(254);
        assert!(err(&long).contains("label key is 254 bytes, at most 253"));
        assert!(err(&format!("k={long}")).contains("label value is 254 bytes"));
    }

    #[test]
    fn flags_merge_and_older_masters_select_nothing_they_cannot_judge() {
        let flags = [parse("pop=fra").unwrap(), parse("role=edge").unwrap()];
        let w = merge(&flags);
        assert_eq!(w.requirements.len(), 2);
        assert_eq!(w.legacy.len(), 2);
        assert_eq!(w.legacy["pop"], "fra");

        let w = merge(&[parse("pop=fra,role!=edge").unwrap()]);
        assert_eq!(w.legacy["pop"], "fra");
        assert_eq!(w.legacy[NEEDS_NEWER_MASTER], "pop=fra,role!=edge");
        // Two values for one key cannot be a map entry.
        let w = merge(&[parse("a=1").unwrap(), parse("a=2").unwrap()]);
        assert!(w.legacy.contains_key(NEEDS_NEWER_MASTER));
        assert_eq!(merge(&[]), Wire::default());
    }
}
