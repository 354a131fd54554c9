//! Locating a toml/serde error in its file's text: line, column, the dotted field and a fix. Shared by the
//! Edge configuration and the scenario files.
//!
//! serde loses the position of a value inside an internally tagged enum (`[[dns.records]]` with `type = …`):
//! toml then reports the table's header line and no field. [`TomlFault::new`] finds the key inside that table
//! from what the message quotes (the bad literal, the unknown or missing key, or the kind of value it wanted).

/// A TOML or serde error located in its file's text: the parts of the
/// `file:line:column: field `x.y`: message` + `hint: fix` errors of the configuration and the scenario files.
pub(crate) struct TomlFault {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column of the offending text.
    pub column: usize,
    /// `field `x.y`: ` when the key could be located, else empty.
    pub field: String,
    /// toml's message (first line).
    pub message: String,
    /// What to change.
    pub hint: String,
}

/// Fixes for toml/serde messages: (text the message contains, fix), the first match wins.
pub(crate) type Hints = [(&'static str, &'static str)];

/// The fixes both file formats give.
pub(crate) mod hint {
    pub(crate) const UNKNOWN_FIELD: (&str, &str) = (
        "unknown field",
        "remove the key or correct its spelling; the valid keys are listed above",
    );
    pub(crate) const UNKNOWN_VARIANT: (&str, &str) =
        ("unknown variant", "use one of the values listed above");
    pub(crate) const INVALID_TYPE: (&str, &str) = (
        "invalid type",
        "give the value the type shown (quote strings, no quotes around numbers and booleans)",
    );
    pub(crate) const DUPLICATE: (&str, &str) = ("duplicate", "keep only one definition of the key");
}

impl TomlFault {
    /// Locates `e` in `text`; the hint is the first of `hints` that matches the message, else `fallback`.
    pub(crate) fn new(text: &str, e: &toml::de::Error, hints: &Hints, fallback: &str) -> Self {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().lines().next().unwrap_or_default().to_owned();
        let hint = hints
            .iter()
            .find(|(pattern, _)| message.contains(pattern))
            .map_or(fallback, |(_, fix)| fix)
            .to_owned();
        let (offset, field) = match inside_table(text, span.clone(), &message) {
            Some((offset, field)) => (offset, Some(field)),
            None => {
                let (line, _) = line_col(text, span.start);
                (span.start, field_at(text, line))
            }
        };
        let (line, column) = line_col(text, offset);
        TomlFault {
            line,
            column,
            field: field.map(|f| format!("field `{f}`: ")).unwrap_or_default(),
            message,
            hint,
        }
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

/// The dotted key at a line: the last `[table]` header above it plus the `key =` on it.
fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let key = here.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = table_above(&lines[..line - 1]);
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// The name of the last `[table]` / `[[table]]` header among `lines`.
fn table_above(lines: &[&str]) -> Option<String> {
    lines
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| header_name(l).to_owned())
}

/// `dns.records` of `[[dns.records]]` (a trailing comment allowed).
fn header_name(line: &str) -> &str {
    let line = line.split('#').next().unwrap_or(line);
    line.trim().trim_matches(|c| c == '[' || c == ']').trim()
}

/// When the error points at a whole table (an `[[array]]` header, or an inline `{ … }` / `[ … ]` value), the
/// key inside it that the message is about: its byte offset and its dotted name.
fn inside_table(
    text: &str,
    span: std::ops::Range<usize>,
    message: &str,
) -> Option<(usize, String)> {
    let at = text.get(span.clone())?;
    let (table, body_start, body) = if at.trim_start().starts_with("[[") {
        // The table's keys run from the line after the header to the next header.
        let body_start = text[span.end..]
            .find('\n')
            .map_or(text.len(), |i| span.end + i + 1);
        let rest = &text[body_start..];
        let len = rest
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| rest[i..].trim_start().starts_with('['))
            .unwrap_or(rest.len());
        (header_name(at).to_owned(), body_start, &rest[..len])
    } else if at.starts_with(['{', '[']) {
        let (line, _) = line_col(text, span.start);
        (field_at(text, line)?, span.start, at)
    } else {
        return None;
    };
    let pairs = key_values(body);
    let key = if let Some(k) = quoted(message, "unknown field `") {
        pairs.iter().find(|p| p.key == k)
    } else if let Some(k) = quoted(message, "missing field `") {
        // Nothing to point at inside the table: name the key, at the header.
        return Some((span.start, format!("{table}.{k}")));
    } else if let Some(literal) = literal(message) {
        pairs.iter().find(|p| p.value == literal)
    } else {
        // A value that failed its own parser (an address, a socket address): the key that holds that kind.
        let wanted = ADDRESS_MESSAGES
            .iter()
            .find(|(pattern, _)| message.contains(pattern))
            .map(|(_, key)| *key)?;
        pairs.iter().find(|p| p.key == wanted)
    }?;
    Some((body_start + key.offset, format!("{table}.{}", key.key)))
}

/// Parser messages that do not quote the value, and the key whose value produces them.
const ADDRESS_MESSAGES: &[(&str, &str)] = &[
    ("invalid IPv4 address", "address"),
    ("invalid IPv6 address", "address"),
    ("invalid socket address", "server"),
];

/// The text between `prefix` and the next backtick in `message`.
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

/// The bad value as it is written in the file, from serde's `invalid type: string "abc"` or
/// `invalid value: integer `-1``.
fn literal(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    if let Some(s) = rest.strip_prefix("string \"") {
        let end = s.find("\", expected").or_else(|| s.rfind('"'))?;
        return Some(format!("\"{}\"", &s[..end]));
    }
    let (_, value) = rest.split_once('`')?;
    Some(value.split('`').next()?.to_owned())
}

/// One `key = value` inside a table body.
struct KeyValue<'a> {
    key: &'a str,
    value: &'a str,
    /// Byte offset of the key in the body.
    offset: usize,
}

/// The `key = value` pairs of a table body or an inline table, split at newlines, commas and braces outside
/// quotes; comments dropped.
fn key_values(body: &str) -> Vec<KeyValue<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut push = |from: usize, to: usize| {
        let seg = &body[from..to];
        if let Some((k, v)) = seg.split_once('=') {
            let key = k.trim().trim_matches(|c| c == '{' || c == '[');
            let key = key.trim();
            if !key.is_empty() && !key.contains([' ', '[', ']']) {
                let lead = seg.len() - seg.trim_start().len();
                out.push(KeyValue {
                    key,
                    value: v.trim(),
                    offset: from + lead,
                });
            }
        }
    };
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (_, '\n') => {
                push(start, i);
                start = i + 1;
                quote = None;
                comment = false;
            }
            _ if comment => {}
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => {
                push(start, i);
                comment = true;
                start = i;
            }
            (None, ',' | '{' | '}') => {
                push(start, i);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !comment {
        push(start, body.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(text: &str) -> TomlFault {
        let e = toml::from_str::<crate::config::EdgeConfig>(text).unwrap_err();
        TomlFault::new(text, &e, &[], "fallback")
    }

    #[test]
    fn a_bad_value_in_an_array_of_tables_names_its_key_and_line() {
        let f = fault(
            "[[dns.records]]\nname = \"x.lab\"\ntype = \"SRV\"\nport = \"abc\"  # a comment\ntarget = \"y.lab\"\n\n[limits]\nmax_connections = 4\n",
        );
        assert_eq!((f.line, f.column), (4, 1));
        assert_eq!(f.field, "field `dns.records.port`: ");
        assert_eq!(f.message, "invalid type: string \"abc\", expected u16");
    }

    #[test]
    fn an_address_that_does_not_parse_is_found_by_its_key() {
        let f = fault(
            "[[dns.zones]]\norigin = \"a.lab\"\n[[dns.zones.records]]\nname = \"a.lab\"\ntype = \"A\"\naddress = \"1.2.3\"\n",
        );
        assert_eq!((f.line, f.column), (6, 1));
        assert_eq!(f.field, "field `dns.zones.records.address`: ");
        assert_eq!(f.message, "invalid IPv4 address syntax");
    }

    #[test]
    fn inside_an_inline_array_the_key_is_found_too() {
        let f =
            fault("[dns]\nrecords = [{ name = \"x.lab\", type = \"A\", address = \"1.2.3\" }]\n");
        assert_eq!((f.line, f.column), (2, 42));
        assert_eq!(f.field, "field `dns.records.address`: ");
    }

    #[test]
    fn an_integer_out_of_its_type_is_found_by_its_literal() {
        let f =
            fault("[[dns.records]]\nname = \"x.lab\"\ntype = \"SRV\"\nport = -5\ntarget = \"y\"\n");
        assert_eq!(f.line, 4);
        assert_eq!(f.field, "field `dns.records.port`: ");
    }

    #[test]
    fn a_plain_table_keeps_the_key_toml_points_at() {
        let f = fault("[limits]\nmax_connections = \"many\"\n");
        assert_eq!(f.line, 2);
        assert_eq!(f.field, "field `limits.max_connections`: ");
    }
}
