//! Static files served from the binary: Bootstrap Italia's compiled CSS, fonts and icons
//! (npm `bootstrap-italia` 2.18.3, BSD-3-Clause, see assets/bootstrap-italia/LICENSE), ALTCHA's
//! proof-of-work widget (npm `altcha` 3.2.2, MIT, see assets/altcha/LICENSE) and the project's
//! own small stylesheet and scripts.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($p:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $p))
    };
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "bootstrap-italia/css/bootstrap-italia.min.css",
        "text/css; charset=utf-8",
        asset!("bootstrap-italia/css/bootstrap-italia.min.css"),
    ),
    (
        "bootstrap-italia/svg/sprites.svg",
        "image/svg+xml",
        asset!("bootstrap-italia/svg/sprites.svg"),
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-300.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-300.woff2"),
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2"),
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-600.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-600.woff2"),
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-700.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-700.woff2"),
    ),
    (
        "bootstrap-italia/fonts/roboto-mono-v13-latin-ext_latin-regular.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/roboto-mono-v13-latin-ext_latin-regular.woff2"),
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-regular.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/lora-v20-latin-ext_latin-regular.woff2"),
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-italic.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/lora-v20-latin-ext_latin-italic.woff2"),
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-700.woff2",
        "font/woff2",
        asset!("bootstrap-italia/fonts/lora-v20-latin-ext_latin-700.woff2"),
    ),
    (
        "sportello.css",
        "text/css; charset=utf-8",
        asset!("sportello.css"),
    ),
    (
        "room.js",
        "text/javascript; charset=utf-8",
        asset!("room.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        asset!("console.js"),
    ),
    ("pow.js", "text/javascript; charset=utf-8", asset!("pow.js")),
    (
        "altcha/altcha.min.js",
        "text/javascript; charset=utf-8",
        asset!("altcha/altcha.min.js"),
    ),
    (
        "altcha/altcha-it.js",
        "text/javascript; charset=utf-8",
        asset!("altcha/altcha-it.js"),
    ),
    (
        "altcha/pbkdf2.js",
        "text/javascript; charset=utf-8",
        asset!("altcha/pbkdf2.js"),
    ),
    (
        "altcha/altcha.css",
        "text/css; charset=utf-8",
        asset!("altcha/altcha.css"),
    ),
    (
        "print.js",
        "text/javascript; charset=utf-8",
        asset!("print.js"),
    ),
];

pub async fn serve(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
