//! The two text formats Prometheus scrapes, and which one a scraper gets.
//!
//! prometheus-client encodes OpenMetrics 1.0 only. Prometheus itself asks
//! for OpenMetrics first, but `promtool check metrics`, older Prometheus
//! servers, other scrapers and people with `curl` expect the classic text
//! format 0.0.4, which is also the default when the scraper says nothing
//! (no `Accept`, `*/*`). [`to_text_004`] turns the OpenMetrics encoding
//! into it: counters keep their `_total` name on the `# HELP` and `# TYPE`
//! lines (OpenMetrics names the family without it), `unknown` becomes
//! `untyped`, and what 0.0.4 has no place for goes (`# UNIT`, `# EOF`,
//! `_created` samples, exemplars).

/// `Content-Type` of the classic text format.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `Content-Type` of OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A text format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Text004,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text004 => TEXT_004,
            Format::OpenMetrics => OPENMETRICS,
        }
    }
}

/// The format for a scraper's `Accept` header: OpenMetrics when it asks for
/// `application/openmetrics-text` with a weight at least that of the
/// classic format, else the text format 0.0.4 (also without a header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text004;
    };
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version = None;
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.parse().unwrap_or(0.0),
                "version" => version = Some(v.to_string()),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            // A text/plain of another version is not ours to serve.
            "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => {
                text = text.max(q);
            }
            "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text004
    }
}

/// `# HELP` text as 0.0.4 escapes it (backslash and newline only; an
/// OpenMetrics `\"` is a plain quote there).
fn help_004(text: &str) -> String {
    text.replace("\\\"", "\"")
}

/// A sample line without its exemplar (` # {…} value`).
fn without_exemplar(line: &str) -> &str {
    // Label values may hold " # " only inside quotes: find the first
    // " # " outside them.
    let bytes = line.as_bytes();
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted && i > 0 && bytes[i - 1] == b' ' => return line[..i - 1].trim_end(),
            _ => {}
        }
    }
    line
}

/// The metric name of a sample line.
fn sample_name(line: &str) -> &str {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    &line[..end]
}

/// The OpenMetrics text `openmetrics` in the Prometheus text format 0.0.4.
pub fn to_text_004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The family being written: its OpenMetrics name and type.
    let mut family = String::new();
    let mut kind = String::new();
    // A HELP line waits for its TYPE, which decides the name.
    let mut help: Option<(String, String)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name.to_string(), help_004(text)));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family = name.to_string();
            kind = t.trim().to_string();
            let shown = if kind == "counter" && !family.ends_with("_total") {
                format!("{family}_total")
            } else {
                family.clone()
            };
            if let Some((h, text)) = help.take()
                && h == family
            {
                out.push_str(&format!("# HELP {shown} {text}\n"));
            }
            let t004 = match kind.as_str() {
                "counter" | "gauge" | "histogram" | "summary" => kind.as_str(),
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {shown} {t004}\n"));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            // # UNIT, # EOF, comments.
            continue;
        }
        let name = sample_name(line);
        if name.len() == family.len() + "_created".len()
            && name.starts_with(family.as_str())
            && name.ends_with("_created")
            && matches!(kind.as_str(), "counter" | "histogram" | "summary")
        {
            continue;
        }
        out.push_str(without_exemplar(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_2_gets_openmetrics_and_others_the_classic_format() {
        // What Prometheus 2.42 sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(negotiate(None), Format::Text004);
        assert_eq!(negotiate(Some("*/*")), Format::Text004);
        assert_eq!(negotiate(Some("text/plain")), Format::Text004);
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5"
            )),
            Format::Text004
        );
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text004
        );
        assert_eq!(negotiate(Some("garbage;;;q=x,")), Format::Text004);
    }

    #[test]
    fn counters_keep_total_and_what_0_0_4_lacks_goes() {
        let om = "\
# HELP requests Requests \\\"served\\\".
# TYPE requests counter
requests_total{code=\"200\"} 3 # {trace_id=\"a\"} 1.0
requests_created{code=\"200\"} 1700000000.0
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_sum 0.5
latency_seconds_count 2
latency_seconds_bucket{le=\"+Inf\"} 2
# HELP up_things Things up.
# TYPE up_things gauge
up_things{path=\"a # b\"} 1
# HELP odd Something.
# TYPE odd unknown
odd 4
# EOF
";
        let text = to_text_004(om);
        assert_eq!(
            text,
            "\
# HELP requests_total Requests \"served\".
# TYPE requests_total counter
requests_total{code=\"200\"} 3
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_sum 0.5
latency_seconds_count 2
latency_seconds_bucket{le=\"+Inf\"} 2
# HELP up_things Things up.
# TYPE up_things gauge
up_things{path=\"a # b\"} 1
# HELP odd Something.
# TYPE odd untyped
odd 4
"
        );
    }
}
