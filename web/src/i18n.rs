//! The pages' language is the booking crate's `Lang` (see `booking::i18n`): one language type,
//! for pages and emails alike.

pub use booking::i18n::{mark, Lang, Text};

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::Lang;

    /// What asks for a text: a call whose first argument is the text's Italian.
    const CALLS: [&str; 7] = [
        ".t(",
        ".f(",
        "Text::new(",
        "mark(",
        "invalid(",
        ".says(",
        "Label(",
    ];

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "html") {
                out.push(p);
            }
        }
    }

    /// The string literal at the start of `s` (after blanks), unescaped.
    fn literal(s: &str) -> Option<String> {
        let mut chars = s.trim_start().strip_prefix('"')?.chars();
        let mut out = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '\n' => {
                        // A continued line: its leading blanks are not part of the text.
                        let rest: String = chars.clone().collect();
                        let skip = rest.len() - rest.trim_start().len();
                        chars = s[s.len() - rest.len() + skip..].chars();
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    }

    /// Every Italian text the code and the templates ask a catalogue for.
    fn asked() -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut paths = Vec::new();
        for dir in ["booking/src", "staff/src", "web/src", "web/templates"] {
            files(&root.join(dir), &mut paths);
        }
        let mut texts = BTreeSet::new();
        // Not this file: its list of calls would read as texts.
        for p in paths
            .into_iter()
            .filter(|p| !p.ends_with("web/src/i18n.rs"))
        {
            let src = std::fs::read_to_string(&p).unwrap();
            for call in CALLS {
                for (i, _) in src.match_indices(call) {
                    if let Some(t) = literal(&src[i + call.len()..]) {
                        texts.insert(t);
                    }
                }
            }
        }
        texts
    }

    fn places(s: &str) -> BTreeSet<&str> {
        s.split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn every_text_is_in_every_built_in_language_and_nothing_else_is() {
        let asked = asked();
        assert!(
            asked.len() > 500,
            "the scan finds the texts: {}",
            asked.len()
        );
        assert!(asked.contains("Uffici") && asked.contains("lunedì") && asked.contains("Svolti"));
        for l in Lang::all().skip(1) {
            let own: BTreeSet<String> = l.own_texts().map(|(k, _)| k.to_string()).collect();
            let missing: Vec<_> = asked.difference(&own).collect();
            let unused: Vec<_> = own.difference(&asked).collect();
            assert!(
                missing.is_empty(),
                "{}: texts without a translation: {missing:#?}",
                l.code()
            );
            assert!(
                unused.is_empty(),
                "{}: texts nothing asks for: {unused:#?}",
                l.code()
            );
            for (it, tr) in l.own_texts() {
                assert_eq!(places(it), places(tr), "{}: the places of {it:?}", l.code());
                assert_eq!(
                    it.contains('|'),
                    tr.contains('|'),
                    "{}: the forms of {it:?}",
                    l.code()
                );
                assert!(
                    !tr.trim().is_empty() || it.trim().is_empty(),
                    "{}: {it:?} is empty",
                    l.code()
                );
            }
        }
    }
}
