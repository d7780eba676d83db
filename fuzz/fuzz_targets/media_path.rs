//! What a connected browser sends the relay's own media path once DTLS is done: any RTP and
//! RTCP it seals with its keys (an authenticated but hostile client), and datagrams it never
//! sealed. Nothing panics, nothing unsealed is taken, and everything the relay sends back opens
//! with the browser's keys (`sfu::direct::fuzz_media_path`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sfu::direct::fuzz_media_path(data);
});
