//! The town the site speaks for: its name and address, its logo, and the two contacts every
//! public administration's site must give (how personal data is handled, and the accessibility
//! statement), shown in the header and footer of every page. They are settings (`town_name`,
//! `town_address`, `town_logo`, `privacy_contact`, `accessibility_contact`), checked once at
//! start; the defaults are the demo comune's, so the embedded default looks as it always has.
//!
//! Pages reach the town through `Ui::page`, which renders every page with it (askama's runtime
//! values: `"town"|value::<Town>` in `base.html`), so no page can be shown without it.

use sha2::Digest;

use crate::contact::{has_host, is_web_address, origin, Contact};
use crate::notices::{Kept, Notice};

/// The demo comune's name and address: the defaults.
pub const DEMO_NAME: &str = "Comune di Esempio";
pub const DEMO_ADDRESS: &str = "Piazza Municipio 1";

/// Largest logo file accepted: a header image, not a photograph.
const MAX_LOGO_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Town {
    pub name: String,
    /// Empty: none shown.
    pub address: String,
    pub logo: Option<Logo>,
    pub privacy: Option<Contact>,
    pub accessibility: Option<Contact>,
    /// Shown at /privacy; its version is stored with each booking's consent.
    pub privacy_notice: Notice,
    /// Shown at /accessibilita.
    pub accessibility_statement: Notice,
    /// Citizens can log in with SPID or CIE (an identity provider is set): every page's
    /// header links "my appointments".
    pub citizen_login: bool,
}

impl Default for Town {
    fn default() -> Self {
        Town {
            name: DEMO_NAME.into(),
            address: DEMO_ADDRESS.into(),
            logo: None,
            privacy: None,
            accessibility: None,
            privacy_notice: Notice::privacy(
                DEMO_NAME,
                DEMO_ADDRESS,
                None,
                &Kept::from(&booking::Limits::default()),
            ),
            accessibility_statement: Notice::accessibility(DEMO_NAME, None),
            citizen_login: false,
        }
    }
}

/// The logo: an image elsewhere, or a file read at start and served at `/logo`.
#[derive(Debug, Clone)]
pub enum Logo {
    Url(String),
    File {
        bytes: Vec<u8>,
        content_type: &'static str,
        /// A digest of the bytes, in the image's address: a new logo is fetched again at once.
        version: String,
    },
}

impl Town {
    /// The town from its settings (`None`: the default), each checked; a logo file is read.
    pub fn from_settings(
        name: Option<&str>,
        address: Option<&str>,
        logo: Option<&str>,
        privacy: Option<&str>,
        accessibility: Option<&str>,
    ) -> anyhow::Result<Town> {
        let name = name.unwrap_or(DEMO_NAME).trim();
        anyhow::ensure!(!name.is_empty(), "town_name is empty");
        let logo = match logo.map(str::trim) {
            None => None,
            Some(v) if is_web_address(v) => {
                anyhow::ensure!(
                    v.starts_with("https://") && has_host(v) && !v.contains(char::is_whitespace),
                    "town_logo: {v:?} must be an https:// address (pages are served over HTTPS) or an image file"
                );
                Some(Logo::Url(v.to_string()))
            }
            Some(path) => Some(Logo::read(std::path::Path::new(path))?),
        };
        let address = address.unwrap_or(DEMO_ADDRESS).trim().to_string();
        let privacy = privacy
            .map(|v| Contact::parse("privacy_contact", v))
            .transpose()?;
        let accessibility = accessibility
            .map(|v| Contact::parse("accessibility_contact", v))
            .transpose()?;
        Ok(Town {
            privacy_notice: Notice::privacy(
                name,
                &address,
                privacy.as_ref(),
                &Kept::from(&booking::Limits::default()),
            ),
            accessibility_statement: Notice::accessibility(name, accessibility.as_ref()),
            name: name.to_string(),
            address,
            logo,
            privacy,
            accessibility,
            citizen_login: false,
        })
    }

    /// The built-in privacy notice says how long data is kept: the store's `limits`.
    pub fn with_retention(mut self, limits: &booking::Limits) -> Town {
        self.privacy_notice = Notice::privacy(
            &self.name,
            &self.address,
            self.privacy.as_ref(),
            &Kept::from(limits),
        );
        self
    }

    /// The town's own privacy notice and accessibility statement, from their files, instead of
    /// the built-in ones.
    pub fn with_notices(
        mut self,
        privacy: Option<&std::path::Path>,
        accessibility: Option<&std::path::Path>,
    ) -> anyhow::Result<Town> {
        if let Some(path) = privacy {
            self.privacy_notice = Notice::read("privacy_notice", path)?;
        }
        if let Some(path) = accessibility {
            self.accessibility_statement = Notice::read("accessibility_statement", path)?;
        }
        Ok(self)
    }

    /// The logo's address for `<img src>`, if there is a logo.
    pub fn logo_src(&self) -> Option<String> {
        match self.logo.as_ref()? {
            Logo::Url(url) => Some(url.clone()),
            Logo::File { version, .. } => Some(format!("/logo?v={version}")),
        }
    }

    /// The site the logo comes from, when it is not this one: the pages' content security
    /// policy lets images come from there too.
    pub fn image_origin(&self) -> Option<String> {
        match self.logo.as_ref()? {
            Logo::Url(url) => origin(url),
            Logo::File { .. } => None,
        }
    }
}

impl Logo {
    fn read(path: &std::path::Path) -> anyhow::Result<Logo> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let content_type = match ext.as_str() {
            "png" => "image/png",
            "svg" => "image/svg+xml",
            "jpg" | "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            "gif" => "image/gif",
            _ => anyhow::bail!(
                "town_logo: {} is not a PNG, SVG, JPEG, WebP or GIF file (by its name)",
                path.display()
            ),
        };
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("town_logo: cannot read {}: {e}", path.display()))?;
        anyhow::ensure!(
            !bytes.is_empty() && bytes.len() <= MAX_LOGO_BYTES,
            "town_logo: {} must hold between 1 byte and 1 MiB",
            path.display()
        );
        let digest = sha2::Sha256::digest(&bytes);
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Logo::File {
            bytes,
            content_type,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_web_pages_or_email_addresses() {
        let p = |v| Contact::parse("privacy_contact", v);
        assert_eq!(
            p("https://www.comune.example.it/privacy").unwrap(),
            Contact::Page("https://www.comune.example.it/privacy".into())
        );
        assert_eq!(
            p(" mailto:dpo@comune.example.it ").unwrap().href(),
            "mailto:dpo@comune.example.it"
        );
        assert_eq!(
            p("dpo@comune.example.it").unwrap().email(),
            Some("dpo@comune.example.it")
        );
        for bad in [
            "",
            "dpo",
            "dpo@",
            "@comune.it",
            "dpo@localhost",
            "a b@c.it",
            "https://",
            "https:// x",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("privacy_contact: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_default_is_the_demo_and_a_logo_file_is_read_once_checked() {
        let t = Town::from_settings(None, None, None, None, None).unwrap();
        assert_eq!(
            (t.name.as_str(), t.address.as_str()),
            (DEMO_NAME, DEMO_ADDRESS)
        );
        assert!(t.logo_src().is_none() && t.privacy.is_none());
        assert!(Town::from_settings(Some("  "), None, None, None, None).is_err());

        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("stemma.PNG");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n....").unwrap();
        let t = Town::from_settings(None, Some(""), png.to_str(), None, None).unwrap();
        assert!(t.logo_src().unwrap().starts_with("/logo?v="));
        assert_eq!(t.address, "");
        assert!(t.image_origin().is_none());
        let missing = dir.path().join("nope.png");
        let e = Town::from_settings(None, None, missing.to_str(), None, None).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        let txt = dir.path().join("logo.txt");
        std::fs::write(&txt, b"x").unwrap();
        assert!(Town::from_settings(None, None, txt.to_str(), None, None).is_err());

        let t = Town::from_settings(
            None,
            None,
            Some("https://www.comune.example.it/img/stemma.svg"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            t.image_origin().as_deref(),
            Some("https://www.comune.example.it")
        );
        assert!(
            Town::from_settings(None, None, Some("http://x.it/l.png"), None, None).is_err(),
            "an image over plain HTTP would be blocked on an HTTPS page"
        );
    }
}
