//! A TCP proxy a scenario can cut, to make a brief outage of a real server (the
//! database) without stopping it: while cut, every connection through it is closed
//! and new ones are refused at once; restored, it forwards again.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to one address.
#[derive(Debug)]
pub struct Proxy {
    /// The port it listens on, on loopback.
    pub port: u16,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:PORT to `target`.
    pub async fn start(target: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let c = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *c.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut_rx = c.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Proxy { port, cut, task })
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// A database URL like `url` that goes through this proxy.
    pub fn database_url(&self, url: &str) -> String {
        // postgres://user@127.0.0.1:PORT/db -> the proxy's port.
        let (head, rest) = url.split_once("@").unwrap_or(("", url));
        let db = rest.split_once('/').map(|(_, d)| d).unwrap_or("");
        format!("{head}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut.send_replace(true);
    }
}
