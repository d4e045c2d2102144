//! The configuration reference (README tables, `master.yml(5)`,
//! `agent.yml(5)`) names exactly the keys the daemons parse, with the
//! defaults their `Default` impls have.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use xtask::config_reference::{AGENT, ConfigFile, MASTER};

/// Every key a row of `file` names.
fn documented(file: &ConfigFile) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for row in file.rows {
        for key in row.keys() {
            assert!(
                keys.insert(key.clone()),
                "{key} has two rows in {}",
                file.name
            );
        }
    }
    keys
}

/// Keys in one set and not the other, both ways, as a message.
fn difference(documented: &BTreeSet<String>, parsed: &BTreeSet<String>) -> String {
    format!(
        "documented but not parsed: {:?}; parsed but not documented: {:?}",
        documented.difference(parsed).collect::<Vec<_>>(),
        parsed.difference(documented).collect::<Vec<_>>()
    )
}

/// The value of a default cell when it is a single code span
/// (`` `10s` `` → `10s`), the form a value takes in the file.
fn literal(default: &str) -> Option<&str> {
    let inner = default.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then_some(inner)
}

/// A default as the file would spell it.
fn spelled(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // `master.addr`: one address or a list of them.
        Value::Array(a) if a.len() == 1 => spelled(&a[0]),
        Value::Null => "unset".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(spelled).collect::<Vec<_>>().join(", ")),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

/// Each row whose default is one literal value has the default the
/// config struct has. Defaults that depend on the machine or on another
/// key (`~/.local/share/masterd`, `<data_dir>/backups`) are skipped.
fn defaults_match(file: &ConfigFile, parsed: &std::collections::BTreeMap<String, Value>) {
    for row in file.rows {
        let Some(stated) = literal(row.default) else {
            continue;
        };
        if stated.starts_with('~') || stated.contains('<') {
            continue;
        }
        for key in row.keys() {
            let actual = spelled(&parsed[&key]);
            if let (Ok(a), Ok(b)) = (stated.parse::<f64>(), actual.parse::<f64>()) {
                assert_eq!(
                    a, b,
                    "{}: `{key}` is documented with default {stated} but defaults to {actual}",
                    file.name
                );
                continue;
            }
            if let (Ok(a), Ok(b)) = (
                humantime::parse_duration(stated),
                humantime::parse_duration(&actual),
            ) {
                assert_eq!(
                    a, b,
                    "{}: `{key}` is documented with default {stated} but defaults to {actual}",
                    file.name
                );
                continue;
            }
            assert_eq!(
                stated, actual,
                "{}: `{key}` is documented with default {stated} but defaults to {actual}",
                file.name
            );
        }
    }
}

#[test]
fn master_yml_reference_names_every_key_masterd_parses_and_no_other() {
    let config = masterd::MasterConfig::default();
    let parsed = cdn_common::keys::dotted(&config, &[]);
    let keys: BTreeSet<String> = parsed.keys().cloned().collect();
    let documented = documented(&MASTER);
    assert_eq!(documented, keys, "{}", difference(&documented, &keys));
    defaults_match(&MASTER, &parsed);
    // Every key of that full file is one the parser takes.
    let text = serde_json::to_string_pretty(&config).expect("serializes");
    cdn_common::config::parse_and_validate::<masterd::MasterConfig>(Path::new("full.yml"), &text)
        .unwrap_or_else(|e| panic!("a master.yml with every key is refused: {e}\n{text}"));
}

#[test]
fn agent_yml_reference_names_every_key_agentd_parses_and_no_other() {
    let config = agentd::AgentConfig::default();
    let parsed = agentd::reload::keys(&config);
    let keys: BTreeSet<String> = parsed.keys().cloned().collect();
    let documented = documented(&AGENT);
    assert_eq!(documented, keys, "{}", difference(&documented, &keys));
    defaults_match(&AGENT, &parsed);
    let text = serde_json::to_string_pretty(&config).expect("serializes");
    cdn_common::config::parse_and_validate::<agentd::AgentConfig>(Path::new("full.yml"), &text)
        .unwrap_or_else(|e| panic!("an agent.yml with every key is refused: {e}\n{text}"));
}

#[test]
fn a_row_naming_keys_of_one_section_expands_to_full_keys() {
    let row = MASTER
        .rows
        .iter()
        .find(|r| r.keys.starts_with("`store.etcd.ca_file`"))
        .expect("the etcd TLS row");
    assert_eq!(
        row.keys(),
        [
            "store.etcd.ca_file",
            "store.etcd.cert_file",
            "store.etcd.key_file"
        ]
    );
}

#[test]
fn tables_in_the_readme_are_the_generated_ones_and_escape_pipes() {
    let table = xtask::config_reference::markdown_table(MASTER.rows);
    let metrics = table
        .lines()
        .find(|l| l.starts_with("| `metrics.addr`"))
        .expect("metrics row");
    // Three cells: a `|` inside a code span is escaped, or GitHub would
    // split the row there.
    let cells = metrics.replace("\\|", "").matches('|').count();
    assert_eq!(cells, 4, "{metrics}");
    let missing = xtask::config_reference::readme_with_tables("no markers here").unwrap_err();
    assert!(missing.contains("master.yml keys"), "{missing}");
}

#[test]
fn man_pages_have_every_key_and_the_reload_rules() {
    for file in [MASTER, AGENT] {
        let page = xtask::config_reference::man_page(&file);
        assert!(page.contains(&format!(".TH {} 5", file.name)), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "KEYS",
            "EXAMPLE",
            "\"SEE ALSO\"",
        ] {
            assert!(
                page.contains(&format!(".SH {section}\n")),
                "{} lacks {section}",
                file.name
            );
        }
        assert!(
            page.contains("SIGHUP"),
            "{} says nothing of reloads",
            file.name
        );
        for key in documented(&file) {
            // roff spells a hyphen `\-`; keys have none, but say so.
            let first = key.rsplit('.').next().unwrap_or(&key);
            assert!(page.contains(first), "{} lacks {key}", file.name);
        }
    }
}
