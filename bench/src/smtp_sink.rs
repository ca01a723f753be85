//! The mail cases' SMTP server: a sink inside the bench process, on a free
//! loopback port, speaking just enough SMTP for lettre (authd's client):
//! greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It keeps each
//! message with the instant it was accepted, and nothing else: no queue, no
//! disk, so that what it costs is the least a real relay could.
//!
//! In-process rather than Python's aiosmtpd (which the tests use): a mail
//! accepted here is timed on the bench's own clock, with no Maildir write
//! and no interpreter in the path, so the sink is a ceiling, not a cost.
//!
//! Its ceiling is measured by [`replay`]: lettre, built as authd builds it
//! (no connection pool: one connection per mail), sending mails the sink
//! has received again, one after another as authd's outbox sends them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// One message as the sink accepted it.
#[derive(Clone)]
pub struct Mail {
    /// When the sink answered the DATA's final dot.
    pub at: Instant,
    /// The message, dot-unstuffed, without the final dot.
    pub data: Vec<u8>,
}

impl Mail {
    /// The token of the first link in the plain-text part that carries one
    /// after `route` (e.g. `verify-email?token=`).
    pub fn link_token(&self, route: &str) -> anyhow::Result<String> {
        let parsed = mailparse::parse_mail(&self.data)?;
        let text = std::iter::once(&parsed)
            .chain(&parsed.subparts)
            .find(|part| part.ctype.mimetype == "text/plain")
            .context("no plain-text part")?
            .get_body()?;
        text.split_whitespace()
            .find_map(|word| word.split_once(route))
            .map(|(_, token)| token.to_owned())
            .with_context(|| format!("no {route} link in:\n{text}"))
    }
}

#[derive(Default)]
struct Received {
    mails: Mutex<Vec<Mail>>,
    arrived: Notify,
}

impl Received {
    fn mails(&self) -> MutexGuard<'_, Vec<Mail>> {
        // A sink task that panicked holding the lock left whole mails.
        self.mails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running sink; it stops when dropped.
pub struct Sink {
    pub address: SocketAddr,
    received: Arc<Received>,
    accepting: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let received = Arc::new(Received::default());
        let accepting = tokio::spawn(accept(listener, Arc::clone(&received)));
        Ok(Self {
            address,
            received,
            accepting,
        })
    }

    /// `--smtp-url` for authd: plain SMTP on the loopback.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Mails accepted so far.
    pub fn count(&self) -> usize {
        self.received.mails().len()
    }

    /// The mails accepted from the `from`-th on.
    pub fn mails_from(&self, from: usize) -> Vec<Mail> {
        self.received
            .mails()
            .get(from..)
            .unwrap_or_default()
            .to_vec()
    }

    /// Waits until `count` mails in all have been accepted.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.received.arrived.notified();
            let accepted = self.count();
            if accepted >= count {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                anyhow::bail!("the SMTP sink has {accepted} mails after {timeout:?}, not {count}");
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, received: Arc<Received>) {
    // Dropped with the accepting task: every session ends with the sink.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    sessions.spawn(session(stream, Arc::clone(&received)));
                }
            }
            Some(_) = sessions.join_next() => {}
        }
    }
}

/// One SMTP session. A client that breaks the protocol is answered 500 and
/// may go on; one that leaves ends the session.
async fn session(stream: TcpStream, received: Arc<Received>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (reading, mut writing) = stream.into_split();
    let mut reading = BufReader::new(reading);
    writing.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reading.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(<[u8]>::to_ascii_uppercase)
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            // 8BITMIME so that lettre sends a non-ASCII body as it is.
            b"EHLO" => b"250-bench-sink\r\n250 8BITMIME\r\n",
            b"HELO" | b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 OK\r\n",
            b"QUIT" => {
                writing.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            b"DATA" => {
                writing.write_all(b"354 End with <CRLF>.<CRLF>\r\n").await?;
                let data = message(&mut reading).await?;
                {
                    let mut mails = received.mails();
                    mails.push(Mail {
                        at: Instant::now(),
                        data,
                    });
                }
                received.arrived.notify_waiters();
                b"250 OK: queued\r\n"
            }
            _ => b"500 Command not recognized\r\n",
        };
        writing.write_all(reply).await?;
    }
}

/// A DATA section up to its final dot, dot-unstuffed (RFC 5321, 4.5.2).
async fn message(
    reading: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(4096);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reading.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}

/// Mails per second that lettre, one connection per mail as authd's
/// outbox uses it, delivers to the sink at `address`: `mails` sent again
/// from `senders` tasks at once (one, as the outbox sends).
pub async fn replay(address: SocketAddr, mails: &[Mail], senders: usize) -> anyhow::Result<f64> {
    let transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
            .port(address.port())
            .build();
    let envelope = Envelope::new(
        Some("bench@example.com".parse()?),
        vec!["bench@example.com".parse()?],
    )?;
    let mails: Arc<Vec<Vec<u8>>> = Arc::new(mails.iter().map(|mail| mail.data.clone()).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..senders {
        let (transport, envelope, mails, next) = (
            transport.clone(),
            envelope.clone(),
            Arc::clone(&mails),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(mail) = mails.get(n) else {
                    return Ok::<_, anyhow::Error>(());
                };
                transport.send_raw(&envelope, mail).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(mails.len() as f64 / started.elapsed().as_secs_f64())
}
