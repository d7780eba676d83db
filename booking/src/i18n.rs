//! Languages. Italian is the source language: pages, emails and messages are written in
//! Italian (`l.t("Uffici")`), and that Italian text is the key of every other language's
//! catalogue (the gettext model). A catalogue is one TOML file a language (`lingue/en.toml`,
//! `lingue/de.toml`), built in; a town adds a language without touching code or templates by
//! putting one more file in the directory named by the `lingue` setting, read at start-up
//! (`load_dir`). A text a catalogue lacks comes from its fallback language (`riserva`), and in
//! the end in Italian: a page never shows a key. The web crate's tests check that every text
//! the code asks for is in every built-in catalogue.
//!
//! An appointment keeps the language its person booked in, and every email about it is written
//! in that language. This module knows no page, email or database.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

/// Italian weekday names, Monday first.
pub const DAYS_IT: [&str; 7] = [
    mark("lunedì"),
    mark("martedì"),
    mark("mercoledì"),
    mark("giovedì"),
    mark("venerdì"),
    mark("sabato"),
    mark("domenica"),
];
/// Italian month names, January first.
pub const MONTHS_IT: [&str; 12] = [
    mark("gennaio"),
    mark("febbraio"),
    mark("marzo"),
    mark("aprile"),
    mark("maggio"),
    mark("giugno"),
    mark("luglio"),
    mark("agosto"),
    mark("settembre"),
    mark("ottobre"),
    mark("novembre"),
    mark("dicembre"),
];

/// The catalogues built into the binary, after Italian.
const BUILT_IN: [(&str, &str); 2] = [
    ("en", include_str!("../lingue/en.toml")),
    ("de", include_str!("../lingue/de.toml")),
];

/// A language: an index into the catalogues loaded at start-up (Italian is always the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lang(u8);

/// One language's texts.
#[derive(Debug)]
struct Catalogue {
    code: String,
    /// The language's own name ("Deutsch"), for the switch.
    name: String,
    /// Three letters for the switch ("DEU").
    short: String,
    /// Where a missing text comes from (an earlier catalogue); Italian when none.
    fallback: Option<u8>,
    texts: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    lingua: Header,
    testi: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    nome: String,
    sigla: String,
    #[serde(default)]
    riserva: Option<String>,
}

static REGISTRY: OnceLock<Vec<Catalogue>> = OnceLock::new();

fn italian() -> Catalogue {
    Catalogue {
        code: "it".into(),
        name: "Italiano".into(),
        short: "ITA".into(),
        fallback: None,
        texts: HashMap::new(),
    }
}

/// Reads one catalogue; `earlier` are the ones before it, which its fallback may name.
fn parse(code: &str, text: &str, earlier: &[Catalogue]) -> Result<Catalogue, String> {
    let valid_code = (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase());
    if !valid_code {
        return Err(format!(
            "{code}: a language's file is named by its ISO 639 code (two or three lowercase letters)"
        ));
    }
    if earlier.iter().any(|c| c.code == code) {
        return Err(format!("{code}: this language is loaded twice"));
    }
    let file: CatalogueFile = toml::from_str(text).map_err(|e| format!("{code}: {e}"))?;
    let fallback =
        match file.lingua.riserva.as_deref() {
            None | Some("it") => None,
            Some(r) => {
                Some(earlier.iter().position(|c| c.code == r).ok_or_else(|| {
                    format!("{code}: fallback language {r} is not loaded before it")
                })? as u8)
            }
        };
    let name = file.lingua.nome.trim();
    let short = file.lingua.sigla.trim();
    if name.is_empty() || short.is_empty() || short.chars().count() > 4 {
        return Err(format!(
            "{code}: [lingua] needs a name (nome) and a short label of at most 4 letters (sigla)"
        ));
    }
    Ok(Catalogue {
        code: code.into(),
        name: name.into(),
        short: short.into(),
        fallback,
        texts: file.testi,
    })
}

fn built_in() -> Vec<Catalogue> {
    let mut all = vec![italian()];
    for (code, text) in BUILT_IN {
        let c = parse(code, text, &all).expect("a built-in catalogue is valid");
        all.push(c);
    }
    all
}

fn registry() -> &'static [Catalogue] {
    REGISTRY.get_or_init(built_in)
}

/// Loads the built-in catalogues and every `xx.toml` of `dir` (in the order of their names):
/// call it once, at start-up, before any text is asked for. Returns the codes it added.
pub fn load_dir(dir: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    let mut all = built_in();
    let mut added = Vec::new();
    for path in names {
        let code = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if all.len() >= usize::from(u8::MAX) {
            return Err("too many languages".into());
        }
        let c = parse(&code, &text, &all).map_err(|e| format!("{}: {e}", dir.display()))?;
        all.push(c);
        added.push(code);
    }
    REGISTRY
        .set(all)
        .map_err(|_| "the languages were already loaded".to_string())?;
    Ok(added)
}

impl serde::Serialize for Lang {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl Lang {
    /// Italian, the source language.
    pub const IT: Lang = Lang(0);

    fn catalogue(&self) -> &'static Catalogue {
        &registry()[usize::from(self.0)]
    }
    /// Its place in `all`.
    pub fn index(&self) -> usize {
        usize::from(self.0)
    }
    /// Every language loaded, Italian first.
    pub fn all() -> impl Iterator<Item = Lang> {
        (0..registry().len()).map(|i| Lang(i as u8))
    }
    pub fn from_code(s: &str) -> Option<Lang> {
        registry()
            .iter()
            .position(|c| c.code == s)
            .map(|i| Lang(i as u8))
    }
    pub fn code(&self) -> &'static str {
        &self.catalogue().code
    }
    /// The language's name in itself ("Deutsch").
    pub fn name(&self) -> &'static str {
        &self.catalogue().name
    }
    /// Its short label in the switch ("DEU").
    pub fn short(&self) -> &'static str {
        &self.catalogue().short
    }
    /// The Italian texts this language's own catalogue translates, with their translations
    /// (not its fallback's).
    pub fn own_texts(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.catalogue()
            .texts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// The text in this language, from its Italian.
    pub fn t<'a>(&self, it: &'a str) -> &'a str {
        let reg = registry();
        let mut c = self.catalogue();
        loop {
            if let Some(s) = c.texts.get(it) {
                return s;
            }
            match c.fallback {
                Some(f) => c = &reg[usize::from(f)],
                None => return it,
            }
        }
    }
    /// The text in this language with its `{name}` places filled in.
    pub fn f(&self, it: &str, args: &[(&str, &dyn Display)]) -> String {
        let mut s = self.t(it).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), &value.to_string());
        }
        s
    }
    /// A text kept for later (`Text`), in this language.
    pub fn text(&self, t: &Text) -> String {
        let values: Vec<String> = t
            .args
            .iter()
            .map(|(_, a)| match a {
                Arg::Plain(s) => s.clone(),
                Arg::Text(t) => self.text(t),
            })
            .collect();
        let args: Vec<(&str, &dyn Display)> = t
            .args
            .iter()
            .zip(&values)
            .map(|((k, _), v)| (*k, v as &dyn Display))
            .collect();
        self.f(t.it, &args)
    }
    /// "1 giorno" or "2 giorni": a unit written `singolare|plurale` in the catalogue.
    fn count(&self, n: i64, unit: &str) -> String {
        let forms = self.t(unit);
        let (one, many) = forms.split_once('|').unwrap_or((forms, forms));
        format!("{n} {}", if n == 1 { one } else { many })
    }
    /// A time left as the room page counts it down: "1 giorno, 22 ore, 33 minuti e 30 secondi"
    /// (the largest unit first, leading zeros left out; as `room.js` spells it).
    pub fn time_left(&self, left: chrono::Duration) -> String {
        let s = (left.num_milliseconds().max(0) + 999) / 1000;
        let units: [(i64, &str); 4] = [
            (s / 86400, self.t("giorno|giorni")),
            (s % 86400 / 3600, self.t("ora|ore")),
            (s % 3600 / 60, self.t("minuto|minuti")),
            (s % 60, self.t("secondo|secondi")),
        ];
        let first = units.iter().position(|u| u.0 != 0).unwrap_or(3);
        let words: Vec<String> = units[first..]
            .iter()
            .map(|(n, unit)| self.count(*n, unit))
            .collect();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => {
                format!("{}{}{last}", rest.join(", "), self.t(" e "))
            }
            _ => words.concat(),
        }
    }
    /// A weekday's name, Monday first ("lunedì").
    pub fn weekday(&self, i: usize) -> &'static str {
        self.t(DAYS_IT[i % 7])
    }
    /// "lunedì 30 novembre 2026" / "Monday 30 November 2026".
    pub fn day(&self, d: NaiveDate) -> String {
        let i = d.weekday().num_days_from_monday() as usize;
        self.f(
            "{giorno} {n} {mese} {anno}",
            &[
                ("giorno", &self.weekday(i)),
                ("n", &d.day()),
                ("mese", &self.t(MONTHS_IT[d.month0() as usize])),
                ("anno", &d.year()),
            ],
        )
    }
    pub fn time(&self, t: DateTime<Utc>, tz: Tz) -> String {
        let l = t.with_timezone(&tz);
        format!("{}:{:02}", l.hour(), l.minute())
    }
    /// "lunedì 30 novembre 2026, ore 9:00".
    pub fn when(&self, t: DateTime<Utc>, tz: Tz) -> String {
        let day = self.day(t.with_timezone(&tz).date_naive());
        self.f(
            "{data}, ore {ora}",
            &[("data", &day), ("ora", &self.time(t, tz))],
        )
    }
}

/// Marks a text of a table as one to translate (gettext's `N_`): the table keeps its Italian,
/// and whoever shows it passes it through `Lang::t`. The catalogue check finds it by this name.
pub const fn mark(it: &'static str) -> &'static str {
    it
}

/// A text to be written later in a language not known yet (an error's message, a form's
/// problem): its Italian, with the values of its `{name}` places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub it: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

/// A value of a `Text`'s place: as it is, or a text of its own to translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Plain(String),
    Text(Text),
}

impl Text {
    pub const fn new(it: &'static str) -> Text {
        Text {
            it,
            args: Vec::new(),
        }
    }
    /// With one more `{name}` place filled in with a value.
    pub fn with(mut self, name: &'static str, value: impl Display) -> Text {
        self.args.push((name, Arg::Plain(value.to_string())));
        self
    }
    /// With one more `{name}` place filled in with a text, translated with this one.
    pub fn with_text(mut self, name: &'static str, value: Text) -> Text {
        self.args.push((name, Arg::Text(value)));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_spelled_as_the_room_page_spells_it() {
        let d = |s: i64| chrono::Duration::milliseconds(s);
        let en = Lang::from_code("en").unwrap();
        assert_eq!(
            Lang::IT.time_left(d(((24 + 22) * 3600 + 33 * 60 + 30) * 1000)),
            "1 giorno, 22 ore, 33 minuti e 30 secondi"
        );
        assert_eq!(Lang::IT.time_left(d(60_000)), "1 minuto e 0 secondi");
        assert_eq!(
            en.time_left(d(3_600_000 + 1)),
            "1 hour, 0 minutes and 1 second"
        );
        assert_eq!(Lang::IT.time_left(d(1_500)), "2 secondi");
        assert_eq!(en.time_left(d(-5)), "0 seconds");
    }

    #[test]
    fn days_are_written_in_each_language() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(Lang::IT.day(day), "lunedì 30 novembre 2026");
        assert_eq!(
            Lang::from_code("en").unwrap().day(day),
            "Monday 30 November 2026"
        );
        assert_eq!(
            Lang::from_code("de").unwrap().day(day),
            "Montag, 30. November 2026"
        );
    }

    #[test]
    fn a_missing_text_falls_back_and_never_shows_a_key() {
        let base = vec![italian()];
        let fr = parse(
            "fr",
            "[lingua]\nnome = \"Français\"\nsigla = \"FRA\"\n[testi]\n\"Uffici\" = \"Bureaux\"\n",
            &base,
        )
        .unwrap();
        assert_eq!(fr.texts["Uffici"], "Bureaux");
        assert_eq!(fr.fallback, None);
        // A text no catalogue has is its Italian.
        let unknown = "Testo che non esiste";
        assert_eq!(Lang::from_code("en").unwrap().t(unknown), unknown);
        // Hostile or broken files are refused with the reason.
        for (code, text) in [
            ("FR", "[lingua]\nnome=\"x\"\nsigla=\"X\"\n[testi]\n"),
            ("../x", "[lingua]\nnome=\"x\"\nsigla=\"X\"\n[testi]\n"),
            (
                "fr",
                "[lingua]\nnome=\"x\"\nsigla=\"X\"\nriserva=\"xx\"\n[testi]\n",
            ),
            ("fr", "[lingua]\nnome=\"\"\nsigla=\"X\"\n[testi]\n"),
            ("fr", "[testi]\n\"a\" = 1\n"),
            ("it", "[lingua]\nnome=\"x\"\nsigla=\"X\"\n[testi]\n"),
        ] {
            assert!(parse(code, text, &base).is_err(), "{code}: {text}");
        }
    }

    #[test]
    fn places_are_filled_in() {
        let t = Text::new("Scrivi almeno {n} caratteri.").with("n", 3);
        assert_eq!(Lang::IT.text(&t), "Scrivi almeno 3 caratteri.");
        let en = Lang::from_code("en").unwrap();
        assert_eq!(en.text(&t), "Write at least 3 characters.");
    }
}
