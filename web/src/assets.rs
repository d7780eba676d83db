//! Static files served from the binary: Bootstrap Italia's compiled CSS, fonts and icons
//! (npm `bootstrap-italia` 2.18.3, BSD-3-Clause, see assets/bootstrap-italia/LICENSE), ALTCHA's
//! proof-of-work widget (npm `altcha` 3.2.2, MIT, see assets/altcha/LICENSE) and the project's
//! own small stylesheet and scripts.
//!
//! `build.rs` prepares them: each has a URL with a hash of its content, which pages link to
//! (`url`) and browsers keep for a year without asking again; brotli and gzip copies are sent
//! to browsers that accept them; an ETag answers a repeated request with 304. The plain names
//! (`/static/sportello.css`) still answer, for a page cached before an upgrade, but must be
//! revalidated. It owns nothing else: which page links what is the templates' business.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One static file, as `build.rs` prepared it.
pub struct Asset {
    /// Its path under `web/assets/`, and its plain URL below `/static/`.
    pub logical: &'static str,
    /// Its URL with the content hash (`/static/sportello.3f2a…css`).
    pub url: &'static str,
    pub mime: &'static str,
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub br: Option<&'static [u8]>,
    pub gzip: Option<&'static [u8]>,
}

pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The URL pages link to for the file at `logical` (its path under `web/assets/`).
///
/// # Panics
/// On a name that is not a served file: a template links to something that does not exist,
/// which every page test would show at once.
pub fn url(logical: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.logical == logical)
        .map(|a| a.url)
        .unwrap_or_else(|| panic!("no static file {logical}"))
}

/// How long a browser keeps a file under its hashed URL: it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A file under its plain URL may change with the next version: the browser asks each time
/// (and gets 304 while it is the same).
const REVALIDATE: &str = "public, no-cache";

pub async fn serve(Path(path): Path<String>, request: HeaderMap) -> Response {
    let path = format!("/static/{path}");
    let Some((asset, cache)) = ASSETS.iter().find_map(|a| {
        if a.url == path {
            Some((a, IMMUTABLE))
        } else if path.strip_prefix("/static/") == Some(a.logical) {
            Some((a, REVALIDATE))
        } else {
            None
        }
    }) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let seen = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == asset.etag || t.trim() == "*");
    if seen {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    let (body, encoding) = match (asset.br, asset.gzip) {
        (Some(br), _) if accepts(&request, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(&request, "gzip") => (gz, Some("gzip")),
        _ => (asset.raw, None),
    };
    if let Some(e) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    (headers, body).into_response()
}

/// Whether `Accept-Encoding` names `coding` (or `*`) without refusing it with `q=0`.
fn accepts(request: &HeaderMap, coding: &str) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(encoding).unwrap(),
        );
        h
    }

    #[test]
    fn accept_encoding_is_read_with_its_refusals() {
        assert!(accepts(&with("gzip, deflate, br, zstd"), "br"));
        assert!(accepts(&with("gzip;q=1.0, br;q=0.5"), "br"));
        assert!(!accepts(&with("gzip, br;q=0"), "br"));
        assert!(accepts(&with("*"), "gzip"));
        assert!(!accepts(&with("identity"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn every_file_has_a_hashed_url_and_compressed_text() {
        for a in ASSETS {
            assert_ne!(a.url, format!("/static/{}", a.logical));
            assert!(a.url.starts_with("/static/"), "{}", a.url);
            if !a.mime.starts_with("font/") {
                assert!(a.br.is_some() && a.gzip.is_some(), "{}", a.logical);
            }
        }
        assert_eq!(
            url("sportello.css"),
            ASSETS
                .iter()
                .find(|a| a.logical == "sportello.css")
                .unwrap()
                .url
        );
    }

    #[test]
    fn files_link_each_other_by_hashed_url() {
        let css = std::str::from_utf8(
            ASSETS
                .iter()
                .find(|a| a.logical == "sportello.css")
                .unwrap()
                .raw,
        )
        .unwrap();
        assert!(css.contains(url(
            "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2"
        )));
        assert!(!css.contains(
            "/static/bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2"
        ));
        let pow = std::str::from_utf8(ASSETS.iter().find(|a| a.logical == "pow.js").unwrap().raw)
            .unwrap();
        assert!(pow.contains(url("altcha/pbkdf2.js")));
    }
}
