//! A contact the town gives in its settings (`privacy_contact`, `accessibility_contact`): a web
//! page or an email address, checked once at start; and what such settings' web addresses are
//! checked with. Used by `town` (the footer) and `notices` (the texts that name them).

/// A web page or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Page(String),
    Email(String),
}

impl Contact {
    /// A contact setting: an `http(s)://` address, or an email address (`mailto:` optional).
    pub fn parse(setting: &str, value: &str) -> anyhow::Result<Contact> {
        let v = value.trim();
        if is_web_address(v) {
            anyhow::ensure!(
                has_host(v) && !v.contains(char::is_whitespace),
                "{setting}: {value:?} is not a valid web address"
            );
            return Ok(Contact::Page(v.to_string()));
        }
        let email = v.strip_prefix("mailto:").unwrap_or(v);
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !email.contains(|c: char| c.is_whitespace() || "<>\"'(),;:".contains(c)) =>
            {
                Ok(Contact::Email(email.to_string()))
            }
            _ => anyhow::bail!(
                "{setting}: {value:?} is neither a web address (https://...) nor an email address"
            ),
        }
    }

    /// The link's target.
    pub fn href(&self) -> String {
        match self {
            Contact::Page(url) => url.clone(),
            Contact::Email(email) => format!("mailto:{email}"),
        }
    }

    /// The address, when the contact is an email (shown in the link's text).
    pub fn email(&self) -> Option<&str> {
        match self {
            Contact::Page(_) => None,
            Contact::Email(e) => Some(e),
        }
    }
}

/// Whether a setting's value is a web address rather than a file or an email.
pub fn is_web_address(v: &str) -> bool {
    v.starts_with("https://") || v.starts_with("http://")
}

/// Whether a web address has a host made of the characters a host may have (it goes into the
/// content security policy header when it is the logo's).
pub(crate) fn has_host(url: &str) -> bool {
    origin(url).is_some_and(|o| {
        o.split("://").nth(1).is_some_and(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
    })
}

/// `scheme://host[:port]` of a web address.
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    Some(format!("{scheme}://{host}"))
}
