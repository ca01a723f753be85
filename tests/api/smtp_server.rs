//! A real SMTP server for the mail tests: Python's aiosmtpd (from PyPI;
//! `.ci/run` installs it) on a free 127.0.0.1 port, storing each message it
//! accepts in a Maildir that the test reads back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

/// A running (or stopped) aiosmtpd and its Maildir.
pub struct SmtpServer {
    pub port: u16,
    directory: TempDir,
    child: Option<Child>,
}

/// One mail as the server stored it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a mail the server stored")
    }

    /// The first value of a header, decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().headers.iter().find_map(|header| {
            header
                .get_key()
                .eq_ignore_ascii_case(name)
                .then(|| header.get_value())
        })
    }

    /// The body of the part of this MIME type, decoded.
    pub fn body(&self, mime_type: &str) -> Option<String> {
        fn find(part: &mailparse::ParsedMail<'_>, mime_type: &str) -> Option<String> {
            if part.subparts.is_empty() {
                return (part.ctype.mimetype == mime_type)
                    .then(|| part.get_body().expect("decodable body"));
            }
            part.subparts.iter().find_map(|sub| find(sub, mime_type))
        }
        find(&self.parsed(), mime_type)
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub async fn start() -> Self {
        let mut server = Self::stopped();
        server.resume().await;
        server
    }

    /// A server chosen a port and a Maildir, not listening yet: mail sent
    /// to it fails until [`resume`](Self::resume).
    pub fn stopped() -> Self {
        Self {
            port: free_port(),
            directory: tempfile::tempdir().expect("a directory for the Maildir"),
            child: None,
        }
    }

    /// `--smtp-url` for authd: plain SMTP, on the loopback only.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts listening (again) on the server's port, into its Maildir.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        self.child = Some(child);
        tokio::time::timeout(Duration::from_secs(20), async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("aiosmtpd listens");
    }

    /// The Maildir: a directory that does not exist before the server
    /// starts, since Python's `mailbox.Maildir` makes its `new`, `cur` and
    /// `tmp` only when it makes the directory itself.
    fn maildir(&self) -> PathBuf {
        self.directory.path().join("Maildir")
    }

    /// Every mail stored so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .flat_map(|sub| files_in(&self.maildir().join(sub)))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| ReceivedMail {
                raw: std::fs::read(path).expect("a stored mail"),
            })
            .collect()
    }

    /// Waits (30 s at most) until `count` mails are stored, then a moment
    /// more so that an extra copy would show, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        tokio::time::timeout(Duration::from_secs(30), async {
            while self.received().len() < count {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{count} mails expected, {} arrived", self.received().len()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.received()
    }
}

fn files_in(directory: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default()
}
