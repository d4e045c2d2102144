//! The one place cdnctl prints. Every listing — nodes, config status and
//! history, push and rollback reports, exec history and the fan-out
//! summary, audit, events, contexts, whoami — is a [`Listing`] (most are a
//! list of [`Row`]s) that the [`Printer`] writes in the `-o` [`Format`] the
//! user chose: a table, a wide table, JSON or YAML. A listing declares the
//! formats it honours; its `-o` flag ([`formats`]) refuses any other while
//! the command line is parsed, before a file is read or the master asked.
//!
//! Data goes to stdout, summaries and one-line errors to stderr; colour only
//! on a terminal and without `NO_COLOR`; a closed stdout is not an error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use cdn_proto::v1::{ApplyResult, NodeStatus};
use clap::ValueEnum;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use comfy_table::{Color, ContentArrangement, presets};
use serde::{Serialize, Serializer};

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

impl Format {
    /// Every format: for listings with a wide form.
    pub const ALL: &'static [Format] = &[Format::Table, Format::Wide, Format::Json, Format::Yaml];
    /// Table, JSON and YAML: for listings without a wide form.
    pub const NO_WIDE: &'static [Format] = &[Format::Table, Format::Json, Format::Yaml];

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Something cdnctl prints in the `-o` formats: what JSON and YAML
/// serialize, and the human form `table` (and `wide`) show.
pub trait Listing {
    /// The formats it honours; its `-o` flag takes only these
    /// (`value_parser = output::formats(X::FORMATS)`).
    const FORMATS: &'static [Format] = Format::NO_WIDE;

    /// What `-o json` and `-o yaml` print.
    fn data(&self) -> impl Serialize;

    /// What `-o table` prints, or with `wide` what `-o wide` prints.
    fn human(&self, wide: bool) -> Human;

    /// A summary printed to stderr before the human form; not data, so
    /// JSON and YAML leave it out.
    fn note(&self) -> Option<String> {
        None
    }

    /// A line printed under the human form (`masters`: the last backup);
    /// JSON and YAML carry it as data instead, and `--no-headers` leaves
    /// it out with the header.
    fn footer(&self) -> Option<String> {
        None
    }
}

/// The human form of a listing.
pub enum Human {
    /// A table, with its header unless `--no-headers`.
    Table(Table),
    /// Text as it is: a `key: value` list, a sentence, "No nodes found.".
    Text(String),
    /// Nothing on stdout (the note on stderr says it all).
    Nothing,
}

/// One row of a table: its columns and cells. A `Vec` of rows is a
/// listing; rows also make the tables inside other listings
/// ([`Table::of`]) and the lines of a stream ([`Printer::record`]).
pub trait Row {
    /// The formats a list of these rows honours.
    const FORMATS: &'static [Format] = Format::NO_WIDE;
    /// What the table says when there are no rows (None: the header alone).
    const EMPTY: Option<&'static str> = None;
    /// Least width of each column, so that rows printed later line up.
    const MIN_WIDTHS: &'static [usize] = &[];

    /// Column headers; `wide` adds the wide form's.
    fn columns(wide: bool) -> Vec<&'static str>;

    /// This row's cells, one per column.
    fn cells(&self, wide: bool) -> Vec<Cell>;
}

impl<R: Row + Serialize> Listing for Vec<R> {
    const FORMATS: &'static [Format] = R::FORMATS;

    fn data(&self) -> impl Serialize {
        self
    }

    fn human(&self, wide: bool) -> Human {
        match R::EMPTY {
            Some(text) if self.is_empty() => Human::Text(text.into()),
            _ => Human::Table(Table::of(self, wide)),
        }
    }
}

/// A table before layout: header, rows and the least width of each column.
pub struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
    min_widths: &'static [usize],
}

impl Table {
    /// The table of `rows`, with the wide form's columns if `wide`.
    pub fn of<R: Row>(rows: &[R], wide: bool) -> Self {
        Self {
            columns: R::columns(wide),
            rows: rows.iter().map(|r| r.cells(wide)).collect(),
            min_widths: R::MIN_WIDTHS,
        }
    }

    /// Laid out in kubectl's plain style: no borders, two spaces after each
    /// column, every column at least `at_least` wide. On a terminal it fits
    /// the width (unless `at_least` fixes the columns) and the header is
    /// bold when colour is on.
    fn layout(self, header: bool, at_least: &[u16]) -> comfy_table::Table {
        let mut t = comfy_table::Table::new();
        t.load_preset(presets::NOTHING);
        let fit = std::io::stdout().is_terminal() && at_least.is_empty();
        t.set_content_arrangement(if fit {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        });
        let colour = colour();
        if header && !no_headers() {
            t.set_header(self.columns.iter().map(|h| {
                let c = comfy_table::Cell::new(h);
                if colour {
                    c.add_attribute(comfy_table::Attribute::Bold)
                } else {
                    c
                }
            }));
        }
        for row in self.rows {
            t.add_row(row.into_iter().enumerate().map(|(i, cell)| {
                let width = self
                    .min_widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .max(at_least.get(i).copied().map_or(0, usize::from));
                let c = comfy_table::Cell::new(format!("{:<width$}", cell.text));
                match cell.tone.colour() {
                    Some(fg) if colour => c.fg(fg),
                    _ => c,
                }
            }));
        }
        for c in t.column_iter_mut() {
            c.set_padding((0, 2));
        }
        t
    }
}

/// One table cell: its text and what it means (coloured on a terminal).
pub struct Cell {
    text: String,
    tone: Tone,
}

impl Cell {
    /// A plain cell.
    pub fn new(text: impl ToString) -> Self {
        Self {
            text: text.to_string(),
            tone: Tone::Plain,
        }
    }

    /// `text`, or `-` when it is empty.
    pub fn or_dash(text: &str) -> Self {
        Self::new(dash(text))
    }

    /// A node state or push result in its word (`online`, `applied`, …),
    /// coloured by what it means.
    pub fn word(w: impl Word) -> Self {
        Self {
            text: w.word().to_string(),
            tone: w.tone(),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

/// What a word means to an operator, shown as its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// No colour.
    Plain,
    /// All is well: green.
    Good,
    /// Needs a look: yellow.
    Warning,
    /// Broken: red.
    Bad,
}

impl Tone {
    fn colour(self) -> Option<Color> {
        match self {
            Self::Plain => None,
            Self::Good => Some(Color::Green),
            Self::Warning => Some(Color::Yellow),
            Self::Bad => Some(Color::Red),
        }
    }
}

/// A protocol enum cdnctl prints: its word from `cdn_proto`'s words, the
/// same in tables, JSON and YAML, and its tone in tables.
pub trait Word: Copy {
    /// The word (`online`, `applied`).
    fn word(self) -> &'static str;
    /// What it means, for colour.
    fn tone(self) -> Tone;
}

impl Word for NodeStatus {
    fn word(self) -> &'static str {
        NodeStatus::word(self)
    }

    fn tone(self) -> Tone {
        match self {
            Self::Online => Tone::Good,
            Self::Degraded => Tone::Warning,
            Self::Offline => Tone::Bad,
            Self::Unspecified => Tone::Plain,
        }
    }
}

impl Word for ApplyResult {
    fn word(self) -> &'static str {
        ApplyResult::word(self)
    }

    fn tone(self) -> Tone {
        match self {
            Self::Applied => Tone::Good,
            Self::Pending => Tone::Warning,
            Self::Failed => Tone::Bad,
            Self::Unspecified => Tone::Plain,
        }
    }
}

/// Serializes a [`Word`] as its word:
/// `#[serde(serialize_with = "output::as_word")]`.
pub fn as_word<W: Word, S: Serializer>(w: &W, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(w.word())
}

/// The `-o` flag of a listing that honours `honoured`
/// (`value_parser = output::formats(X::FORMATS)`): help and completion offer
/// only those; another format is a one-line usage error (see [`parse`]).
///
/// [`parse`]: crate::parse
pub fn formats(honoured: &'static [Format]) -> FormatParser {
    FormatParser { honoured }
}

/// Parses `-o` for one listing; made by [`formats`].
#[derive(Debug, Clone, Copy)]
pub struct FormatParser {
    honoured: &'static [Format],
}

impl TypedValueParser for FormatParser {
    type Value = Format;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Format, clap::Error> {
        match value.to_str().map(|v| Format::from_str(v, false)) {
            Some(Ok(f)) if self.honoured.contains(&f) => Ok(f),
            Some(Ok(f)) => Err(refusal(cmd, f, self.honoured)),
            // Not a format at all: clap's own error, naming the honoured ones.
            _ => Err(PossibleValuesParser::new(self.values())
                .parse_ref(cmd, arg, value)
                .err()
                .unwrap_or_else(|| clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd))),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.values()))
    }
}

impl FormatParser {
    fn values(&self) -> impl Iterator<Item = PossibleValue> + '_ {
        self.honoured.iter().filter_map(|f| f.to_possible_value())
    }
}

/// The error of an `-o` that `cmd`'s listing does not honour: "config
/// history does not support -o wide (use table, json or yaml)". It carries
/// the message for [`refused_format`] to find.
fn refusal(cmd: &clap::Command, refused: Format, honoured: &[Format]) -> clap::Error {
    // "cdnctl config history" while parsing: the command without the binary.
    let listing = cmd
        .get_bin_name()
        .and_then(|b| b.split_once(' '))
        .map_or(cmd.get_name(), |(_, path)| path);
    let mut names: Vec<String> = honoured.iter().map(|f| f.name()).collect();
    let last = names.pop().unwrap_or_default();
    let choice = if names.is_empty() {
        last
    } else {
        format!("{} or {last}", names.join(", "))
    };
    let message = format!(
        "{listing} does not support -o {} (use {choice})",
        refused.name()
    );
    let mut e = clap::Error::raw(ErrorKind::InvalidValue, format!("{message}\n"));
    e.insert(ContextKind::Custom, ContextValue::String(message));
    e
}

/// The one-line message of a refused `-o`, if clap's error `e` is one.
pub fn refused_format(e: &clap::Error) -> Option<String> {
    match e.get(ContextKind::Custom) {
        Some(ContextValue::String(message)) => Some(message.clone()),
        _ => None,
    }
}

/// Prints listings in one format. A table printed after another listing
/// continues it, as `nodes list --watch` needs: no header, and columns at
/// least as wide as before.
pub struct Printer {
    format: Format,
    /// Column widths of what was printed so far; None before the first.
    widths: Option<Vec<u16>>,
    /// Whether a record of a stream was printed (the header comes once).
    streaming: bool,
}

impl Printer {
    /// A printer for `format`, one the listings it prints honour (their
    /// `-o` flag refused the others).
    pub fn new(format: Format) -> Self {
        Self {
            format,
            widths: None,
            streaming: false,
        }
    }

    /// Prints `listing` to stdout (and its note to stderr).
    pub fn print<L: Listing>(&mut self, listing: &L) -> Result<(), CliError> {
        self.render(listing)?.write()
    }

    /// Prints one record of a stream (`events`) as it comes: in a table, a
    /// line under a header printed once, each column padded to the row's
    /// least width (no layout: rows come one by one); in JSON one object per
    /// line; in YAML one document each.
    pub fn record<R: Row + Serialize>(&mut self, row: &R) -> Result<(), CliError> {
        self.render_record(row)?.write()
    }

    fn render<L: Listing>(&mut self, listing: &L) -> Result<Printed, CliError> {
        debug_assert!(L::FORMATS.contains(&self.format), "{:?}", self.format);
        let wide = match self.format {
            Format::Json => return Ok(Printed::data(json(&listing.data(), true)?)),
            Format::Yaml => return Ok(Printed::data(yaml(&listing.data())?)),
            Format::Table => false,
            Format::Wide => true,
        };
        let text = match listing.human(wide) {
            Human::Table(t) => {
                let at_least = self.widths.clone().unwrap_or_default();
                let t = t.layout(self.widths.is_none(), &at_least);
                let now = t.column_max_content_widths();
                self.widths = Some(match self.widths.take() {
                    None => now,
                    Some(before) => before
                        .iter()
                        .zip(now.iter().chain(std::iter::repeat(&0)))
                        .map(|(a, b)| *a.max(b))
                        .collect(),
                });
                Some(t.to_string())
            }
            Human::Text(text) => {
                self.widths.get_or_insert_with(Vec::new);
                Some(text)
            }
            Human::Nothing => None,
        };
        let text = match (text, listing.footer().filter(|_| !no_headers())) {
            (Some(text), Some(footer)) => {
                Some(format!("{}\n{footer}", text.trim_end_matches('\n')))
            }
            (None, Some(footer)) => Some(footer),
            (text, None) => text,
        };
        Ok(Printed {
            note: listing.note(),
            text,
        })
    }

    fn render_record<R: Row + Serialize>(&mut self, row: &R) -> Result<Printed, CliError> {
        debug_assert!(R::FORMATS.contains(&self.format), "{:?}", self.format);
        let first = !std::mem::replace(&mut self.streaming, true);
        let wide = match self.format {
            Format::Json => return Ok(Printed::data(json(row, false)?)),
            Format::Yaml => return Ok(Printed::data(format!("---\n{}", yaml(row)?.trim_end()))),
            Format::Table => false,
            Format::Wide => true,
        };
        let cells = row.cells(wide);
        let mut text = line(cells.iter().map(|c| c.text.as_str()), R::MIN_WIDTHS);
        if first && !no_headers() {
            text = format!(
                "{}\n{text}",
                line(R::columns(wide).into_iter(), R::MIN_WIDTHS)
            );
        }
        Ok(Printed::data(text))
    }
}

/// What printing a listing writes: a note to stderr, then text to stdout.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    note: Option<String>,
    text: Option<String>,
}

impl Printed {
    fn data(text: String) -> Self {
        Self {
            note: None,
            text: Some(text),
        }
    }

    fn write(self) -> Result<(), CliError> {
        if let Some(note) = self.note {
            print_diagnostic(&note);
        }
        match self.text {
            Some(text) => print_text(&text),
            None => Ok(()),
        }
    }
}

/// Prints `listing` to stdout in `format` (see [`Printer::print`]).
pub fn print<L: Listing>(listing: &L, format: Format) -> Result<(), CliError> {
    Printer::new(format).print(listing)
}

/// Prints `rows` as a table to stderr: a summary that is not data (the
/// exec fan-out's, after the nodes' own output).
pub fn summary<R: Row>(rows: &[R]) {
    print_diagnostic(&Table::of(rows, false).layout(true, &[]).to_string());
}

/// `texts` padded to `widths` with two spaces between, the last as it is.
fn line<'a>(texts: impl ExactSizeIterator<Item = &'a str>, widths: &[usize]) -> String {
    let last = texts.len().saturating_sub(1);
    let mut out = String::new();
    for (i, text) in texts.enumerate() {
        if i == last {
            out.push_str(text);
        } else {
            let width = widths.get(i).copied().unwrap_or(0);
            out.push_str(&format!("{text:<width$}  "));
        }
    }
    out
}

fn json(value: &impl Serialize, pretty: bool) -> Result<String, CliError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))
}

fn yaml(value: &impl Serialize) -> Result<String, CliError> {
    cdn_common::yaml::to_string(value)
        .map_err(|e| CliError::Local(format!("cannot render YAML: {e}")))
}

/// Whether stdout is a terminal and colour is wanted (`NO_COLOR` respected).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `--no-headers`: tables print rows only.
static NO_HEADERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn no_headers() -> bool {
    NO_HEADERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns table headers off for this invocation (`--no-headers`).
pub fn set_no_headers(on: bool) {
    NO_HEADERS.store(on, std::sync::atomic::Ordering::Relaxed);
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

/// Writes `text` and a newline to stdout.
pub fn print_text(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end_matches('\n'))
        .and_then(|_| out.flush())
        .map_err(pipe_error)
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

/// `text`, or `-` when it is empty: how listings show "nothing".
pub fn dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
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

/// What printing `listing` in `format` would write: (stderr, stdout).
#[cfg(test)]
pub(crate) fn rendered<L: Listing>(
    listing: &L,
    format: Format,
) -> (Option<String>, Option<String>) {
    let p = Printer::new(format).render(listing).expect("renders");
    (p.note, p.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    #[derive(Serialize)]
    struct Probe {
        name: &'static str,
        #[serde(serialize_with = "as_word")]
        status: NodeStatus,
        detail: &'static str,
    }

    impl Row for Probe {
        const FORMATS: &'static [Format] = Format::ALL;
        const EMPTY: Option<&'static str> = Some("No probes.");
        const MIN_WIDTHS: &'static [usize] = &[0, 8];

        fn columns(wide: bool) -> Vec<&'static str> {
            let mut c = vec!["NAME", "STATUS"];
            if wide {
                c.push("DETAIL");
            }
            c
        }

        fn cells(&self, wide: bool) -> Vec<Cell> {
            let mut c = vec![Cell::new(self.name), Cell::word(self.status)];
            if wide {
                c.push(Cell::or_dash(self.detail));
            }
            c
        }
    }

    fn probes() -> Vec<Probe> {
        vec![
            Probe {
                name: "agent-1",
                status: NodeStatus::Online,
                detail: "",
            },
            Probe {
                name: "agent-22",
                status: NodeStatus::Offline,
                detail: "agent shut down",
            },
        ]
    }

    fn stdout(listing: &impl Listing, format: Format) -> String {
        rendered(listing, format).1.expect("stdout")
    }

    #[test]
    fn one_listing_in_every_format() {
        let rows = probes();
        assert_eq!(
            stdout(&rows, Format::Table),
            "NAME      STATUS    \nagent-1   online    \nagent-22  offline   "
        );
        assert_eq!(
            stdout(&rows, Format::Wide),
            "NAME      STATUS    DETAIL           \n\
             agent-1   online    -                \n\
             agent-22  offline   agent shut down  "
        );
        assert_eq!(
            stdout(&rows, Format::Json),
            r#"[
  {
    "name": "agent-1",
    "status": "online",
    "detail": ""
  },
  {
    "name": "agent-22",
    "status": "offline",
    "detail": "agent shut down"
  }
]"#
        );
        assert_eq!(
            stdout(&rows, Format::Yaml),
            "- name: agent-1\n  status: online\n  detail: \"\"\n\
             - name: agent-22\n  status: offline\n  detail: agent shut down\n"
        );
        assert_eq!(stdout(&Vec::<Probe>::new(), Format::Table), "No probes.");
        assert_eq!(stdout(&Vec::<Probe>::new(), Format::Json), "[]");
    }

    #[test]
    fn later_tables_continue_the_first() {
        let mut p = Printer::new(Format::Table);
        let first = p.render(&probes()).unwrap().text.unwrap();
        assert!(first.starts_with("NAME "), "{first}");
        let more = vec![Probe {
            name: "a",
            status: NodeStatus::Degraded,
            detail: "",
        }];
        let text = p.render(&more).unwrap().text.unwrap();
        // No header; NAME as wide as in the first table.
        assert_eq!(text, "a         degraded  ");
    }

    struct Report(Vec<Probe>);

    impl Listing for Report {
        fn data(&self) -> impl Serialize {
            &self.0
        }

        fn human(&self, _wide: bool) -> Human {
            Human::Nothing
        }

        fn note(&self) -> Option<String> {
            Some(format!("{} probes", self.0.len()))
        }
    }

    #[test]
    fn notes_go_to_stderr_in_human_formats_only() {
        let r = Report(probes());
        assert_eq!(rendered(&r, Format::Table), (Some("2 probes".into()), None));
        let (note, data) = rendered(&r, Format::Yaml);
        assert_eq!(note, None);
        assert!(data.unwrap().starts_with("- name: agent-1"));
    }

    #[test]
    fn stream_records_print_one_by_one() {
        let rows = probes();
        let mut p = Printer::new(Format::Table);
        assert_eq!(
            p.render_record(&rows[0]).unwrap().text.unwrap(),
            "NAME  STATUS\nagent-1  online"
        );
        assert_eq!(
            p.render_record(&rows[1]).unwrap().text.unwrap(),
            "agent-22  offline"
        );
        let mut p = Printer::new(Format::Json);
        assert_eq!(
            p.render_record(&rows[0]).unwrap().text.unwrap(),
            r#"{"name":"agent-1","status":"online","detail":""}"#
        );
        let mut p = Printer::new(Format::Yaml);
        assert_eq!(
            p.render_record(&rows[0]).unwrap().text.unwrap(),
            "---\nname: agent-1\nstatus: online\ndetail: \"\""
        );
    }

    fn cli(honoured: &'static [Format]) -> Command {
        Command::new("cdnctl").subcommand(
            Command::new("config").subcommand(
                Command::new("history").arg(
                    Arg::new("output")
                        .short('o')
                        .long("output")
                        .default_value("table")
                        .value_parser(formats(honoured)),
                ),
            ),
        )
    }

    fn parse(honoured: &'static [Format], o: &str) -> Result<Format, clap::Error> {
        let m = cli(honoured).try_get_matches_from(["cdnctl", "config", "history", "-o", o])?;
        let m = m.subcommand_matches("config").unwrap();
        let m = m.subcommand_matches("history").unwrap();
        Ok(*m.get_one::<Format>("output").unwrap())
    }

    #[test]
    fn the_flag_refuses_a_format_the_listing_cannot_print() {
        assert_eq!(parse(Format::NO_WIDE, "yaml").unwrap(), Format::Yaml);
        assert_eq!(parse(Format::ALL, "wide").unwrap(), Format::Wide);
        let e = parse(Format::NO_WIDE, "wide").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            refused_format(&e).as_deref(),
            Some("config history does not support -o wide (use table, json or yaml)")
        );
        // Not a format at all: clap's error, naming only what is honoured.
        let e = parse(Format::NO_WIDE, "xml").unwrap_err();
        assert_eq!(refused_format(&e), None);
        assert!(
            e.to_string()
                .contains("[possible values: table, json, yaml]"),
            "{e}"
        );
        let help = cli(Format::NO_WIDE)
            .find_subcommand_mut("config")
            .and_then(|c| c.find_subcommand_mut("history"))
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("- json") && !help.contains("wide"), "{help}");
    }

    #[test]
    fn words_colour_by_meaning() {
        let c = Cell::word(ApplyResult::Pending);
        assert_eq!((c.text.as_str(), c.tone), ("pending", Tone::Warning));
        assert_eq!(Cell::word(NodeStatus::Offline).tone, Tone::Bad);
        assert_eq!(Tone::Good.colour(), Some(Color::Green));
        assert_eq!(Cell::word(NodeStatus::Unspecified).text, "unknown");
    }

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
