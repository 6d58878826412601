//! The simulator's listener: optional TLS, "drop every connection" mode, and a per-
//! connection kill switch so a handler can break its own connection without answering.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
    server::TlsStream,
};

use super::routes::Shared;
use crate::error::{Error, Result};

pub(crate) struct SimListener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
}

impl SimListener {
    pub(crate) fn new(tcp: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) -> Self {
        Self { tcp, tls, shared }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection.
pub(crate) struct SimIo {
    stream: Stream,
    kill: Arc<AtomicBool>,
}

/// Per-connection data handed to handlers through `ConnectInfo`.
#[derive(Clone)]
pub(crate) struct ConnMeta {
    pub(crate) kill: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, SimListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Self {
            kill: stream.io().kill.clone(),
        }
    }
}

impl axum::serve::Listener for SimListener {
    type Io = SimIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimIo, SocketAddr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            if self.shared.drop_connections.load(Ordering::SeqCst) {
                self.shared.lock().counters.dropped += 1;
                drop(tcp);
                continue;
            }
            let stream = match &self.tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => {
                    // A client that rejects our certificate aborts the handshake; that is
                    // the client's business, so just wait for the next connection.
                    match tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                        _ => continue,
                    }
                }
            };
            let io = SimIo {
                stream,
                kill: Arc::new(AtomicBool::new(false)),
            };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "simulated connection drop",
            )));
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A fresh CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and the bound
/// address, signed by it. Returns the acceptor and the CA's PEM.
pub(crate) fn tls_acceptor(bound: SocketAddr) -> Result<(TlsAcceptor, String)> {
    let err = |what: &str, e: Option<crate::error::BoxError>| Error::Simulator {
        reason: format!("cannot set up TLS: {what}"),
        source: e,
    };
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| err("CA parameters", Some(Box::new(e))))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nessus-core simulator CA");
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err("CA key", Some(Box::new(e))))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| err("CA certificate", Some(Box::new(e))))?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ip = bound.ip().to_string();
    if !bound.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    let mut leaf_params = rcgen::CertificateParams::new(names)
        .map_err(|e| err("server parameters", Some(Box::new(e))))?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nessus-sim");
    let leaf_key = rcgen::KeyPair::generate().map_err(|e| err("server key", Some(Box::new(e))))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| err("server certificate", Some(Box::new(e))))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions", Some(Box::new(e))))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(|e| err("server config", Some(Box::new(e))))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}
