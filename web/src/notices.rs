//! The two texts every public administration's site must publish: the privacy notice (GDPR,
//! art. 13) and the accessibility statement (AgID's model). Each is the built-in text, written
//! from the town's settings (its name, address and contacts), or the town's own text from a file
//! (`privacy_notice`, `accessibility_statement`). A notice has a version, a digest of what it
//! says, which is stored with each booking's consent: a changed text is a new version.
//!
//! It knows nothing of HTTP or of the pages that show the texts (`citizen::about`).

use sha2::Digest;

use crate::contact::Contact;
use crate::i18n::Lang;

/// Largest file accepted for a notice: a long text, not a document archive.
const MAX_FILE_BYTES: usize = 64 * 1024;

/// A piece of a paragraph: text, or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    /// `https://…`, `http://…`, `mailto:…`, or one of this site's own pages (`/…`, built in only).
    pub href: Option<String>,
}

/// A heading (empty: the text before the first heading) and its paragraphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub paragraphs: Vec<Vec<Piece>>,
}

/// How long personal data is kept, in days, as the privacy notice tells it.
#[derive(Debug, Clone, Copy)]
pub struct Kept {
    pub appointments: i64,
    pub emails: i64,
}

impl From<&booking::Limits> for Kept {
    fn from(l: &booking::Limits) -> Kept {
        Kept {
            appointments: l.keep_appointments.num_days(),
            emails: l.keep_emails.num_days(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    /// The text in each language (`Lang::all`'s order), or one text for every language (the
    /// town's own file).
    texts: Vec<Vec<Section>>,
    /// A digest of the text: 12 hex characters.
    pub version: String,
}

impl Notice {
    /// The text in the page's language.
    pub fn sections(&self, l: Lang) -> &[Section] {
        self.texts.get(l.index()).unwrap_or(&self.texts[0])
    }

    /// A built-in text, written in every language. Its version is the Italian's and the
    /// English's, so that a town adding a language does not ask everyone's consent again.
    fn built_in(text: impl Fn(Lang) -> Vec<Section>) -> Notice {
        let texts: Vec<Vec<Section>> = Lang::all().map(text).collect();
        let en = Lang::from_code("en").map_or(0, |l| l.index());
        let version = digest(&[&texts[0], &texts[en]]);
        Notice { texts, version }
    }

    /// The town's own text from `path` (the setting's name is `setting`): UTF-8, at most 64 KiB,
    /// no control characters but line breaks and tabs. `## ` starts a section with its heading,
    /// a blank line ends a paragraph, and web and email addresses become links.
    pub fn read(setting: &str, path: &std::path::Path) -> anyhow::Result<Notice> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{setting}: cannot read {}: {e}", path.display()))?;
        anyhow::ensure!(
            bytes.len() <= MAX_FILE_BYTES,
            "{setting}: {} is larger than {} KiB",
            path.display(),
            MAX_FILE_BYTES / 1024
        );
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{setting}: {} is not UTF-8 text", path.display()))?;
        let sections = parse(&text).map_err(|e| anyhow::anyhow!("{setting}: {e}"))?;
        anyhow::ensure!(
            sections.iter().any(|s| !s.paragraphs.is_empty()),
            "{setting}: {} has no text",
            path.display()
        );
        let version = digest(&[&sections]);
        Ok(Notice {
            texts: vec![sections],
            version,
        })
    }

    /// The built-in privacy notice, naming the town as the controller and saying how long data
    /// is kept.
    pub fn privacy(town: &str, address: &str, contact: Option<&Contact>, kept: &Kept) -> Notice {
        Notice::built_in(|l| privacy_text(l, town, address, contact, kept))
    }

    /// The built-in accessibility statement, with AgID's model's headings.
    pub fn accessibility(town: &str, contact: Option<&Contact>) -> Notice {
        Notice::built_in(|l| accessibility_text(l, town, contact))
    }
}

fn digest(texts: &[&Vec<Section>]) -> String {
    let mut h = sha2::Sha256::new();
    for sections in texts {
        for s in sections.iter() {
            h.update(b"\x01");
            h.update(s.heading.as_bytes());
            for p in &s.paragraphs {
                h.update(b"\x02");
                for piece in p {
                    h.update(b"\x03");
                    h.update(piece.text.as_bytes());
                    h.update(b"\x04");
                    h.update(piece.href.as_deref().unwrap_or("").as_bytes());
                }
            }
        }
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse(text: &str) -> anyhow::Result<Vec<Section>> {
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        anyhow::bail!("the text holds a control character (U+{:04X})", c as u32);
    }
    let mut sections = vec![Section {
        heading: String::new(),
        paragraphs: Vec::new(),
    }];
    let mut paragraph = String::new();
    let end_paragraph = |sections: &mut Vec<Section>, paragraph: &mut String| {
        if !paragraph.trim().is_empty() {
            let p = linkify(paragraph.trim());
            sections.last_mut().expect("a section").paragraphs.push(p);
        }
        paragraph.clear();
    };
    for line in text.lines() {
        let line = line.trim_end();
        let heading = line
            .strip_prefix("##")
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        if let Some(heading) = heading {
            end_paragraph(&mut sections, &mut paragraph);
            sections.push(Section {
                heading: heading.trim().to_string(),
                paragraphs: Vec::new(),
            });
        } else if line.trim().is_empty() {
            end_paragraph(&mut sections, &mut paragraph);
        } else {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(line.trim());
        }
    }
    end_paragraph(&mut sections, &mut paragraph);
    if sections[0].paragraphs.is_empty() {
        sections.remove(0);
    }
    Ok(sections)
}

/// Words that are web addresses (`http://`, `https://`) or email addresses become links; the
/// punctuation after them stays text.
fn linkify(paragraph: &str) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut text = String::new();
    for (i, word) in paragraph.split(' ').enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let core = word.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        let tail = &word[core.len()..];
        let href = if core.starts_with("https://") || core.starts_with("http://") {
            Some(core.to_string())
        } else if is_email(core) {
            Some(format!("mailto:{core}"))
        } else {
            None
        };
        match href {
            Some(href) => {
                pieces.push(t(&std::mem::take(&mut text)));
                pieces.push(link(&href, core));
                text.push_str(tail);
            }
            None => text.push_str(word),
        }
    }
    pieces.push(t(&text));
    pieces.retain(|p| !p.text.is_empty());
    pieces
}

fn is_email(w: &str) -> bool {
    match w.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !w.contains(|c: char| "<>\"'(),;:".contains(c))
        }
        None => false,
    }
}

fn t(s: &str) -> Piece {
    Piece {
        text: s.to_string(),
        href: None,
    }
}

fn link(href: &str, text: &str) -> Piece {
    Piece {
        text: text.to_string(),
        href: Some(href.to_string()),
    }
}

fn section(heading: &str, paragraphs: Vec<Vec<Piece>>) -> Section {
    Section {
        heading: heading.to_string(),
        paragraphs,
    }
}

/// A contact as a link: a page by its address, an email by `mailto:`.
fn contact_link(c: &Contact) -> Piece {
    let href = c.href();
    link(&href, c.email().unwrap_or(&href))
}

fn privacy_text(
    l: Lang,
    town: &str,
    address: &str,
    contact: Option<&Contact>,
    kept: &Kept,
) -> Vec<Section> {
    let at = if address.is_empty() {
        String::new()
    } else {
        format!(", {address}")
    };
    let mut controller = vec![vec![t(&l.f(
        "Il titolare del trattamento è {comune}{indirizzo}.",
        &[("comune", &town), ("indirizzo", &at)],
    ))]];
    match contact {
        Some(c @ Contact::Email(_)) => controller.push(vec![
            t(l.t("Responsabile della protezione dei dati (RPD): ")),
            contact_link(c),
            t("."),
        ]),
        Some(c @ Contact::Page(_)) => controller.push(vec![
            t(l.t("L'informativa generale del Comune, con i recapiti del responsabile della protezione dei dati: ")),
            contact_link(c),
            t("."),
        ]),
        None => {}
    }
    vec![
        section(l.t("Titolare del trattamento"), controller),
        section(
            l.t("Perché trattiamo i tuoi dati"),
            vec![
                t_all(l.t("Per fissare e gestire l'appuntamento che chiedi: confermarlo, ricordartelo, spostarlo o annullarlo e, se scegli la videochiamata, collegarti con l'operatore.")),
                t_all(l.t("La base giuridica è l'esecuzione di un compito di interesse pubblico di cui è investito il Comune (art. 6, par. 1, lett. e del Regolamento (UE) 2016/679) e il tuo consenso, che dai prenotando.")),
            ],
        ),
        section(
            l.t("Quali dati"),
            vec![t_all(l.t("Nome, cognome, email, telefono, codice fiscale quando il servizio lo chiede e il motivo dell'appuntamento. La videochiamata passa dal server del Comune e non viene registrata."))],
        ),
        section(
            l.t("Chi li vede"),
            vec![t_all(l.t("Il personale dell'ufficio che ti riceve e gli amministratori del servizio. Le email passano dal fornitore di posta del Comune. I dati non sono comunicati ad altri né usati per altri scopi."))],
        ),
        section(
            l.t("Per quanto tempo"),
            vec![
                t_all(l.t("Una prenotazione non confermata via email entro due ore scade, e i suoi dati sono cancellati.")),
                t_all(&l.f(
                    "Nome, cognome, email, telefono, codice fiscale e motivo di un appuntamento sono cancellati {giorni} giorni dopo l'appuntamento; il testo e il destinatario delle email inviate, dopo {giorni_email} giorni. Restano solo dati senza nome, per le statistiche.",
                    &[("giorni", &kept.appointments), ("giorni_email", &kept.emails)],
                )),
            ],
        ),
        section(
            l.t("Cookie"),
            vec![t_all(l.t("Solo cookie tecnici, necessari al funzionamento del sito: la protezione dei moduli da richieste falsificate, la lingua scelta e, per il personale, la sessione di lavoro. Nessun cookie di profilazione o di terze parti."))],
        ),
        section(
            l.t("I tuoi diritti"),
            vec![
                t_all(l.t("Puoi chiedere al titolare di accedere ai tuoi dati, di correggerli o cancellarli, di limitarne il trattamento e di opporti (artt. 15-21 del Regolamento). Puoi annullare l'appuntamento in ogni momento dal link ricevuto per email.")),
                vec![
                    t(l.t("Puoi vedere, scaricare o cancellare da te i dati dei tuoi appuntamenti, con un collegamento che ricevi al tuo indirizzo email: ")),
                    link("/i-miei-dati", l.t("I miei dati")),
                    t("."),
                ],
                vec![
                    t(l.t("Se ritieni che il trattamento violi il Regolamento puoi proporre reclamo al Garante per la protezione dei dati personali: ")),
                    link("https://www.garanteprivacy.it", "www.garanteprivacy.it"),
                    t("."),
                ],
            ],
        ),
    ]
}

fn accessibility_text(l: Lang, town: &str, contact: Option<&Contact>) -> Vec<Section> {
    let feedback = match contact {
        Some(c) => vec![
            t(l.t("Per segnalare un contenuto non accessibile o chiederne una versione accessibile: ")),
            contact_link(c),
            t("."),
        ],
        None => t_all(&l.f(
            "Per segnalare un contenuto non accessibile o chiederne una versione accessibile scrivi all'ufficio che ti interessa (i recapiti sono nella sua pagina) o a {comune}.",
            &[("comune", &town)],
        )),
    };
    vec![
        section(
            "",
            vec![t_all(&l.f(
                "{comune} si impegna a rendere accessibile il proprio servizio di prenotazione degli appuntamenti, conformemente al decreto legislativo 10 agosto 2004, n. 4 e alla direttiva (UE) 2016/2102. Questa dichiarazione si applica a questo sito.",
                &[("comune", &town)],
            ))],
        ),
        section(
            l.t("Stato di conformità"),
            vec![t_all(l.t("Questo sito è parzialmente conforme ai requisiti previsti dall'allegato A alla norma UNI CEI EN 301549 (WCAG 2.1, livello AA), per i contenuti elencati qui sotto."))],
        ),
        section(
            l.t("Contenuti non accessibili"),
            vec![
                t_all(l.t("La videochiamata chiede di vedere e sentire l'altra persona: chi non può usarla può scegliere l'appuntamento in presenza o al telefono, dove l'ufficio li offre.")),
                t_all(l.t("L'invio del modulo di prenotazione chiede JavaScript, per la verifica contro gli abusi: chi non può usarlo può prenotare telefonando all'ufficio.")),
            ],
        ),
        section(
            l.t("Redazione della dichiarazione di accessibilità"),
            vec![t_all(l.t("Questa dichiarazione è stata redatta il 26 novembre 2026 con un'autovalutazione, verificata con test automatici delle pagine in un browser."))],
        ),
        section(
            l.t("Meccanismo di feedback e recapiti"),
            vec![feedback],
        ),
        section(
            l.t("Modalità di invio delle segnalazioni all'AgID"),
            vec![vec![
                t(l.t("In caso di risposta insoddisfacente o di mancata risposta, nel termine di trenta giorni, alla segnalazione o alla richiesta, puoi inviare una segnalazione all'Agenzia per l'Italia Digitale (AgID): ")),
                link("https://form.agid.gov.it", "form.agid.gov.it"),
                t("."),
            ]],
        ),
    ]
}

fn t_all(s: &str) -> Vec<Piece> {
    vec![t(s)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_becomes_sections_with_links_and_its_own_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("privacy.txt");
        let text = "Informativa del Comune.\n\n## Titolare\nComune di Prova,\nPiazza 1.\n\nScrivi a dpo@comune.prova.it, oppure vedi https://www.comune.prova.it/privacy.\n";
        std::fs::write(&path, text).unwrap();
        let n = Notice::read("privacy_notice", &path).unwrap();
        let s = n.sections(Lang::from_code("en").unwrap());
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].heading, "");
        assert_eq!(s[1].heading, "Titolare");
        assert_eq!(s[1].paragraphs[0], vec![t("Comune di Prova, Piazza 1.")]);
        assert_eq!(
            s[1].paragraphs[1],
            vec![
                t("Scrivi a "),
                link("mailto:dpo@comune.prova.it", "dpo@comune.prova.it"),
                t(", oppure vedi "),
                link(
                    "https://www.comune.prova.it/privacy",
                    "https://www.comune.prova.it/privacy"
                ),
                t("."),
            ]
        );
        assert_eq!(n.version.len(), 12);
        // A changed text is a new version; the same text, the same.
        std::fs::write(&path, text.replace("Piazza 1", "Piazza 2")).unwrap();
        let changed = Notice::read("privacy_notice", &path).unwrap();
        assert_ne!(changed.version, n.version);
        std::fs::write(&path, text).unwrap();
        assert_eq!(
            Notice::read("privacy_notice", &path).unwrap().version,
            n.version
        );
    }

    #[test]
    fn hostile_files_are_refused_with_the_settings_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.txt");
        for (bytes, says) in [
            (b"Testo\x1b[2J".to_vec(), "control character"),
            (vec![0xff, 0xfe, b'a'], "not UTF-8"),
            (vec![b'a'; MAX_FILE_BYTES + 1], "larger than"),
            (b"\n\n## \n\n".to_vec(), "no text"),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let e = Notice::read("accessibility_statement", &path)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("accessibility_statement: "), "{e}");
            assert!(e.contains(says), "{e}");
        }
        let e = Notice::read("privacy_notice", &dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn only_web_and_email_addresses_become_links() {
        for word in [
            "javascript:alert(1)",
            "data:text/html,x",
            "@comune",
            "a@b",
            "x@.it",
        ] {
            assert_eq!(linkify(word), vec![t(word)], "{word}");
        }
    }

    const KEPT: Kept = Kept {
        appointments: 365,
        emails: 30,
    };

    #[test]
    fn the_built_in_texts_name_the_town_and_change_version_with_it() {
        let dpo = Contact::Email("dpo@comune.prova.it".into());
        let a = Notice::privacy("Comune di Prova", "Via Roma 1", Some(&dpo), &KEPT);
        let it = a.sections(Lang::IT);
        assert_eq!(it[0].heading, "Titolare del trattamento");
        assert_eq!(
            it[0].paragraphs[0],
            vec![t(
                "Il titolare del trattamento è Comune di Prova, Via Roma 1."
            )]
        );
        assert!(it[0].paragraphs[1]
            .contains(&link("mailto:dpo@comune.prova.it", "dpo@comune.prova.it")));
        assert_eq!(
            a.sections(Lang::from_code("en").unwrap())[0].heading,
            "Controller"
        );
        let b = Notice::privacy("Comune di Altrove", "Via Roma 1", Some(&dpo), &KEPT);
        assert_ne!(a.version, b.version);
        // How long data is kept is part of the text.
        let kept = |s: &[Section]| {
            s.iter()
                .find(|s| s.heading == "Per quanto tempo")
                .map(|s| format!("{:?}", s.paragraphs))
                .unwrap_or_default()
        };
        assert!(kept(a.sections(Lang::IT)).contains("cancellati 365 giorni dopo"));
        let shorter = Kept {
            appointments: 90,
            ..KEPT
        };
        let c = Notice::privacy("Comune di Prova", "Via Roma 1", Some(&dpo), &shorter);
        assert!(kept(c.sections(Lang::IT)).contains("cancellati 90 giorni dopo"));
        assert_ne!(a.version, c.version);
        let s = Notice::accessibility("Comune di Prova", None);
        let headings: Vec<&str> = s
            .sections(Lang::IT)
            .iter()
            .map(|s| s.heading.as_str())
            .collect();
        assert_eq!(
            headings,
            [
                "",
                "Stato di conformità",
                "Contenuti non accessibili",
                "Redazione della dichiarazione di accessibilità",
                "Meccanismo di feedback e recapiti",
                "Modalità di invio delle segnalazioni all'AgID",
            ]
        );
    }
}
