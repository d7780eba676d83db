//! Prepares the static files served from the binary (see `src/assets.rs`): each gets a name
//! with a hash of its content (so that pages can let browsers keep it for a year), brotli and
//! gzip copies for the browsers that accept them, and the references between files (the
//! stylesheet's fonts, the widget's scripts) point at the hashed names. Bootstrap Italia's
//! icon sprite keeps only the icons the templates use.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Every file served, by its path under `assets/`, and its media type. Files that others refer
/// to come before them (fonts before the stylesheet, the widget before `pow.js`).
const FILES: &[(&str, &str)] = &[
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-300.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-600.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-700.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/roboto-mono-v13-latin-ext_latin-regular.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-regular.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-italic.woff2",
        "font/woff2",
    ),
    (
        "bootstrap-italia/fonts/lora-v20-latin-ext_latin-700.woff2",
        "font/woff2",
    ),
    ("bootstrap-italia/svg/sprites.svg", "image/svg+xml"),
    (
        "bootstrap-italia/css/bootstrap-italia.used.css",
        "text/css; charset=utf-8",
    ),
    ("sportello.css", "text/css; charset=utf-8"),
    ("altcha/altcha.min.js", "text/javascript; charset=utf-8"),
    ("altcha/altcha-it.js", "text/javascript; charset=utf-8"),
    ("altcha/pbkdf2.js", "text/javascript; charset=utf-8"),
    ("altcha/altcha.css", "text/css; charset=utf-8"),
    ("pow.js", "text/javascript; charset=utf-8"),
    ("room.js", "text/javascript; charset=utf-8"),
    ("check.js", "text/javascript; charset=utf-8"),
    ("console.js", "text/javascript; charset=utf-8"),
    ("print.js", "text/javascript; charset=utf-8"),
];

const SPRITE: &str = "bootstrap-italia/svg/sprites.svg";

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=templates");
    let icons = icons_used(&root.join("templates"));
    let mut done: Vec<(String, String)> = Vec::new(); // logical path, hashed URL
    let mut table = String::from("&[\n");
    for (i, (logical, mime)) in FILES.iter().enumerate() {
        let mut body = std::fs::read(root.join("assets").join(logical))
            .unwrap_or_else(|e| panic!("assets/{logical}: {e}"));
        let text = !mime.starts_with("font/");
        if *logical == SPRITE {
            body = sprite_subset(&String::from_utf8(body).unwrap(), &icons).into_bytes();
        } else if text {
            let mut s = String::from_utf8(body).unwrap();
            for (from, to) in &done {
                s = s.replace(&format!("/static/{from}"), to);
            }
            body = s.into_bytes();
        }
        let hash: String = Sha256::digest(&body)
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        let (stem, ext) = logical.rsplit_once('.').unwrap();
        let url = format!("/static/{stem}.{hash}.{ext}");
        let raw = out.join(format!("asset{i}"));
        std::fs::write(&raw, &body).unwrap();
        let (br, gz) = if text {
            (
                smaller(&out.join(format!("asset{i}.br")), brotli(&body), body.len()),
                smaller(&out.join(format!("asset{i}.gz")), gzip(&body), body.len()),
            )
        } else {
            (None, None)
        };
        let include = |p: Option<PathBuf>| match p {
            Some(p) => format!("Some(include_bytes!({:?}))", p.display().to_string()),
            None => "None".into(),
        };
        writeln!(
            table,
            "    Asset {{ logical: {logical:?}, url: {url:?}, mime: {mime:?}, etag: \"\\\"{hash}\\\"\", raw: include_bytes!({:?}), br: {}, gzip: {} }},",
            raw.display().to_string(),
            include(br),
            include(gz),
        )
        .unwrap();
        done.push((logical.to_string(), url));
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).unwrap();
}

/// The icon names the templates use (`sprites.svg#it-…`).
fn icons_used(dir: &Path) -> Vec<String> {
    let mut icons = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for part in text.split("sprites.svg").skip(1) {
                let part = part.split("#").nth(1).unwrap_or("");
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() && !icons.contains(&name) {
                    icons.push(name);
                }
            }
        }
    }
    icons
}

/// The sprite with only the `<symbol>`s whose id is in `icons`.
fn sprite_subset(svg: &str, icons: &[String]) -> String {
    let start = svg.find("<symbol").expect("symbols in the sprite");
    let end = svg.rfind("</symbol>").expect("symbols in the sprite") + "</symbol>".len();
    let mut out = svg[..start].to_string();
    for symbol in svg[start..end].split_inclusive("</symbol>") {
        let keep = icons
            .iter()
            .any(|i| symbol.contains(&format!("id=\"{i}\"")));
        if keep {
            out.push_str(symbol.trim());
        }
    }
    for i in icons {
        assert!(
            out.contains(&format!("id=\"{i}\"")),
            "icon {i} is not in the sprite"
        );
    }
    out.push_str(&svg[end..]);
    out
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &body[..], &mut out, &params).unwrap();
    out
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// Writes the compressed copy when it saves something; its path.
fn smaller(path: &Path, compressed: Vec<u8>, original: usize) -> Option<PathBuf> {
    (compressed.len() < original).then(|| {
        std::fs::write(path, compressed).unwrap();
        path.to_path_buf()
    })
}
