//! The NSS key log: one line per TLS secret, `LABEL <client_random hex> <secret hex>`, the format Wireshark
//! and tshark read (`-o tls.keylog_file:FILE`) and `SSLKEYLOGFILE` names in browsers and curl.
//!
//! The file holds the secrets of every connection logged: whoever reads it can decrypt those captures. So it
//! is created with mode 0600, a symbolic link is refused, an existing file readable by others is narrowed to
//! 0600, lines are appended (several runs, or an Edge and a caller, can share one file), and each line is
//! written with one `write` call on an unbuffered file, so a reader never sees half a line nor misses a
//! finished one.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::{ClientConfig, KeyLog, ServerConfig};

use super::WireError;

/// The environment variable browsers, curl and Wireshark's documentation use for the key log.
pub const ENV_VAR: &str = "SSLKEYLOGFILE";

/// An append-only NSS key log file, shared by every connection (thread-safe).
#[derive(Debug)]
pub struct KeyLogWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    failed: std::sync::atomic::AtomicBool,
}

/// Where the key log in use was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLogSource {
    /// `--keylog FILE`.
    Flag,
    /// The `SSLKEYLOGFILE` environment variable.
    Env,
}

/// One key log line: `LABEL <hex client_random> <hex secret>\n` (lower-case hex, as NSS writes it).
pub fn format_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut line =
        String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
    line.push_str(label);
    line.push(' ');
    push_hex(&mut line, client_random);
    line.push(' ');
    push_hex(&mut line, secret);
    line.push('\n');
    line
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
}

impl KeyLogWriter {
    /// Opens `path` for appending (creating it with mode 0600); refuses a symbolic link.
    pub fn open(path: &Path) -> Result<KeyLogWriter, WireError> {
        let file_err = |cause| WireError::File {
            what: "key log",
            path: path.to_path_buf(),
            cause,
        };
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(WireError::KeyLogSymlink(path.to_path_buf()));
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(file_err)?;
        #[cfg(unix)]
        {
            // `mode` applies only to a new file: an existing one readable by others is narrowed before any
            // secret goes into it.
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(file_err)?.permissions().mode();
            if mode & 0o077 != 0 {
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(file_err)?;
                tracing::warn!(
                    path = %path.display(),
                    "the key log was readable by others (mode {:o}): narrowed to 0600",
                    mode & 0o777
                );
            }
        }
        Ok(KeyLogWriter {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format_line(label, client_random, secret);
        let result = match self.file.lock() {
            // One `write_all` of the whole line on an O_APPEND, unbuffered file: complete when it returns.
            Ok(mut f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
            Err(_) => Err(std::io::Error::other("the key log lock was poisoned")),
        };
        if let Err(e) = result
            && !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the key log: later captures will not decrypt");
        }
    }
}

/// The key log to use: `--keylog FILE` when given, else `SSLKEYLOGFILE` (`env`, the variable's value) when set
/// and not empty, else none. Returns the writer and where it was named.
pub fn select(
    flag: Option<&Path>,
    env: Option<&OsStr>,
) -> Result<Option<(Arc<KeyLogWriter>, KeyLogSource)>, WireError> {
    let (path, source) = match (flag, env) {
        (Some(p), _) => (p, KeyLogSource::Flag),
        (None, Some(v)) if !v.is_empty() => (Path::new(v), KeyLogSource::Env),
        (None, _) => return Ok(None),
    };
    Ok(Some((Arc::new(KeyLogWriter::open(path)?), source)))
}

/// [`select`] with this process's `SSLKEYLOGFILE`.
pub fn from_flag_or_env(
    flag: Option<&Path>,
) -> Result<Option<(Arc<KeyLogWriter>, KeyLogSource)>, WireError> {
    let env = std::env::var_os(ENV_VAR);
    select(flag, env.as_deref())
}

/// Makes a built server configuration log its secrets to `log` (clones the config if it is shared).
pub fn install_server(config: &mut Arc<ServerConfig>, log: Arc<dyn KeyLog>) {
    Arc::make_mut(config).key_log = log;
}

/// Makes a built client configuration log its secrets to `log` (clones the config if it is shared).
pub fn install_client(config: &mut Arc<ClientConfig>, log: Arc<dyn KeyLog>) {
    Arc::make_mut(config).key_log = log;
}

/// Makes every TLS configuration edgesim builds from now on log to `log` (see [`crate::pki::tls::set_key_log`]).
pub fn install_process_wide(log: Arc<dyn KeyLog>) {
    crate::pki::tls::set_key_log(Some(log));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_label_random_secret_in_lower_hex() {
        assert_eq!(
            format_line("CLIENT_RANDOM", &[0x00, 0xAB, 0x0F], &[0xFF, 0x10]),
            "CLIENT_RANDOM 00ab0f ff10\n"
        );
    }

    #[test]
    fn lines_are_appended_to_a_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        std::fs::write(&path, "EXISTING 00 11\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let w = KeyLogWriter::open(&path).unwrap();
        w.log("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[1, 2], &[3, 4]);
        // Complete on disk as soon as log() returns, without dropping the writer.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "EXISTING 00 11\nCLIENT_HANDSHAKE_TRAFFIC_SECRET 0102 0304\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let fresh = dir.path().join("fresh.log");
            drop(KeyLogWriter::open(&fresh).unwrap());
            let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = KeyLogWriter::open(&link).unwrap_err();
        assert!(matches!(e, WireError::KeyLogSymlink(_)), "{e}");
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
    }

    #[test]
    fn the_flag_wins_over_the_environment_and_an_empty_variable_is_unset() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag.log");
        let env = dir.path().join("env.log");
        let (w, s) = select(Some(&flag), Some(env.as_os_str())).unwrap().unwrap();
        assert_eq!((w.path(), s), (flag.as_path(), KeyLogSource::Flag));
        let (w, s) = select(None, Some(env.as_os_str())).unwrap().unwrap();
        assert_eq!((w.path(), s), (env.as_path(), KeyLogSource::Env));
        assert!(select(None, Some(OsStr::new(""))).unwrap().is_none());
        assert!(select(None, None).unwrap().is_none());
    }

    #[test]
    fn an_unwritable_path_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("keys.log");
        let e = KeyLogWriter::open(&path).unwrap_err().to_string();
        assert!(e.starts_with("key log "), "{e}");
        assert!(e.contains("missing-dir"), "{e}");
        assert!(e.contains("check that its directory exists"), "{e}");
    }

    #[test]
    fn install_sets_the_key_log_of_a_shared_config() {
        let ca =
            crate::pki::LabCa::generate("keylog test CA", crate::pki::KeyType::EcdsaP256).unwrap();
        let id =
            crate::pki::TlsIdentity::from(&ca.issue(&crate::pki::LeafSpec::new("a.lab")).unwrap());
        let mut server =
            crate::pki::server_config(&id, crate::pki::ClientAuthMode::None, vec![]).unwrap();
        let shared = server.clone();
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn KeyLog> = Arc::new(KeyLogWriter::open(&dir.path().join("k")).unwrap());
        install_server(&mut server, log.clone());
        assert!(Arc::ptr_eq(&server.key_log, &log));
        // The other holder keeps its config as it was.
        assert!(!Arc::ptr_eq(&shared.key_log, &log));
        let mut client = crate::pki::client_config(None).unwrap();
        install_client(&mut client, log.clone());
        assert!(Arc::ptr_eq(&client.key_log, &log));
    }
}
