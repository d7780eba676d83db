//! TLS for the server (rustls). Browsers give the camera and microphone only to secure pages, so
//! even a phone on the office's LAN needs HTTPS: with certificate files configured they are
//! used; otherwise a development certificate is made at first start (rcgen), kept under the data
//! folder, and made again when the machine's addresses change, valid for `localhost` and every
//! address of this machine. A phone accepts it once and can join.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
    write(&key, made.key_pair.serialize_pem().as_bytes(), true)?;
    write(&names_file, wanted.as_bytes(), false)?;
    tracing::info!(path = %cert.display(), names = %names.join(", "), "made a development certificate");
    Ok((cert, key))
}

fn load(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Read {
            path: cert.into(),
            source,
        })?;
    if chain.is_empty() {
        return Err(Error::NoCertificate(cert.into()));
    }
    let key_der = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|source| Error::Read {
            path: key.into(),
            source,
        })?
        .ok_or_else(|| Error::NoKey(key.into()))?;
    Ok((chain, key_der))
}

/// The rustls configuration for the server, HTTP/1.1 offered by ALPN.
pub fn server_config(source: &Source) -> Result<Arc<ServerConfig>, Error> {
    let (cert, key) = match source {
        Source::Files { cert, key } => (cert.clone(), key.clone()),
        Source::Development { dir, names } => development_certificate(dir, names)?,
    };
    let (chain, key) = load(&cert, &key)?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    // HTTP/1.1 only: room WebSockets upgrade over it in every browser.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
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
}
