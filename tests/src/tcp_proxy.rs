//! A TCP proxy in front of an API server, to cut one client off from it (a network partition)
//! while every other client still reaches it directly.
//!
//! The proxy forwards bytes and nothing else: TLS runs end to end between the client and the
//! API server, which still verifies the client's certificate or token; the client verifies
//! the server's certificate against `127.0.0.1`, which the proxy's address also is.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a cut proxy treats new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Connection refused: the client's requests fail at once.
    Refuse,
    /// Accepted, then silence: the client's requests hang until its own timeouts fire (a
    /// dropped route, the harder case for a client).
    Blackhole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut(Cut),
}

/// A running proxy; stops (dropping every connection) when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    // Cancelled on a cut: every forwarded connection is dropped, both sides.
    forwarding: CancellationToken,
    // Cancelled on drop: the accept loop and blackholed connections end.
    stopped: CancellationToken,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let forwarding = CancellationToken::new();
        let stopped = CancellationToken::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            mode.clone(),
            forwarding.clone(),
            stopped.clone(),
        ));
        Ok(Self {
            addr,
            mode,
            forwarding,
            stopped,
            accept,
        })
    }

    /// The address clients should dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and, from now on, refuses or blackholes new ones.
    pub fn cut(&self, how: Cut) {
        if let Ok(mut mode) = self.mode.lock() {
            *mode = Mode::Cut(how);
        }
        self.forwarding.cancel();
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.forwarding.cancel();
        self.stopped.cancel();
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    forwarding: CancellationToken,
    stopped: CancellationToken,
) {
    let mut listener = Some(listener);
    loop {
        let current = mode.lock().map(|m| *m).unwrap_or(Mode::Cut(Cut::Refuse));
        if current == Mode::Cut(Cut::Refuse) {
            // Closing the listening socket makes the kernel refuse new connections.
            listener = None;
        }
        let Some(active) = listener.as_ref() else {
            stopped.cancelled().await;
            return;
        };
        let accepted = tokio::select! {
            () = stopped.cancelled() => return,
            // Woken by a cut so that `Refuse` closes the listener at once.
            () = forwarding.cancelled(), if current == Mode::Forward => continue,
            accepted = active.accept() => accepted,
        };
        let Ok((client, _)) = accepted else { continue };
        match mode.lock().map(|m| *m).unwrap_or(Mode::Cut(Cut::Refuse)) {
            Mode::Forward => {
                tokio::spawn(forward(client, upstream, forwarding.clone()));
            }
            Mode::Cut(Cut::Blackhole) => {
                tokio::spawn(blackhole(client, stopped.clone()));
            }
            // Dropped: the client sees the connection closed.
            Mode::Cut(Cut::Refuse) => {}
        }
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, forwarding: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        () = forwarding.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

async fn blackhole(mut client: TcpStream, stopped: CancellationToken) {
    let mut sink = [0_u8; 4096];
    loop {
        tokio::select! {
            () = stopped.cancelled() => return,
            read = client.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn echoes(stream: &mut TcpStream) -> bool {
        if stream.write_all(b"ping").await.is_err() {
            return false;
        }
        let mut buf = [0_u8; 4];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_millis(500),
                stream.read_exact(&mut buf)
            )
            .await,
            Ok(Ok(_))
        ) && &buf == b"ping"
    }

    #[tokio::test]
    async fn forwards_then_cuts_open_connections_and_refuses_or_blackholes_new_ones() {
        let upstream = echo_server().await;
        for how in [Cut::Refuse, Cut::Blackhole] {
            let proxy = TcpProxy::start(upstream).await.unwrap();
            let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
            assert!(echoes(&mut open).await, "{how:?}: forwarding");
            proxy.cut(how);
            assert!(
                !echoes(&mut open).await,
                "{how:?}: open connection survived"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            match how {
                Cut::Refuse => assert!(TcpStream::connect(proxy.addr()).await.is_err()),
                Cut::Blackhole => {
                    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
                    assert!(!echoes(&mut new).await, "blackholed connection answered");
                }
            }
        }
    }
}
