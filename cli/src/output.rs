//! The one place cdnctl prints. Every listing — nodes, config status and
//! history, push and rollback reports, exec history and the fan-out
//! summary, audit, events, contexts, whoami — is a [`Listing`] (most are a
//! list of [`Row`]s) that the [`Printer`] writes in the `-o` [`Format`] the
//! user chose, kubectl's set: a table, a wide table, JSON, YAML, names
//! (`node/agent-1`), a JSONPath template or custom columns. A listing
//! declares the formats it honours; its `-o` flag ([`formats`]) refuses
//! any other, and a bad template, while the command line is parsed, before
//! a file is read or the master asked.
//!
//! Data goes to stdout, summaries, "No nodes found." and one-line errors
//! to stderr; tables never wrap a row (a terminal narrower than the table
//! wraps or cuts the line itself, as with kubectl) and no line ends in
//! spaces; colour only on a terminal and without `NO_COLOR`; a closed
//! stdout is not an error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use cdn_proto::v1::{ApplyResult, NodeStatus};
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use comfy_table::{Color, ContentArrangement, presets};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::CliError;
use crate::template::{Columns, Template};

/// The kinds of `-o`, as kubectl has them; what a listing honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A table of the main columns.
    Table,
    /// A table with every column.
    Wide,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
    /// `kind/name`, one per line.
    Name,
    /// A JSONPath template.
    JsonPath,
    /// Columns picked by JSONPath.
    CustomColumns,
}

impl Kind {
    /// Every kind: for listings with a wide form.
    pub const ALL: &'static [Kind] = &[
        Kind::Table,
        Kind::Wide,
        Kind::Json,
        Kind::Yaml,
        Kind::Name,
        Kind::JsonPath,
        Kind::CustomColumns,
    ];
    /// Every kind but `wide`: for listings without a wide form.
    pub const NO_WIDE: &'static [Kind] = &[
        Kind::Table,
        Kind::Json,
        Kind::Yaml,
        Kind::Name,
        Kind::JsonPath,
        Kind::CustomColumns,
    ];

    /// The word given to `-o` (before `=` for the templates).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Wide => "wide",
            Kind::Json => "json",
            Kind::Yaml => "yaml",
            Kind::Name => "name",
            Kind::JsonPath => "jsonpath",
            Kind::CustomColumns => "custom-columns",
        }
    }

    /// How it is written on the command line (`jsonpath=TEMPLATE`).
    fn spelled(self) -> &'static str {
        match self {
            Kind::JsonPath => "jsonpath=TEMPLATE",
            Kind::CustomColumns => "custom-columns=SPEC",
            other => other.word(),
        }
    }

    /// What it prints, for `--help`.
    fn help(self) -> &'static str {
        match self {
            Kind::Table => "a table of the main columns",
            Kind::Wide => "a table with every column",
            Kind::Json => "JSON, for scripts",
            Kind::Yaml => "YAML, for scripts",
            Kind::Name => "kind/name, one per line (node/agent-1)",
            Kind::JsonPath => "a kubectl JSONPath template: jsonpath='{.items[*].name}'",
            Kind::CustomColumns => "columns by JSONPath: custom-columns=NAME:.name,STATUS:.status",
        }
    }

    /// What the user writes for the flag to pick this kind without its
    /// argument: `jsonpath=` for the templates.
    fn value_name(self) -> &'static str {
        match self {
            Kind::JsonPath => "jsonpath=",
            Kind::CustomColumns => "custom-columns=",
            other => other.word(),
        }
    }

    fn parse(word: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.word() == word)
    }
}

/// The `-o` a user chose: a [`Kind`], with its template.
#[derive(Debug, Clone, Default)]
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
    /// `kind/name`, one per line.
    Name,
    /// A kubectl JSONPath template.
    JsonPath(Template),
    /// kubectl's custom columns.
    CustomColumns(Columns),
}

impl Format {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Format::Table => Kind::Table,
            Format::Wide => Kind::Wide,
            Format::Json => Kind::Json,
            Format::Yaml => Kind::Yaml,
            Format::Name => Kind::Name,
            Format::JsonPath(_) => Kind::JsonPath,
            Format::CustomColumns(_) => Kind::CustomColumns,
        }
    }

    /// Whether it is for people (tables, names): an empty listing then says
    /// so on stderr.
    fn says_empty(&self) -> bool {
        matches!(
            self.kind(),
            Kind::Table | Kind::Wide | Kind::Name | Kind::CustomColumns
        )
    }

    /// Parses an `-o` value: `table`, …, `jsonpath=TEMPLATE`,
    /// `custom-columns=SPEC`.
    pub fn parse(value: &str) -> Result<Format, FormatError> {
        let (word, arg) = match value.split_once('=') {
            Some((w, a)) => (w, Some(a)),
            None => (value, None),
        };
        let kind = Kind::parse(word).ok_or(FormatError::Unknown)?;
        match (kind, arg) {
            (Kind::JsonPath, Some(t)) if !t.is_empty() => Template::parse(t)
                .map(Format::JsonPath)
                .map_err(|e| FormatError::Bad(format!("-o jsonpath: {e}"))),
            (Kind::CustomColumns, Some(spec)) if !spec.is_empty() => Columns::parse(spec)
                .map(Format::CustomColumns)
                .map_err(|e| FormatError::Bad(format!("-o custom-columns: {e}"))),
            (Kind::JsonPath, None) | (Kind::JsonPath, Some("")) => Err(FormatError::Bad(
                "-o jsonpath needs a template: -o jsonpath='{.items[*].name}'".into(),
            )),
            (Kind::CustomColumns, None) | (Kind::CustomColumns, Some("")) => Err(FormatError::Bad(
                "-o custom-columns needs columns: -o custom-columns=NAME:.name,STATUS:.status"
                    .into(),
            )),
            (_, Some(_)) => Err(FormatError::Bad(format!("-o {word} takes no `=` argument"))),
            (Kind::Table, None) => Ok(Format::Table),
            (Kind::Wide, None) => Ok(Format::Wide),
            (Kind::Json, None) => Ok(Format::Json),
            (Kind::Yaml, None) => Ok(Format::Yaml),
            (Kind::Name, None) => Ok(Format::Name),
        }
    }
}

/// Why an `-o` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// Not a format at all.
    Unknown,
    /// A format with a bad or missing argument: what is wrong.
    Bad(String),
}

/// Something cdnctl prints in the `-o` formats: what JSON and YAML
/// serialize, and the human form `table` (and `wide`) show.
pub trait Listing {
    /// The formats it honours; its `-o` flag takes only these
    /// (`value_parser = output::formats(X::FORMATS)`).
    const FORMATS: &'static [Kind] = Kind::NO_WIDE;

    /// The key in [`Listing::document`] of the array whose items
    /// `-o custom-columns` prints one row each; None: the document is one
    /// object, printed as one row.
    const ITEMS: Option<&'static str> = None;

    /// What `-o json` and `-o yaml` print.
    fn data(&self) -> impl Serialize;

    /// What `-o jsonpath` and `-o custom-columns` read: [`Listing::data`]
    /// as JSON, unless a listing says otherwise (a list of rows reads as
    /// `{"items": [...]}`, as kubectl's List).
    fn document(&self) -> Result<Value, CliError> {
        serde_json::to_value(self.data())
            .map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))
    }

    /// What `-o name` prints: `kind/name` of each thing listed.
    fn names(&self) -> Vec<String>;

    /// What `-o table` prints, or with `wide` what `-o wide` prints.
    fn human(&self, wide: bool) -> Human;

    /// When there is nothing to list: what to say on stderr instead of a
    /// table ("No nodes found.").
    fn empty(&self) -> Option<&'static str> {
        None
    }

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
    /// Text as it is: a `key: value` list, a sentence.
    Text(String),
    /// Nothing on stdout (the note on stderr says it all).
    Nothing,
}

/// One row of a table: its columns and cells. A `Vec` of rows is a
/// listing; rows also make the tables inside other listings
/// ([`Table::of`]) and the lines of a stream ([`Printer::record`]).
pub trait Row {
    /// The formats a list of these rows honours.
    const FORMATS: &'static [Kind] = Kind::NO_WIDE;
    /// What an empty list says, on stderr, in the formats for people.
    const EMPTY: &'static str = "No resources found.";
    /// Least width of each column, so that rows printed later line up.
    const MIN_WIDTHS: &'static [usize] = &[];

    /// Column headers; `wide` adds the wide form's.
    fn columns(wide: bool) -> Vec<&'static str>;

    /// This row's cells, one per column.
    fn cells(&self, wide: bool) -> Vec<Cell>;

    /// What `-o name` prints for it: `kind/name` (`node/agent-1`).
    fn name(&self) -> String;
}

impl<R: Row + Serialize> Listing for Vec<R> {
    const FORMATS: &'static [Kind] = R::FORMATS;
    const ITEMS: Option<&'static str> = Some("items");

    fn data(&self) -> impl Serialize {
        self
    }

    fn document(&self) -> Result<Value, CliError> {
        let items = serde_json::to_value(self)
            .map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))?;
        Ok(serde_json::json!({ "items": items }))
    }

    fn names(&self) -> Vec<String> {
        self.iter().map(Row::name).collect()
    }

    fn human(&self, wide: bool) -> Human {
        Human::Table(Table::of(self, wide))
    }

    fn empty(&self) -> Option<&'static str> {
        self.is_empty().then_some(R::EMPTY)
    }
}

/// A table before layout: header, rows and the least width of each column.
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
    min_widths: &'static [usize],
}

impl Table {
    /// The table of `rows`, with the wide form's columns if `wide`.
    pub fn of<R: Row>(rows: &[R], wide: bool) -> Self {
        Self {
            columns: R::columns(wide).into_iter().map(str::to_string).collect(),
            rows: rows.iter().map(|r| r.cells(wide)).collect(),
            min_widths: R::MIN_WIDTHS,
        }
    }

    /// The custom columns `columns` of each item of `items`.
    fn custom(columns: &Columns, items: &[Value]) -> Self {
        Self {
            columns: columns.headers(),
            rows: items
                .iter()
                .map(|item| columns.cells(item).into_iter().map(Cell::new).collect())
                .collect(),
            min_widths: &[],
        }
    }

    /// Laid out in kubectl's plain style: no borders, two spaces between
    /// columns, every column at least `at_least` wide, never wrapped
    /// inside a cell (a narrow terminal wraps or cuts the whole line
    /// itself). The header is bold when colour is on.
    fn layout(self, header: bool, at_least: &[u16]) -> comfy_table::Table {
        let mut t = comfy_table::Table::new();
        t.load_preset(presets::NOTHING);
        t.set_content_arrangement(ContentArrangement::Disabled);
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

/// A laid-out table as text: every line without its trailing spaces.
fn table_text(t: &comfy_table::Table) -> String {
    t.lines()
        .map(|line| trim_line_end(&line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` without trailing spaces, also those just before a closing
/// colour code (a coloured last cell).
fn trim_line_end(line: &str) -> String {
    const RESET: &str = "\u{1b}[0m";
    let mut rest = line.trim_end();
    let mut resets = 0;
    while let Some(r) = rest.strip_suffix(RESET) {
        rest = r.trim_end();
        resets += 1;
    }
    format!("{rest}{}", RESET.repeat(resets))
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

    /// This cell, coloured as `tone` says.
    pub fn tone(self, tone: Tone) -> Self {
        Self { tone, ..self }
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
/// only those; another format, or a bad template, is a one-line usage
/// error (see [`parse`]).
///
/// [`parse`]: crate::parse
pub fn formats(honoured: &'static [Kind]) -> FormatParser {
    FormatParser { honoured }
}

/// Parses `-o` for one listing; made by [`formats`].
#[derive(Debug, Clone, Copy)]
pub struct FormatParser {
    honoured: &'static [Kind],
}

impl TypedValueParser for FormatParser {
    type Value = Format;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Format, clap::Error> {
        let text = value.to_string_lossy();
        match Format::parse(&text) {
            Ok(f) if self.honoured.contains(&f.kind()) => Ok(f),
            Ok(f) => Err(refusal(cmd, f.kind(), self.honoured)),
            Err(FormatError::Bad(message)) => Err(usage_error(message)),
            // Not a format at all: clap's own error, naming the honoured ones.
            Err(FormatError::Unknown) => {
                let mut e = clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd);
                if let Some(arg) = arg {
                    e.insert(
                        ContextKind::InvalidArg,
                        ContextValue::String(arg.to_string()),
                    );
                }
                e.insert(
                    ContextKind::InvalidValue,
                    ContextValue::String(text.into_owned()),
                );
                e.insert(
                    ContextKind::ValidValue,
                    ContextValue::Strings(
                        self.honoured
                            .iter()
                            .map(|k| k.spelled().to_string())
                            .collect(),
                    ),
                );
                Err(e)
            }
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            self.honoured
                .iter()
                .map(|k| PossibleValue::new(k.value_name()).help(k.help())),
        ))
    }
}

/// A usage error with `message` as cdnctl's one line (see
/// [`refused_format`]).
fn usage_error(message: String) -> clap::Error {
    let mut e = clap::Error::raw(ErrorKind::InvalidValue, format!("{message}\n"));
    e.insert(ContextKind::Custom, ContextValue::String(message));
    e
}

/// The error of an `-o` that `cmd`'s listing does not honour: "config
/// history does not support -o wide (use table, json, …)". It carries the
/// message for [`refused_format`] to find.
fn refusal(cmd: &clap::Command, refused: Kind, honoured: &[Kind]) -> clap::Error {
    // "cdnctl config history" while parsing: the command without the binary.
    let listing = cmd
        .get_bin_name()
        .and_then(|b| b.split_once(' '))
        .map_or(cmd.get_name(), |(_, path)| path);
    let mut names: Vec<&str> = honoured.iter().map(|k| k.spelled()).collect();
    let last = names.pop().unwrap_or_default();
    let choice = if names.is_empty() {
        last.to_string()
    } else {
        format!("{} or {last}", names.join(", "))
    };
    usage_error(format!(
        "{listing} does not support -o {} (use {choice})",
        refused.word()
    ))
}

/// The one-line message of a refused `-o` or a bad template, if clap's
/// error `e` is one.
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
    /// Column widths of the table printed so far; None before the first.
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
    /// line; in YAML one document each; a template applied to the record.
    pub fn record<R: Row + Serialize>(&mut self, row: &R) -> Result<(), CliError> {
        self.render_record(row)?.write()
    }

    /// A stream ended: if it had no record, say so on stderr as an empty
    /// listing does.
    pub fn end_of_stream<R: Row>(&self) {
        if !self.streaming && self.format.says_empty() {
            print_diagnostic(R::EMPTY);
        }
    }

    /// `table` as text, continuing the tables printed before.
    fn table(&mut self, table: Table) -> String {
        let at_least = self.widths.clone().unwrap_or_default();
        let t = table.layout(self.widths.is_none(), &at_least);
        let now = t.column_max_content_widths();
        self.widths = Some(match self.widths.take() {
            None => now,
            Some(before) => before
                .iter()
                .zip(now.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| *a.max(b))
                .collect(),
        });
        table_text(&t)
    }

    fn render<L: Listing>(&mut self, listing: &L) -> Result<Printed, CliError> {
        debug_assert!(
            L::FORMATS.contains(&self.format.kind()),
            "{:?}",
            self.format
        );
        let empty = listing.empty().filter(|_| self.format.says_empty());
        let wide = match &self.format {
            Format::Json => return Ok(Printed::data(json(&listing.data(), true)?)),
            Format::Yaml => return Ok(Printed::data(yaml(&listing.data())?)),
            Format::JsonPath(t) => {
                return Ok(Printed::raw(t.render(&listing.document()?)));
            }
            _ if empty.is_some() => {
                return Ok(Printed {
                    note: empty.map(str::to_string),
                    text: None,
                    raw: false,
                });
            }
            Format::Name => return Ok(Printed::data(listing.names().join("\n"))),
            Format::CustomColumns(columns) => {
                let document = listing.document()?;
                let items = match L::ITEMS {
                    Some(key) => document
                        .get(key)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    None => vec![document],
                };
                let text = self.table(Table::custom(columns, &items));
                return Ok(Printed::data(text));
            }
            Format::Table => false,
            Format::Wide => true,
        };
        let text = match listing.human(wide) {
            Human::Table(t) => Some(self.table(t)),
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
            raw: false,
        })
    }

    fn render_record<R: Row + Serialize>(&mut self, row: &R) -> Result<Printed, CliError> {
        debug_assert!(
            R::FORMATS.contains(&self.format.kind()),
            "{:?}",
            self.format
        );
        let first = !std::mem::replace(&mut self.streaming, true);
        let header = first && !no_headers();
        let document = || {
            serde_json::to_value(row)
                .map_err(|e| CliError::Local(format!("cannot render JSON: {e}")))
        };
        let wide = match &self.format {
            Format::Json => return Ok(Printed::data(json(row, false)?)),
            Format::Yaml => return Ok(Printed::data(format!("---\n{}", yaml(row)?.trim_end()))),
            Format::Name => return Ok(Printed::data(row.name())),
            Format::JsonPath(t) => return Ok(Printed::raw(t.render(&document()?))),
            Format::CustomColumns(columns) => {
                let headers = columns.headers();
                let widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
                let cells = columns.cells(&document()?);
                let mut text = line(cells.iter().map(String::as_str), &widths);
                if header {
                    text = format!(
                        "{}\n{text}",
                        line(headers.iter().map(String::as_str), &widths)
                    );
                }
                return Ok(Printed::data(text));
            }
            Format::Table => false,
            Format::Wide => true,
        };
        let cells = row.cells(wide);
        let mut text = line(cells.iter().map(|c| c.text.as_str()), R::MIN_WIDTHS);
        if header {
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
    /// Written exactly as it is (a JSONPath template's output), not as
    /// lines.
    raw: bool,
}

impl Printed {
    fn data(text: String) -> Self {
        Self {
            note: None,
            text: Some(text),
            raw: false,
        }
    }

    fn raw(text: String) -> Self {
        Self {
            note: None,
            text: Some(text),
            raw: true,
        }
    }

    fn write(self) -> Result<(), CliError> {
        if let Some(note) = self.note {
            print_diagnostic(&note);
        }
        match self.text {
            Some(text) if self.raw => print_raw(&text),
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
    print_diagnostic(&table_string(rows, false));
}

/// `rows` laid out as a table with its header (unless `--no-headers`),
/// for a listing whose human form holds more than one table.
pub fn table_string<R: Row>(rows: &[R], wide: bool) -> String {
    table_text(&Table::of(rows, wide).layout(true, &[]))
}

/// `texts` padded to `widths` with two spaces between, the last as it is,
/// without trailing spaces.
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
    out.trim_end().to_string()
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

/// The `-o` value `spec` parsed, for tests.
#[cfg(test)]
pub(crate) fn format(spec: &str) -> Format {
    Format::parse(spec).expect("a format")
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
        const FORMATS: &'static [Kind] = Kind::ALL;
        const EMPTY: &'static str = "No probes.";
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

        fn name(&self) -> String {
            format!("probe/{}", self.name)
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

    fn stdout(listing: &impl Listing, spec: &str) -> String {
        rendered(listing, format(spec)).1.expect("stdout")
    }

    #[test]
    fn one_listing_in_every_format() {
        let rows = probes();
        assert_eq!(
            stdout(&rows, "table"),
            "NAME      STATUS\nagent-1   online\nagent-22  offline"
        );
        assert_eq!(
            stdout(&rows, "wide"),
            "NAME      STATUS    DETAIL\n\
             agent-1   online    -\n\
             agent-22  offline   agent shut down"
        );
        assert_eq!(
            stdout(&rows, "json"),
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
            stdout(&rows, "yaml"),
            "- name: agent-1\n  status: online\n  detail: \"\"\n\
             - name: agent-22\n  status: offline\n  detail: agent shut down\n"
        );
        assert_eq!(stdout(&rows, "name"), "probe/agent-1\nprobe/agent-22");
        assert_eq!(
            stdout(&rows, "jsonpath={.items[*].name}"),
            "agent-1 agent-22"
        );
        assert_eq!(
            stdout(
                &rows,
                r#"jsonpath={range .items[*]}{.name}={.status}{"\n"}{end}"#
            ),
            "agent-1=online\nagent-22=offline\n"
        );
        assert_eq!(
            stdout(&rows, "custom-columns=NODE:.name,WHY:.detail,X:.missing"),
            "NODE      WHY              X\n\
             agent-1                    <none>\n\
             agent-22  agent shut down  <none>"
        );
    }

    #[test]
    fn no_line_ends_in_spaces() {
        let rows = probes();
        for spec in ["table", "wide", "custom-columns=A:.detail,B:.name"] {
            let text = stdout(&rows, spec);
            for line in text.lines() {
                assert_eq!(line, line.trim_end(), "-o {spec}: {text:?}");
            }
        }
        assert_eq!(
            trim_line_end("\u{1b}[32monline   \u{1b}[0m  "),
            "\u{1b}[32monline\u{1b}[0m"
        );
    }

    #[test]
    fn an_empty_listing_says_so_on_stderr_only() {
        let none = Vec::<Probe>::new();
        for spec in ["table", "wide", "name", "custom-columns=N:.name"] {
            assert_eq!(
                rendered(&none, format(spec)),
                (Some("No probes.".into()), None),
                "-o {spec}"
            );
        }
        assert_eq!(rendered(&none, format("json")), (None, Some("[]".into())));
        assert_eq!(rendered(&none, format("yaml")), (None, Some("[]\n".into())));
        assert_eq!(
            rendered(&none, format("jsonpath={.items[*].name}")),
            (None, Some(String::new()))
        );
    }

    #[test]
    fn later_tables_continue_the_first() {
        let mut p = Printer::new(Format::Table);
        // Nothing yet: the first table to come still has its header.
        let nothing = p.render(&Vec::<Probe>::new()).unwrap();
        assert_eq!(nothing.text, None);
        let first = p.render(&probes()).unwrap().text.unwrap();
        assert!(first.starts_with("NAME "), "{first}");
        let more = vec![Probe {
            name: "a",
            status: NodeStatus::Degraded,
            detail: "",
        }];
        let text = p.render(&more).unwrap().text.unwrap();
        // No header; NAME as wide as in the first table.
        assert_eq!(text, "a         degraded");
    }

    struct Report(Vec<Probe>);

    impl Listing for Report {
        fn data(&self) -> impl Serialize {
            &self.0
        }

        fn names(&self) -> Vec<String> {
            vec!["report/1".into()]
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
        // One object: a template reads it as it is, custom columns make
        // one row of it.
        assert_eq!(stdout(&r, "jsonpath={[1].name}"), "agent-22");
        assert_eq!(
            stdout(&r, "custom-columns=FIRST:[0].name"),
            "FIRST\nagent-1"
        );
        assert_eq!(stdout(&r, "name"), "report/1");
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
        let mut p = Printer::new(format("name"));
        assert_eq!(
            p.render_record(&rows[1]).unwrap().text.unwrap(),
            "probe/agent-22"
        );
        let mut p = Printer::new(format(r#"jsonpath={.name}{"\n"}"#));
        assert_eq!(
            p.render_record(&rows[1]).unwrap().text.unwrap(),
            "agent-22\n"
        );
        let mut p = Printer::new(format("custom-columns=WHO:.name,S:.status"));
        assert_eq!(
            p.render_record(&rows[0]).unwrap().text.unwrap(),
            "WHO  S\nagent-1  online"
        );
    }

    fn cli(honoured: &'static [Kind]) -> Command {
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

    fn parse(honoured: &'static [Kind], o: &str) -> Result<Format, clap::Error> {
        let m = cli(honoured).try_get_matches_from(["cdnctl", "config", "history", "-o", o])?;
        let m = m.subcommand_matches("config").unwrap();
        let m = m.subcommand_matches("history").unwrap();
        Ok(m.get_one::<Format>("output").unwrap().clone())
    }

    #[test]
    fn the_flag_refuses_a_format_the_listing_cannot_print() {
        assert_eq!(parse(Kind::NO_WIDE, "yaml").unwrap().kind(), Kind::Yaml);
        assert_eq!(parse(Kind::ALL, "wide").unwrap().kind(), Kind::Wide);
        assert_eq!(
            parse(Kind::ALL, "jsonpath={.items[*].name}")
                .unwrap()
                .kind(),
            Kind::JsonPath
        );
        let e = parse(Kind::NO_WIDE, "wide").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            refused_format(&e).as_deref(),
            Some(
                "config history does not support -o wide (use table, json, yaml, name, \
                 jsonpath=TEMPLATE or custom-columns=SPEC)"
            )
        );
        // Not a format at all: clap's error, naming only what is honoured.
        let e = parse(Kind::NO_WIDE, "xml").unwrap_err();
        assert_eq!(refused_format(&e), None);
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains(
                "[possible values: table, json, yaml, name, jsonpath=TEMPLATE, custom-columns=SPEC]"
            ),
            "{e}"
        );
        let help = cli(Kind::NO_WIDE)
            .find_subcommand_mut("config")
            .and_then(|c| c.find_subcommand_mut("history"))
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("- json") && !help.contains("wide"), "{help}");
        assert!(help.contains("- jsonpath="), "{help}");
    }

    #[test]
    fn bad_templates_are_usage_errors_naming_the_problem() {
        let message = |o: &str| {
            let e = parse(Kind::ALL, o).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{o}");
            refused_format(&e).unwrap_or_else(|| panic!("{o}: {e}"))
        };
        assert_eq!(
            message("jsonpath={.items"),
            "-o jsonpath: `{` at position 1 is not closed with `}`"
        );
        assert!(message("jsonpath").contains("needs a template"));
        assert!(message("jsonpath=").contains("needs a template"));
        assert!(message("custom-columns=").contains("needs columns"));
        assert!(message("custom-columns=NAME").contains("`NAME` is not HEADER:PATH"));
        assert!(message("custom-columns").contains("needs columns"));
        assert_eq!(message("json=x"), "-o json takes no `=` argument");
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
