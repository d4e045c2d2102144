//! Exec session recordings: the master's own append-only format (written
//! by masterd, read by cdnctl) and its asciicast v2 export.
//!
//! A recording is JSON lines: first a [`Header`], then one event per line,
//! `[seconds, kind, data]`, seconds since the session started:
//!
//! | kind | data |
//! |------|------|
//! | `o`, `e`, `i` | stdout, stderr, stdin as UTF-8 text |
//! | `o64`, `e64`, `i64` | the same, base64, for bytes that are not UTF-8 |
//! | `r` | new terminal size, `"COLSxROWS"` |
//! | `s` | signal number sent by the operator |
//! | `x` | exit code |
//! | `t` | the byte limit reached: nothing more of the session is recorded but its exit |
//!
//! A file cut short (the master was killed) is read up to its last whole
//! line.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Version of the format, in every header.
pub const FORMAT_VERSION: u32 = 1;

/// First line of a recording: who ran what, where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// [`FORMAT_VERSION`].
    pub cdn_recording: u32,
    /// The id recordings of the session are filed under (the first
    /// session's id for a fan-out).
    pub exec_id: u64,
    /// The session's own exec id (as in `exec history`).
    pub session_id: u64,
    pub user: String,
    /// Address cdnctl connected from.
    pub peer: String,
    pub node: String,
    pub argv: Vec<String>,
    pub tty: bool,
    /// Terminal size at the start (0 without a terminal).
    pub cols: u32,
    pub rows: u32,
    pub term: String,
    /// `output` or `all` (stdin too).
    pub mode: String,
    pub started_ms: i64,
}

/// What happened at one moment of a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Stdin(Vec<u8>),
    Resize { cols: u32, rows: u32 },
    Signal(i32),
    Exit(i32),
    Truncated(u64),
}

/// A recording as read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recording {
    pub header: Header,
    /// `(seconds since the start, event)`, in order.
    pub events: Vec<(f64, Event)>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("not a recording: {0}")]
    Header(String),
    #[error("line {line} of the recording: {message}")]
    Event { line: usize, message: String },
}

/// Which stream bytes came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    Stdin,
}

/// `b` as JSON text when that is not much larger than base64: UTF-8 with
/// few control characters (JSON writes each as six bytes). The count comes
/// first: it is one cheap pass, and it rules out binary output before the
/// UTF-8 check reads it.
fn as_text(b: &[u8]) -> Option<&str> {
    let escaped: usize = b
        .iter()
        .map(|&c| usize::from(c < 0x20 && !matches!(c, b'\n' | b'\r' | b'\t')))
        .sum();
    if escaped * 8 > b.len() {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// Microseconds are enough and keep lines short.
fn micros(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

fn json_line(v: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Bytes of one stream as a line of the file, newline included.
pub fn encode_bytes(t: f64, stream: Stream, b: &[u8]) -> Vec<u8> {
    let kind = match stream {
        Stream::Stdout => "o",
        Stream::Stderr => "e",
        Stream::Stdin => "i",
    };
    let t = micros(t);
    match as_text(b) {
        Some(s) => json_line(&(t, kind, s)),
        None => base64_line(t, kind, b),
    }
}

/// `[t,"KIND64","BASE64"]` and a newline, written straight into one buffer
/// of the right size: the base64 alphabet needs no JSON escaping, so the
/// (large) string need not go through serde_json's escaper.
fn base64_line(t: f64, kind: &str, b: &[u8]) -> Vec<u8> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let encoded = base64::encoded_len(b.len(), true).unwrap_or(0);
    let mut line = Vec::with_capacity(encoded + 40);
    line.push(b'[');
    // A finite f64 always serializes.
    let _ = serde_json::to_writer(&mut line, &t);
    line.extend_from_slice(b",\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"64\",\"");
    let start = line.len();
    line.resize(start + encoded, 0);
    let written = engine.encode_slice(b, &mut line[start..]).unwrap_or(0);
    line.truncate(start + written);
    line.extend_from_slice(b"\"]\n");
    line
}

/// One event as a line of the file, newline included.
pub fn encode_event(t: f64, event: &Event) -> Vec<u8> {
    let t = micros(t);
    match event {
        Event::Stdout(b) => encode_bytes(t, Stream::Stdout, b),
        Event::Stderr(b) => encode_bytes(t, Stream::Stderr, b),
        Event::Stdin(b) => encode_bytes(t, Stream::Stdin, b),
        Event::Resize { cols, rows } => json_line(&(t, "r", format!("{cols}x{rows}"))),
        Event::Signal(s) => json_line(&(t, "s", s)),
        Event::Exit(c) => json_line(&(t, "x", c)),
        Event::Truncated(n) => json_line(&(t, "t", n)),
    }
}

/// The header as the first line of the file.
pub fn encode_header(h: &Header) -> Vec<u8> {
    let mut line = serde_json::to_vec(h).unwrap_or_default();
    line.push(b'\n');
    line
}

fn decode_event(v: serde_json::Value) -> Result<(f64, Event), String> {
    let serde_json::Value::Array(a) = v else {
        return Err("an event is [seconds, kind, data]".into());
    };
    let [t, kind, data] = <[serde_json::Value; 3]>::try_from(a)
        .map_err(|_| "an event is [seconds, kind, data]".to_string())?;
    let t = t.as_f64().ok_or("time is not a number")?;
    let kind = kind.as_str().ok_or("kind is not a string")?;
    let text = || {
        data.as_str()
            .map(str::to_owned)
            .ok_or("data is not a string")
    };
    let b64 = || {
        let s = data.as_str().ok_or("data is not a string")?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("bad base64: {e}"))
    };
    let int = || data.as_i64().ok_or("data is not a number");
    let event = match kind {
        "o" => Event::Stdout(text()?.into_bytes()),
        "e" => Event::Stderr(text()?.into_bytes()),
        "i" => Event::Stdin(text()?.into_bytes()),
        "o64" => Event::Stdout(b64()?),
        "e64" => Event::Stderr(b64()?),
        "i64" => Event::Stdin(b64()?),
        "r" => {
            let s = text()?;
            let (c, r) = s.split_once('x').ok_or("size is not COLSxROWS")?;
            Event::Resize {
                cols: c.parse().map_err(|_| "bad column count")?,
                rows: r.parse().map_err(|_| "bad row count")?,
            }
        }
        "s" => Event::Signal(int()? as i32),
        "x" => Event::Exit(int()? as i32),
        "t" => Event::Truncated(int()? as u64),
        other => return Err(format!("unknown event kind `{other}`")),
    };
    Ok((t, event))
}

/// One event line of a recording (after its header), on its own: what a
/// reader that streams a large recording line by line uses.
pub fn parse_event_line(line: &[u8]) -> Result<(f64, Event), String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    decode_event(v)
}

/// Reads a recording; a last line cut short (master killed while writing)
/// is left out.
pub fn parse(data: &[u8]) -> Result<Recording, RecordingError> {
    let mut lines = data.split_inclusive(|&b| b == b'\n');
    let first = lines
        .next()
        .ok_or_else(|| RecordingError::Header("empty file".into()))?;
    let header: Header =
        serde_json::from_slice(first).map_err(|e| RecordingError::Header(e.to_string()))?;
    if header.cdn_recording == 0 || header.cdn_recording > FORMAT_VERSION {
        return Err(RecordingError::Header(format!(
            "format version {} is not known (this build reads 1 to {FORMAT_VERSION})",
            header.cdn_recording
        )));
    }
    let mut events = Vec::new();
    for (i, line) in lines.enumerate() {
        if !line.ends_with(b"\n") {
            break; // cut short
        }
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| RecordingError::Event {
                line: i + 2,
                message: e.to_string(),
            })?;
        events.push(decode_event(v).map_err(|message| RecordingError::Event {
            line: i + 2,
            message,
        })?);
    }
    Ok(Recording { header, events })
}

/// Header fields of the first line only (for listings).
pub fn parse_header(first_line: &[u8]) -> Option<Header> {
    serde_json::from_slice(first_line).ok()
}

impl Recording {
    /// The exit code, if the recording saw the end.
    pub fn exit_code(&self) -> Option<i32> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Exit(c) => Some(*c),
            _ => None,
        })
    }

    /// Whether the byte limit cut it.
    pub fn truncated(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Truncated(_)))
    }

    /// All output (stdout and stderr as they came).
    pub fn output(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, e) in &self.events {
            if let Event::Stdout(b) | Event::Stderr(b) = e {
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// asciicast v2: a header line, then `[t, "o"|"i"|"r", text]` events;
    /// stdout and stderr both become `o`, in order. Text split inside a
    /// UTF-8 sequence is joined; bytes that are not UTF-8 become U+FFFD.
    pub fn to_asciicast(&self) -> String {
        let h = &self.header;
        let (cols, rows) = if h.cols > 0 && h.rows > 0 {
            (h.cols, h.rows)
        } else {
            (80, 24)
        };
        let mut env = serde_json::Map::new();
        if !h.term.is_empty() {
            env.insert("TERM".into(), h.term.clone().into());
        }
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": h.started_ms / 1000,
            "command": h.argv.join(" "),
            "title": format!("{} on {} (exec {})", h.user, h.node, h.exec_id),
            "env": env,
        });
        let mut out = header.to_string();
        out.push('\n');
        let mut carry_out = Vec::new();
        let mut carry_in = Vec::new();
        for (t, e) in &self.events {
            let t = (t * 1e6).round() / 1e6;
            let (code, text) = match e {
                Event::Stdout(b) | Event::Stderr(b) => ("o", utf8_text(&mut carry_out, b)),
                Event::Stdin(b) => ("i", utf8_text(&mut carry_in, b)),
                Event::Resize { cols, rows } => ("r", format!("{cols}x{rows}")),
                _ => continue,
            };
            if text.is_empty() {
                continue;
            }
            out.push_str(&serde_json::json!([t, code, text]).to_string());
            out.push('\n');
        }
        out
    }
}

/// The text of `carry` + `b` up to an incomplete UTF-8 sequence at its end,
/// which stays in `carry`.
fn utf8_text(carry: &mut Vec<u8>, b: &[u8]) -> String {
    carry.extend_from_slice(b);
    let keep = match std::str::from_utf8(carry) {
        Ok(_) => 0,
        Err(e) if e.error_len().is_none() => carry.len() - e.valid_up_to(),
        Err(_) => {
            // Invalid somewhere: keep only a possibly incomplete tail.
            let tail = carry.len().saturating_sub(3);
            (tail..carry.len())
                .find(|&i| carry[i] >= 0xC0)
                .map_or(0, |i| {
                    if std::str::from_utf8(&carry[i..])
                        .err()
                        .is_some_and(|e| e.error_len().is_none())
                    {
                        carry.len() - i
                    } else {
                        0
                    }
                })
        }
    };
    let done: Vec<u8> = carry.drain(..carry.len() - keep).collect();
    String::from_utf8_lossy(&done).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_a_cut_line_is_left_out() {
        let h = Header {
            cdn_recording: FORMAT_VERSION,
            exec_id: 7,
            node: "n1".into(),
            ..Default::default()
        };
        let events = vec![
            (0.1, Event::Stdout(b"out\n".to_vec())),
            (0.2, Event::Stderr(vec![0xff, 0x00])),
            (0.25, Event::Stdout(vec![0; 64])),
            (
                0.3,
                Event::Resize {
                    cols: 100,
                    rows: 30,
                },
            ),
            (0.4, Event::Stdin(b"typed".to_vec())),
            (0.5, Event::Signal(2)),
            (0.6, Event::Truncated(10)),
            (0.7, Event::Exit(3)),
        ];
        let mut file = encode_header(&h);
        for (t, e) in &events {
            file.extend(encode_event(*t, e));
        }
        // Mostly control characters go base64, not six bytes each.
        assert!(String::from_utf8_lossy(&file).contains(r#"[0.25,"o64","AAAA"#));
        file.extend_from_slice(b"[0.8,\"o\",\"cut");
        let r = parse(&file).unwrap();
        assert_eq!(r.header, h);
        assert_eq!(r.events, events);
        assert_eq!(r.exit_code(), Some(3));
        assert!(r.truncated());
    }

    #[test]
    fn a_base64_line_is_the_json_serde_would_write() {
        for (t, b) in [
            (0.0, vec![]),
            (1.5, vec![0xff]),
            (12.345678, vec![0; 1000]),
            (3.0, (0..=255).collect::<Vec<u8>>()),
        ] {
            let by_serde = json_line(&(
                t,
                "e64",
                base64::engine::general_purpose::STANDARD.encode(&b),
            ));
            assert_eq!(base64_line(t, "e", &b), by_serde, "{} bytes", b.len());
        }
    }

    #[test]
    fn asciicast_merges_streams_and_joins_split_utf8() {
        let r = Recording {
            header: Header {
                cdn_recording: 1,
                ..Default::default()
            },
            events: vec![
                (0.0, Event::Stdout(vec![b'a', 0xc3])),
                (0.5, Event::Stderr(vec![0xa9, b'\n'])),
                (1.0, Event::Exit(0)),
            ],
        };
        let cast = r.to_asciicast();
        let lines: Vec<&str> = cast.lines().collect();
        assert_eq!(lines.len(), 3, "{cast}");
        assert!(lines[0].contains("\"version\":2"));
        assert_eq!(lines[1], r#"[0.0,"o","a"]"#);
        assert_eq!(lines[2], "[0.5,\"o\",\"é\\n\"]");
    }

    #[test]
    fn unknown_versions_and_kinds_are_refused() {
        assert!(parse(b"{\"cdn_recording\":9}\n").is_err());
        assert!(parse(b"{\"cdn_recording\":1}\n[0,\"zz\",1]\n").is_err());
    }
}
