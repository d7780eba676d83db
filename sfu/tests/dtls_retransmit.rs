//! The DTLS handshake survives a lost flight: the fix in `vendor/rtc-dtls` (`PATCH.md`).
//!
//! The relay is the DTLS client of every browser. When a packet of its flight 5 is lost, the
//! browser repeats its flight 4; as published, rtc-dtls 0.21.1 then stopped its own
//! retransmission timer and never sent flight 5 again, and the call hung in "connecting". Here
//! two in-memory endpoints (no sockets, a made-up clock) lose the client's first flight 5.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::dtls::cipher_suite::CipherSuiteId;
use rtc::dtls::config::{ConfigBuilder, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::shared::{TransportMessage, TransportProtocol};

/// The server repeats its flights sooner than the client (Chromium starts at 100 ms, before
/// the relay's 1 s): its repeated flight 4 reaches the client before the client's own timer.
fn config(is_client: bool) -> Arc<HandshakeConfig> {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let mut builder = ConfigBuilder::default()
        .with_crypto_provider(provider.clone())
        .with_cipher_suites(vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256])
        .with_insecure_skip_verify(true);
    if !is_client {
        builder = builder
            .with_flight_interval(Duration::from_millis(300))
            .with_certificates(vec![Certificate::generate_self_signed(
                vec!["localhost".to_owned()],
                provider.crypto(),
            )
            .expect("a certificate")]);
    }
    Arc::new(
        builder
            .build(is_client, None)
            .expect("a DTLS configuration"),
    )
}

/// Whether a datagram holds a record of epoch 1 or later: the client's flight 5 ends with
/// ChangeCipherSpec and an encrypted Finished.
fn has_encrypted_record(datagram: &[u8]) -> bool {
    let mut at = 0;
    while at + 13 <= datagram.len() {
        let epoch = u16::from_be_bytes([datagram[at + 3], datagram[at + 4]]);
        if epoch > 0 {
            return true;
        }
        at += 13 + usize::from(u16::from_be_bytes([datagram[at + 11], datagram[at + 12]]));
    }
    false
}

/// Hands `batch` to `to` as coming from `from`: whether that completed `to`'s handshake.
fn deliver(
    batch: Vec<TransportMessage<BytesMut>>,
    to: &mut Endpoint,
    from: SocketAddr,
    now: Instant,
) -> bool {
    let mut done = false;
    for t in batch {
        let events = to.read(now, from, None, t.message).expect("read");
        done |= events
            .iter()
            .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
    }
    done
}

#[test]
fn a_lost_flight_5_is_sent_again_and_the_handshake_completes() {
    let client_addr = SocketAddr::from(([127, 0, 0, 1], 4444));
    let server_addr = SocketAddr::from(([127, 0, 0, 1], 4445));
    let mut server = Endpoint::new(server_addr, TransportProtocol::UDP, Some(config(false)));
    let mut client = Endpoint::new(client_addr, TransportProtocol::UDP, None);
    let mut now = Instant::now();
    client
        .connect(now, server_addr, config(true), None)
        .expect("connect");

    let (mut client_done, mut server_done) = (false, false);
    let mut dropped = 0;
    for _ in 0..64 {
        // Client to server; the first flight 5 is lost on the way.
        let mut batch: Vec<_> = std::iter::from_fn(|| client.poll_transmit()).collect();
        let moved_up = !batch.is_empty();
        if dropped == 0 && batch.iter().any(|t| has_encrypted_record(&t.message)) {
            dropped = batch.len();
            batch.clear();
        }
        server_done |= deliver(batch, &mut server, client_addr, now);
        let batch: Vec<_> = std::iter::from_fn(|| server.poll_transmit()).collect();
        let moved = moved_up || !batch.is_empty();
        client_done |= deliver(batch, &mut client, server_addr, now);
        if client_done && server_done {
            break;
        }
        if !moved {
            // Nothing in flight: move the clock to the next retransmission.
            let next = [
                client.poll_timeout(&server_addr),
                server.poll_timeout(&client_addr),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else {
                break; // No timer left: nobody will ever send again.
            };
            now = now.max(next);
            if client.poll_timeout(&server_addr).is_some_and(|t| t <= now) {
                client
                    .handle_timeout(server_addr, now)
                    .expect("client timer");
            }
            if server.poll_timeout(&client_addr).is_some_and(|t| t <= now)
                && server.handle_timeout(client_addr, now).is_err()
            {
                break; // The server gave up repeating its flight 4.
            }
        }
    }
    assert!(dropped > 0, "the client's flight 5 was seen and lost");
    assert!(
        client_done && server_done,
        "the handshake completed after the loss (client {client_done}, server {server_done})"
    );
}
