//! A room socket's text message, as any browser (or anyone) may send it: parsing never panics,
//! and a display name that is accepted carries no control or bidirectional-override character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signaling::protocol::{parse, ClientMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ClientMessage::Join { name, .. }) = parse(text) {
        assert!(!name.trim().is_empty());
        assert!(name
            .chars()
            .all(|c| !c.is_control()
                && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')));
    }
});
