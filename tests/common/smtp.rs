//! A tiny SMTP server for the e-mail alert tests: it greets, accepts `AUTH PLAIN`, and keeps
//! every message it is given, as received. No TLS (tokenwatch allows plain SMTP only to this
//! machine).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message as the server got it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// `MAIL FROM:` as sent.
    pub from: String,
    /// Every `RCPT TO:`.
    pub to: Vec<String>,
    /// The decoded `AUTH PLAIN` (`\0user\0password`), when sent.
    pub auth: Option<String>,
    /// The message: headers and body.
    pub data: String,
}

/// The running server; it stops with the runtime.
pub struct SmtpServer {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sink = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let _ = session(stream, sink).await;
                });
            }
        });
        SmtpServer { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    sink: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    use base64::Engine;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 localhost ESMTP test\r\n").await?;
    let mut mail = Mail::default();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            b"250 localhost\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = match line.split_whitespace().nth(2) {
                Some(b) => b.to_string(),
                None => {
                    write.write_all(b"334 \r\n").await?;
                    lines.next_line().await?.unwrap_or_default()
                }
            };
            let plain = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_default();
            mail.auth = Some(String::from_utf8_lossy(&plain).into_owned());
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 2.1.5 Ok\r\n"
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            mail.data = data;
            sink.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            b"250 Ok\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
