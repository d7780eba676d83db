//! TLS for the server (rustls): the certificate and key from files when configured, otherwise a
//! development certificate made at first start and kept under `data/`.
//!
//! Not built yet: the issue "Media relay" (HTTPS, point 4) fills this crate.
