//! TLS for the server (rustls). Browsers give the camera and microphone only to secure pages, so
//! even a phone on the office's LAN needs HTTPS: with certificate files configured they are
//! used; otherwise a development certificate is made at first start (rcgen), kept under the data
//! folder, and made again when the machine's addresses change, valid for `localhost` and every
//! address of this machine. A phone accepts it once and can join.
//!
//! The certificate in use can be replaced while the server runs (`Certificate::reload`, on
//! SIGHUP): renewed files are read again and every new connection gets them, while a pair that
//! does not load (a half-written file, a key of another certificate) leaves the old one in use.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid PEM: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no private key")]
    NoKey(PathBuf),
    #[error("cannot make the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// PEM files of a real certificate (chain first) and its key.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed development certificate kept in this folder, for these names and
    /// addresses.
    Development { dir: PathBuf, names: Vec<String> },
}

/// The names a development certificate covers: localhost, the loopback addresses, and the
/// given addresses of this machine.
pub fn development_names(addresses: &[IpAddr]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for a in addresses {
        let s = a.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, data: &[u8], private: bool) -> Result<(), Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    let _ = private;
    opts.open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|source| Error::Write {
            path: path.into(),
            source,
        })
}

/// The development certificate's PEM files in `dir`, made (or made again, when the names it
/// must cover changed) as needed. Returns (certificate path, key path).
pub fn development_certificate(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), Error> {
    let cert = dir.join("dev-cert.pem");
    let key = dir.join("dev-key.pem");
    let names_file = dir.join("dev-cert.names");
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&names_file).unwrap_or_default();
    if cert.exists() && key.exists() && current == wanted {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.into(),
        source,
    })?;
    let made = rcgen::generate_simple_self_signed(names.to_vec())?;
    write(&cert, made.cert.pem().as_bytes(), false)?;
    write(&key, made.signing_key.serialize_pem().as_bytes(), true)?;
    write(&names_file, wanted.as_bytes(), false)?;
    tracing::info!(path = %cert.display(), names = %names.join(", "), "made a development certificate");
    Ok((cert, key))
}

fn load(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let pem_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Pem { path, source }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(pem_error(cert))?;
    if chain.is_empty() {
        return Err(Error::NoCertificate(cert.into()));
    }
    let key_der = match PrivateKeyDer::from_pem_slice(&read(key)?) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(Error::NoKey(key.into())),
        Err(e) => return Err(pem_error(key)(e)),
    };
    Ok((chain, key_der))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate the server presents, read from its source and read again on `reload`.
/// It is the TLS configuration's certificate resolver, so a reload reaches every connection
/// that starts after it, while those already open keep the certificate they began with.
#[derive(Debug)]
pub struct Certificate {
    source: Source,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads the certificate and its key (making the development certificate if needed);
    /// a key that does not belong to the certificate is refused.
    pub fn load(source: Source) -> Result<Arc<Certificate>, Error> {
        let provider = provider();
        let key = certified_key(&source, &provider)?;
        Ok(Arc::new(Certificate {
            source,
            provider,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Reads the files again and, if they make a valid pair, presents them from now on.
    /// On error the certificate in use stays as it was.
    pub fn reload(&self) -> Result<(), Error> {
        let key = certified_key(&self.source, &self.provider)?;
        *self.current.write().expect("certificate lock") = Arc::new(key);
        Ok(())
    }

    /// Where the certificate comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The end-entity certificate presented now (DER).
    pub fn presented(&self) -> CertificateDer<'static> {
        self.current.read().expect("certificate lock").cert[0].clone()
    }

    /// The rustls configuration for the server, HTTP/2 and HTTP/1.1 offered by ALPN, with this
    /// certificate (and its reloads).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, Error> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // HTTP/2 first: a browser then loads the page, its assets and, where it speaks RFC 8441,
        // the room's WebSocket over one connection. A browser that does not opens its socket
        // on an HTTP/1.1 connection (it offers only http/1.1 for it).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

fn certified_key(source: &Source, provider: &CryptoProvider) -> Result<CertifiedKey, Error> {
    let (cert, key) = match source {
        Source::Files { cert, key } => (cert.clone(), key.clone()),
        Source::Development { dir, names } => development_certificate(dir, names)?,
    };
    let (chain, key) = load(&cert, &key)?;
    Ok(CertifiedKey::from_der(chain, key, provider)?)
}

/// The rustls configuration for the server from `source`, HTTP/1.1 offered by ALPN.
pub fn server_config(source: &Source) -> Result<Arc<ServerConfig>, Error> {
    Certificate::load(source.clone())?.server_config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_certificate_is_made_once_and_again_when_addresses_change() {
        let dir = tempfile::tempdir().unwrap();
        let names = development_names(&["192.168.1.20".parse().unwrap()]);
        assert!(names.contains(&"localhost".to_string()));
        let (cert, _) = development_certificate(dir.path(), &names).unwrap();
        let first = std::fs::read(&cert).unwrap();
        development_certificate(dir.path(), &names).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "kept while the names are the same"
        );
        let other = development_names(&["192.168.1.21".parse().unwrap()]);
        development_certificate(dir.path(), &other).unwrap();
        assert_ne!(
            std::fs::read(&cert).unwrap(),
            first,
            "made again for new addresses"
        );
        let cfg = server_config(&Source::Development {
            dir: dir.path().into(),
            names: other,
        })
        .unwrap();
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn missing_or_empty_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        let e = server_config(&Source::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("cannot read"));
        std::fs::write(&cert, "not a pem").unwrap();
        std::fs::write(&key, "").unwrap();
        let e = server_config(&Source::Files { cert, key }).unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
    }

    #[test]
    fn a_reload_presents_the_new_files_and_a_bad_pair_keeps_the_old_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let names = ["localhost".to_string()];
        let (cert_a, key_a) = development_certificate(a.path(), &names).unwrap();
        let (cert_b, key_b) = development_certificate(b.path(), &names).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
        std::fs::copy(&cert_a, &cert).unwrap();
        std::fs::copy(&key_a, &key).unwrap();
        let first = |p: &Path| {
            CertificateDer::pem_slice_iter(&std::fs::read(p).unwrap())
                .next()
                .unwrap()
                .unwrap()
        };
        let c = Certificate::load(Source::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap();
        assert_eq!(c.presented(), first(&cert_a));
        // B's certificate with A's key: refused, A stays.
        std::fs::copy(&cert_b, &cert).unwrap();
        let e = c.reload().unwrap_err();
        assert!(matches!(e, Error::Tls(_)), "{e}");
        assert_eq!(c.presented(), first(&cert_a));
        // A truncated key: refused, A stays.
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA").unwrap();
        assert!(c.reload().is_err());
        assert_eq!(c.presented(), first(&cert_a));
        // The whole pair B: presented from now on.
        std::fs::copy(&key_b, &key).unwrap();
        c.reload().unwrap();
        assert_eq!(c.presented(), first(&cert_b));
    }
}
