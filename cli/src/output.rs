//! The one place cdnctl prints: tables, wide tables, JSON and YAML to
//! stdout; one-line errors to stderr. A closed stdout is not an error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::CliError;

/// The `-o` contract, as kubectl has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table of the main columns.
    #[default]
    Table,
    /// A table with every column.
    Wide,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
}

/// Whether stdout is a terminal and colour is wanted (`NO_COLOR` respected).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A new table in kubectl's plain layout (no borders, two spaces between
/// columns); on a terminal it fits the width and the header is bold when
/// colour is on.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if std::io::stdout().is_terminal() {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    if !NO_HEADERS.load(std::sync::atomic::Ordering::Relaxed) {
        let bold = colour();
        t.set_header(header.iter().map(|h| {
            let c = Cell::new(h);
            if bold {
                c.add_attribute(comfy_table::Attribute::Bold)
            } else {
                c
            }
        }));
    }
    t
}

/// `--no-headers`: tables print rows only.
static NO_HEADERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--no-headers` was given.
pub fn no_headers() -> bool {
    NO_HEADERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns table headers off for this invocation (`--no-headers`).
pub fn set_no_headers(on: bool) {
    NO_HEADERS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Renders a table: no leading space, two spaces between columns.
pub fn render(mut t: Table) -> String {
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    t.to_string()
}

/// Prints a table to stdout.
pub fn print_table(t: Table) -> Result<(), CliError> {
    print_text(&render(t))
}

/// A state cell, coloured on a terminal.
pub fn state_cell(state: &str) -> Cell {
    let cell = Cell::new(state);
    if !colour() {
        return cell;
    }
    match state.trim_end() {
        "online" => cell.fg(Color::Green),
        "degraded" => cell.fg(Color::Yellow),
        "offline" => cell.fg(Color::Red),
        _ => cell,
    }
}

/// A push result cell, coloured on a terminal.
pub fn result_cell(result: &str) -> Cell {
    let cell = Cell::new(result);
    if !colour() {
        return cell;
    }
    match result {
        "applied" => cell.fg(Color::Green),
        "pending" => cell.fg(Color::Yellow),
        "failed" => cell.fg(Color::Red),
        _ => cell,
    }
}

/// Writes a one-line diagnostic (not data) to stderr.
pub fn print_diagnostic(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Writes `text` to stdout exactly as it is.
pub fn print_raw(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(pipe_error)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    cdn_common::unix_millis_now()
}

/// RFC 3339 with milliseconds, or None for 0 ("never").
pub fn rfc3339(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
        humantime::format_rfc3339_millis(t).to_string()
    })
}

/// Writes `text` and a newline to stdout.
pub fn print_text(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end_matches('\n'))
        .and_then(|_| out.flush())
        .map_err(pipe_error)
}

/// Writes `value` as JSON or YAML.
pub fn print_data<T: Serialize>(value: &T, format: Format) -> Result<(), CliError> {
    let text = match format {
        Format::Yaml => serde_yaml_ng::to_string(value)
            .map_err(|e| CliError::Local(format!("cannot render YAML: {e}")))?,
        _ => serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))?,
    };
    print_text(&text)
}

fn pipe_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Local(format!("cannot write output: {e}"))
    }
}

/// Prints `e` as one line on stderr (nothing for a closed stdout) and
/// returns its exit code.
pub fn fail(e: &CliError) -> ExitCode {
    if !matches!(e, CliError::BrokenPipe) {
        let _ = writeln!(std::io::stderr(), "cdnctl: {e}");
    }
    crate::exit::of_error(e)
}

/// "3s", "4m", "2h", "5d" (or "never"), as kubectl shows ages.
pub fn age(ms_ago: i64) -> String {
    if ms_ago < 0 {
        return "0s".into();
    }
    let s = ms_ago / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Bytes in binary units ("1.5 GiB").
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(500), "0s");
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(600_000), "10m");
        assert_eq!(age(3 * 3_600_000), "3h");
        assert_eq!(age(3 * 86_400_000), "3d");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
    }
}
