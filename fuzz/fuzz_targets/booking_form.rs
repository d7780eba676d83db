//! The public booking form's body, as anyone may post it: parsing and checking never panic, and
//! what is accepted has single-line fields without line breaks, control or bidi characters, and
//! a valid fiscal code where the service asks for one.
#![no_main]

use booking::validate::{allowed_in_line, validate, validate_for_office, BookingForm};
use booking::{ModeSet, Service};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_html_form::from_bytes::<BookingForm>(data) else {
        return;
    };
    for fiscal_code_required in [false, true] {
        let service = Service {
            id: 1,
            office_id: 1,
            calendar_id: 1,
            title: String::new(),
            description: String::new(),
            max_minutes: 30,
            instructions: String::new(),
            documents: String::new(),
            modes: ModeSet::ALL,
            published: true,
            fiscal_code_required,
            login_required: false,
        };
        for v in [
            validate(&service, &form),
            validate_for_office(&service, &form),
        ]
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
            if fiscal_code_required {
                assert!(
                    booking::fiscal::is_valid(&c.fiscal_code),
                    "{:?}",
                    c.fiscal_code
                );
            }
        }
    }
});
