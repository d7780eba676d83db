//! Italian fiscal codes (codice fiscale) of people: the shape (surname and name letters, year,
//! month letter, day, place code), the check character, and omocodia, where the revenue agency
//! replaces digits by letters (L M N P Q R S T U V for 0-9) to tell apart two people whose codes
//! would otherwise be the same. `person` gives the one form of a code that all its omocode
//! variants share, so that the rule "one active appointment per person" holds whichever variant
//! is typed. Pure: no I/O.

/// The positions (0-based) where omocodia may put a letter in place of a digit.
const OMOCODE_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
const OMOCODE_LETTERS: &[u8; 10] = b"LMNPQRSTUV";
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

/// A fiscal code in capitals without spaces, as people type it: "rss mra 85t10 a562s" too.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Whether `code` (normalised) is a person's fiscal code: its shape, month, day and check
/// character, omocode letters allowed where the agency uses them.
pub fn is_valid(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 16 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let Some(plain) = digits_restored(b) else {
        return false;
    };
    let letters = [0, 1, 2, 3, 4, 5, 8, 11, 15];
    if !letters.iter().all(|&i| plain[i].is_ascii_uppercase())
        || !OMOCODE_POSITIONS.iter().all(|&i| plain[i].is_ascii_digit())
    {
        return false;
    }
    if !MONTHS.contains(&plain[8]) {
        return false;
    }
    let day = u32::from(plain[9] - b'0') * 10 + u32::from(plain[10] - b'0');
    // Women's days are counted from 41.
    if !(1..=31).contains(&day) && !(41..=71).contains(&day) {
        return false;
    }
    check_char(&b[..15]) == b[15]
}

/// The one form of a valid fiscal code shared by all its omocode variants: digits where the
/// agency's letters stood, and the check character of that form.
pub fn person(code: &str) -> Option<String> {
    if !is_valid(code) {
        return None;
    }
    let mut plain = digits_restored(code.as_bytes())?;
    plain[15] = check_char(&plain[..15]);
    String::from_utf8(plain).ok()
}

/// The code with omocode letters turned back into digits (None: a letter that is no omocode
/// letter where a digit belongs).
fn digits_restored(b: &[u8]) -> Option<Vec<u8>> {
    let mut plain = b.to_vec();
    for &i in &OMOCODE_POSITIONS {
        if !plain[i].is_ascii_digit() {
            let d = OMOCODE_LETTERS.iter().position(|&l| l == plain[i])?;
            plain[i] = b'0' + d as u8;
        }
    }
    Some(plain)
}

/// The check character of the first 15 characters (capitals and digits).
pub fn check_char(first15: &[u8]) -> u8 {
    // The values of characters in odd positions (1st, 3rd, ...), for 0-9 and A-Z alike.
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let v = if c.is_ascii_digit() {
                c - b'0'
            } else {
                c - b'A'
            } as usize;
            if i % 2 == 0 {
                ODD[v]
            } else {
                v as u32
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A code with its check character computed.
    fn with_check(first15: &str) -> String {
        format!("{first15}{}", check_char(first15.as_bytes()) as char)
    }

    #[test]
    fn known_codes_are_valid_and_their_check_character_counts() {
        // The agency's well-known examples.
        for code in ["RSSMRA85T10A562S", "MRTMTT25D09F205Z"] {
            assert!(is_valid(code), "{code}");
            let mut wrong = code.as_bytes().to_vec();
            wrong[15] = if wrong[15] == b'A' { b'B' } else { b'A' };
            assert!(!is_valid(std::str::from_utf8(&wrong).unwrap()), "{code}");
        }
        assert_eq!(normalise(" rssmra 85t10 a562s "), "RSSMRA85T10A562S");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for code in [
            "",
            "RSSMRA85T10A562",
            "RSSMRA85T10A562SS",
            "RSSMRA85T10A56?S",
            "RSSMRÀ85T10A562S",
            &with_check("RSSMRA85Z10A562"), // no month Z
            &with_check("RSSMRA85T00A562"), // day 0
            &with_check("RSSMRA85T35A562"), // day 35
            &with_check("RSSMRA85T72A562"), // day 72
            &with_check("RSSMRA8AT10A562"), // A is no omocode letter
            &with_check("1SSMRA85T10A562"), // a digit among the name's letters
        ] {
            assert!(!is_valid(code), "{code}");
        }
        assert!(is_valid(&with_check("BNCLRA80A71H501"))); // a woman born on the 31st
    }

    #[test]
    fn omocode_variants_are_one_person() {
        let plain = "RSSMRA85T10A562S";
        // The agency replaces digits from the right: 2 -> N, then 6 -> S, ...
        let v1 = with_check("RSSMRA85T10A56N");
        let v2 = with_check("RSSMRA85T10A5SN");
        let v7 = with_check("RSSMRAURTMLARSN");
        for v in [&v1, &v2, &v7] {
            assert!(is_valid(v), "{v}");
            assert_eq!(person(v).as_deref(), Some(plain), "{v}");
        }
        assert_eq!(person(plain).as_deref(), Some(plain));
        assert_ne!(person(&with_check("BNCLRA80A41H501")), person(plain));
        assert_eq!(person("RSSMRA85T10A562X"), None);
    }
}
