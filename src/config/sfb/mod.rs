//! `serve --sfb-config FILE`: the `Format-List` text of `Get-CsAccessEdgeConfiguration`,
//! `Get-CsAllowedDomain` and `Get-CsBlockedDomain`, as pasted from a real Edge, to federation settings.
//! Pure: bytes or text in, [`Pasted`] settings out; the caller reads the files.
//!
//! What is read:
//! - UTF-16 LE or BE with a byte-order mark (what PowerShell's `Out-File` and `>` write), or UTF-8 (with or
//!   without a BOM); CRLF or LF line ends.
//! - One object per block, blocks separated by blank lines. A property is `Name : Value`, the names padded
//!   with spaces so that the colons align; an empty value (`ProxyFqdn         :`) is "not set" and keeps
//!   Microsoft's default. A value longer than the console is wrapped onto the following lines, indented to the
//!   value column: a line indented deeper than the block's first line continues the value above it (the
//!   pieces are joined without a separator, as Format-List cut them). Booleans are `True`/`False`, in any case;
//!   a collection is `{a, b}` (`{x}` counts as the value x, `{}` as empty).
//! - Which cmdlet printed a block: a command line above it decides (`PS C:\> Get-CsBlockedDomain | fl`, a
//!   remote prompt `[edge01]: PS C:\>`, or the bare command), until the next command line; the output of any
//!   other command (`Get-CsHostingProvider`, `Test-CsFederatedPartner`, …) is skipped with a note. Without a
//!   command line, the properties decide: `Identity : Global` or an Access Edge setting →
//!   Get-CsAccessEdgeConfiguration; ProxyFqdn, MarkForMonitoring or VerificationLevel → Get-CsAllowedDomain;
//!   only Identity, Domain and Comment (exactly what Get-CsBlockedDomain prints) → Get-CsBlockedDomain.
//! - A property edgesim does not know is a warning naming the file and the line (newer Skype for Business
//!   versions add settings); PowerShell remoting's `PSComputerName`, `RunspaceId` and `PSShowComputerName` are
//!   ignored silently. A line that is not `Name : Value`, a value of the wrong type, a property twice in one
//!   block, or a block no rule recognises is an error naming the file, the line and what was expected.

use std::collections::HashMap;
use std::path::Path;

use super::ConfigError;
use super::federation::{
    AccessEdgeConfig, AllowedDomainEntry, BlockedDomainEntry, Pasted, Source, allowed_entry,
    blocked_entry,
};
use super::validate::{self, SettingProblem};

mod lines;
mod props;
pub use lines::decode;
use lines::{LineKind, Property, classify, continuation, indent_of, property};
use props::{ACCESS_EDGE, ACCESS_EDGE_IGNORED, BLOCKED, Cmdlet, HOSTING_PROVIDER, REMOTING, typed};

/// The largest `--sfb-config` file read: a pasted configuration is a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Which command's output the lines belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Section {
    /// No command line yet: the properties tell.
    Unnamed,
    /// Under `PS …> <cmdlet>` at this line.
    Read(Cmdlet, usize),
    /// Under another command (name, line): skipped.
    Skipped(String, usize),
}

/// One object: consecutive non-blank lines.
#[derive(Debug, Clone)]
struct Block {
    margin: usize,
    properties: Vec<Property>,
}

impl Block {
    fn line(&self) -> usize {
        self.properties.first().map_or(0, |p| p.line)
    }

    fn has(&self, name: &str) -> bool {
        self.properties
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name))
    }

    fn line_of(&self, name: &str) -> usize {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map_or(self.line(), |p| p.line)
    }
}

/// Reads the Format-List text of `path` (which labels messages and sources).
pub fn parse(text: &str, path: &Path) -> Result<Pasted, ConfigError> {
    let mut reader = Reader {
        path,
        out: Pasted::default(),
        section: Section::Unnamed,
        last_text: 0,
    };
    let mut block: Option<Block> = None;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        match classify(line) {
            LineKind::Blank => {
                if let Some(b) = block.take() {
                    reader.block(b)?;
                }
                continue;
            }
            LineKind::Command(cmd) => {
                if let Some(b) = block.take() {
                    reader.block(b)?;
                }
                reader.command(cmd, n);
                continue;
            }
            LineKind::Text => {}
        }
        reader.last_text = n;
        if matches!(reader.section, Section::Skipped(..)) {
            continue;
        }
        let indent = indent_of(line);
        match &mut block {
            Some(b) if indent > b.margin => {
                if let Some(p) = b.properties.last_mut() {
                    p.value.push_str(&continuation(line, p.value_column));
                }
            }
            Some(b) => {
                b.margin = indent;
                b.properties.push(property(line, n, path)?);
            }
            None => {
                block = Some(Block {
                    margin: indent,
                    properties: vec![property(line, n, path)?],
                });
            }
        }
    }
    if let Some(b) = block.take() {
        reader.block(b)?;
    }
    reader.command(None, reader.last_text);
    let mut out = reader.out;
    if out.access_edge.is_none() && out.allowed.is_empty() && out.blocked.is_empty() {
        out.notes.push(format!(
            "{}: warning: no Get-CsAccessEdgeConfiguration, Get-CsAllowedDomain or Get-CsBlockedDomain object in the file (an empty list prints nothing: fine if the customer has none)",
            path.display()
        ));
    }
    Ok(out)
}

/// Turns blocks into settings as the lines go by.
struct Reader<'p> {
    path: &'p Path,
    out: Pasted,
    section: Section,
    /// The last line with text so far (where a skipped section ends).
    last_text: usize,
}

impl Reader<'_> {
    fn error(&self, line: usize, message: String) -> ConfigError {
        ConfigError::Pasted {
            path: self.path.to_owned(),
            line,
            message,
        }
    }

    /// A command line (`cmd` none: a bare prompt, or the end of the file): closes a skipped section with
    /// its note, and opens the next section.
    fn command(&mut self, cmd: Option<&str>, n: usize) {
        if let Section::Skipped(name, start) = &self.section {
            self.out.notes.push(format!(
                "{}:{start}: note: the output of `{name}` (lines {start}-{}) is skipped: --sfb-config reads Get-CsAccessEdgeConfiguration, Get-CsAllowedDomain and Get-CsBlockedDomain",
                self.path.display(),
                self.last_text.max(*start)
            ));
        }
        self.last_text = n;
        self.section = match cmd {
            None => Section::Unnamed,
            Some(word) => match Cmdlet::from_name(word) {
                Some(c) => Section::Read(c, n),
                None => Section::Skipped(word.to_owned(), n),
            },
        };
    }

    /// The cmdlet that printed `b`, from its properties alone (`None`: they do not tell).
    fn by_properties(b: &Block) -> Option<Cmdlet> {
        let global = b.properties.iter().any(|p| {
            p.name.eq_ignore_ascii_case("Identity") && p.value.trim().eq_ignore_ascii_case("global")
        });
        let edge_key = ACCESS_EDGE[1..]
            .iter()
            .map(|(n, _)| *n)
            .chain(
                ACCESS_EDGE_IGNORED
                    .iter()
                    .copied()
                    .filter(|n| *n != "VerificationLevel"),
            )
            .find(|n| b.has(n));
        if global || edge_key.is_some() {
            return Some(Cmdlet::AccessEdge);
        }
        if ["ProxyFqdn", "MarkForMonitoring", "VerificationLevel"]
            .iter()
            .any(|n| b.has(n))
        {
            return Some(Cmdlet::Allowed);
        }
        let blocked_only = b.properties.iter().all(|p| {
            BLOCKED.iter().any(|(n, _)| n.eq_ignore_ascii_case(&p.name))
                || REMOTING.iter().any(|n| n.eq_ignore_ascii_case(&p.name))
        });
        (blocked_only && (b.has("Identity") || b.has("Domain"))).then_some(Cmdlet::Blocked)
    }

    fn block(&mut self, b: Block) -> Result<(), ConfigError> {
        if let Some(h) = HOSTING_PROVIDER.iter().find(|n| b.has(n))
            && !matches!(self.section, Section::Read(..))
        {
            self.out.notes.push(format!(
                "{}:{}: warning: this block is Get-CsHostingProvider output ({h}): hosting providers are not emulated, so it is skipped",
                self.path.display(),
                b.line()
            ));
            return Ok(());
        }
        let found = Self::by_properties(&b);
        let cmdlet = match (&self.section, found) {
            (Section::Read(c, at), Some(f)) if *c != f && f != Cmdlet::Blocked => {
                let key = b
                    .properties
                    .iter()
                    .find(|p| {
                        c.properties()
                            .iter()
                            .all(|(n, _)| !n.eq_ignore_ascii_case(&p.name))
                    })
                    .map_or("Identity : Global".to_owned(), |p| p.name.clone());
                return Err(self.error(
                    b.line(),
                    format!(
                        "this block has `{key}`, which {} prints, but it follows `{}` (line {at}); paste each command's output under its own command line",
                        f.name(),
                        c.name()
                    ),
                ));
            }
            (Section::Read(c, _), _) => *c,
            (_, Some(f)) => f,
            (_, None) => {
                let names: Vec<&str> = b.properties.iter().map(|p| p.name.as_str()).collect();
                return Err(self.error(
                    b.line(),
                    format!(
                        "cannot tell which cmdlet printed this block (properties {}): put its command line above it, as the console shows it, e.g. `PS C:\\> Get-CsBlockedDomain | Format-List`",
                        names.join(", ")
                    ),
                ));
            }
        };
        let table = toml::Value::Table(self.table(&b, cmdlet)?);
        let source = Source::Pasted(self.path.to_owned(), b.line());
        let at = |p: SettingProblem| {
            self.error(
                b.line_of(p.setting),
                format!("`{}`: {}", p.setting, p.message),
            )
        };
        let internal = |e: toml::de::Error| {
            self.error(
                b.line(),
                format!(
                    "{} output does not fit edgesim's model: {}",
                    cmdlet.name(),
                    e.message()
                ),
            )
        };
        let mut next = Pasted::default();
        match cmdlet {
            Cmdlet::AccessEdge => {
                let a: AccessEdgeConfig = table.try_into().map_err(internal)?;
                validate::access_edge(&a).map_err(at)?;
                next.access_edge = Some((a, source));
            }
            Cmdlet::Allowed => {
                let e: AllowedDomainEntry = table.try_into().map_err(internal)?;
                next.allowed.push(allowed_entry(&e, source).map_err(at)?);
            }
            Cmdlet::Blocked => {
                let e: BlockedDomainEntry = table.try_into().map_err(internal)?;
                next.blocked.push(blocked_entry(&e, source).map_err(at)?);
            }
        }
        self.out.combine(next)
    }

    /// The block's known properties as a TOML table keyed by their cmdlet names; unknown ones are warnings.
    fn table(&mut self, b: &Block, cmdlet: Cmdlet) -> Result<toml::Table, ConfigError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut table = toml::Table::new();
        for p in &b.properties {
            if let Some(first) = seen.insert(p.name.to_ascii_lowercase(), p.line) {
                return Err(self.error(
                    p.line,
                    format!(
                        "`{}` again (first at line {first}): one block is one object; separate objects with a blank line",
                        p.name
                    ),
                ));
            }
            let value = p.value.trim();
            if value.starts_with('{') && !value.ends_with('}') {
                return Err(self.error(
                    p.line,
                    format!("`{}`: the list opened with {{ does not close with }}; paste the whole value", p.name),
                ));
            }
            let known = cmdlet
                .properties()
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&p.name));
            let Some((name, ty)) = known else {
                let ignored = REMOTING.iter().any(|n| n.eq_ignore_ascii_case(&p.name))
                    || (cmdlet == Cmdlet::AccessEdge
                        && ACCESS_EDGE_IGNORED
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case(&p.name)));
                if !ignored {
                    self.out.notes.push(format!(
                        "{}:{}: warning: unknown property `{}` in {} output, ignored (a newer Skype for Business version? edgesim does not know it)",
                        self.path.display(),
                        p.line,
                        p.name,
                        cmdlet.name()
                    ));
                }
                continue;
            };
            if let Some(v) = typed(name, *ty, value).map_err(|m| self.error(p.line, m))? {
                table.insert((*name).to_owned(), v);
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests;
