//! The public booking form's body, as anyone may post it: parsing and checking never panic, and
//! what is accepted has single-line fields without line breaks, control or bidi characters.
#![no_main]

use booking::validate::{allowed_in_line, validate, validate_for_office, BookingForm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_html_form::from_bytes::<BookingForm>(data) else {
        return;
    };
    for v in [validate(1, &form), validate_for_office(1, &form)]
        .into_iter()
        .flatten()
    {
        let c = &v.contact;
        for line in [
            &c.given_name,
            &c.family_name,
            &c.email,
            &c.phone,
            &c.fiscal_code,
        ] {
            assert!(line.chars().all(allowed_in_line), "{line:?}");
        }
    }
});
