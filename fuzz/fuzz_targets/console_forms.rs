//! The office console's forms (office, service, calendar, account, opening rule, closure), as a
//! logged-in but careless or hostile operator may post them: parsing and checking never panic.
//! The first byte chooses the form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use web::console::form::{
    AccountForm, CalendarForm, ExceptionForm, OfficeForm, RuleForm, ServiceForm,
};

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            if let Ok(f) = serde_html_form::from_bytes::<OfficeForm>(body) {
                let _ = f.check();
            }
        }
        1 => {
            if let Ok(f) = serde_html_form::from_bytes::<ServiceForm>(body) {
                let _ = f.check(1);
            }
        }
        2 => {
            if let Ok(f) = serde_html_form::from_bytes::<CalendarForm>(body) {
                let _ = f.check(1, 1);
            }
        }
        3 => {
            if let Ok(f) = serde_html_form::from_bytes::<AccountForm>(body) {
                let _ = f.check(true);
            }
        }
        4 => {
            if let Ok(f) = serde_html_form::from_bytes::<RuleForm>(body) {
                let _ = f.check();
            }
        }
        _ => {
            if let Ok(f) = serde_html_form::from_bytes::<ExceptionForm>(body) {
                let _ = f.check();
            }
        }
    }
});
