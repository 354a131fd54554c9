//! The lines of Format-List text: decoding, command lines, `Name : Value`, continuation lines.

use std::path::Path;

use super::MAX_FILE_BYTES;
use crate::config::ConfigError;

/// One `Name : Value`, its continuation lines joined.
#[derive(Debug, Clone)]
pub(super) struct Property {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) line: usize,
    /// Column (in characters) where the value starts: continuation lines are indented to it.
    pub(super) value_column: usize,
}

/// The text of a `--sfb-config` file: UTF-16 (LE or BE, with its BOM) or UTF-8 (BOM optional).
pub fn decode(bytes: &[u8], path: &Path) -> Result<String, ConfigError> {
    let fail = |message: String| ConfigError::PastedFile {
        path: path.to_owned(),
        message,
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(fail(format!(
            "{} bytes is more than a pasted configuration holds ({} at most): is this the Format-List output?",
            bytes.len(),
            MAX_FILE_BYTES
        )));
    }
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err(fail(
                "UTF-16 text with an odd number of bytes: the file is cut off; save the output again".into(),
            ));
        }
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| {
            fail("invalid UTF-16 text (an unpaired surrogate): save the output again".into())
        })
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => {
            let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
            String::from_utf8(rest.to_vec()).map_err(|e| {
                fail(format!(
                    "not UTF-8 or UTF-16 text (invalid byte at offset {}): save the output with `Out-File` (UTF-16) or `Out-File -Encoding utf8`",
                    e.utf8_error().valid_up_to()
                ))
            })
        }
    }
}

/// What a line is, before blocks are built.
pub(super) enum LineKind<'a> {
    Blank,
    /// A command line; the cmdlet, or none for a bare prompt.
    Command(Option<&'a str>),
    Text,
}

/// `PS C:\> Get-CsBlockedDomain | fl`, `[edge01]: PS C:\Users\me> Get-CsAllowedDomain`, or the bare command.
pub(super) fn classify(line: &str) -> LineKind<'_> {
    let t = line.trim();
    if t.is_empty() {
        return LineKind::Blank;
    }
    let prompt = t.find("PS ").and_then(|i| {
        t[i + 3..]
            .find('>')
            .map(|j| t[i + 3 + j + 1..].trim_start())
    });
    let command = prompt.unwrap_or(t);
    let word = command
        .split(|c: char| c.is_whitespace() || c == '|')
        .next()
        .unwrap_or_default();
    let cmdlet_like = word.split_once('-').is_some_and(|(verb, noun)| {
        verb.len() >= 2
            && verb.chars().all(|c| c.is_ascii_alphabetic())
            && !noun.is_empty()
            && noun.chars().all(|c| c.is_ascii_alphanumeric())
    });
    match prompt {
        Some(_) if word.is_empty() => LineKind::Command(None),
        Some(_) if cmdlet_like => LineKind::Command(Some(word)),
        // PowerShell's own error lines read `Get-CsAllowedDomain : message`: not a command.
        None if cmdlet_like && !t.contains(" : ") => LineKind::Command(Some(word)),
        _ => LineKind::Text,
    }
}

pub(super) fn indent_of(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).count()
}

/// `Name : Value` at line `n`, or the error saying what was expected.
pub(super) fn property(line: &str, n: usize, path: &Path) -> Result<Property, ConfigError> {
    let indent = indent_of(line);
    let body: String = line.chars().skip(indent).collect();
    let bad = || {
        let shown: String = body.trim_end().chars().take(60).collect();
        ConfigError::Pasted {
            path: path.to_owned(),
            line: n,
            message: format!(
                "expected `Name : Value` as Format-List prints it (a property name, spaces, a colon, the value), found \"{shown}\""
            ),
        }
    };
    let (name, rest) = body.split_once(':').ok_or_else(bad)?;
    let name = name.trim_end();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(bad());
    }
    let skip_space = usize::from(rest.starts_with(' '));
    let value_column =
        indent + body.split_once(':').map_or(0, |(n, _)| n.chars().count()) + 1 + skip_space;
    Ok(Property {
        name: name.to_owned(),
        value: rest.chars().skip(skip_space).collect(),
        line: n,
        value_column,
    })
}

/// The piece of a wrapped value on a continuation line.
pub(super) fn continuation(line: &str, value_column: usize) -> String {
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(value_column).collect();
    if head.chars().all(char::is_whitespace) {
        chars.collect()
    } else {
        line.trim_start().to_owned()
    }
}
