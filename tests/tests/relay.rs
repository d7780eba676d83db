//! The media relay with two reactor threads (`--media-reactors 2`), on each engine
//! (`--media-engine webrtc` and `rtc`): real WebRTC participants (`tests::media`) in two rooms
//! at once. Each room's two connections run on one reactor, the rooms on different ones, and
//! media flows both ways in each; a room that empties gives its place back. On each engine, a
//! side that connects after the other's video started gets its last keyframe at once.
//!
//! The tests sit in a module `relay` so that `scripts/test` can run them once (`--skip relay::`
//! under the other "todays"): they check media, which does not depend on the calendar.

mod relay {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tests::media::{join, send_media, Counters};
    use tests::*;

    use sfu::EngineKind as MediaEngine;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_rooms_run_on_two_reactors_and_each_forwards_both_ways() {
        two_rooms_on_two_reactors(MediaEngine::Webrtc, "127.0.0.1").await;
    }

    /// On the rtc engine the workers listen on known ports (the address's port and the next one),
    /// and junk from strangers is sprayed at both all through the call: it must not stop or slow
    /// the media.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_the_rtc_engine_two_rooms_run_on_two_workers_and_each_forwards_both_ways() {
        two_rooms_on_two_reactors(MediaEngine::Rtc, "127.0.0.1").await;
    }

    /// The same with the rtc engine's sockets on every address (`0.0.0.0`): each connection is
    /// offered every address of the machine, and answered from the one its browser wrote to.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_the_rtc_engine_on_every_address_the_media_goes_through_too() {
        two_rooms_on_two_reactors(MediaEngine::Rtc, "0.0.0.0").await;
    }

    /// The citizen's camera sent its keyframe before the operator connected (as when both open
    /// the room at the same moment and one connection is up first): the operator gets that
    /// keyframe the moment it connects, though the citizen sends nothing more and answers no
    /// keyframe request, renumbered to sit just behind the citizen's live stream, with one
    /// sequence number left out so that no frame is decoded against one it never had. A
    /// keyframe is asked of the citizen only once someone can take it: once, when the operator
    /// connects.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_the_rtc_engine_a_side_that_connects_later_gets_the_others_last_keyframe_at_once() {
        later_gets_the_last_keyframe(MediaEngine::Rtc).await;
    }

    /// The same on the webrtc engine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_side_that_connects_later_gets_the_others_last_keyframe_at_once() {
        later_gets_the_last_keyframe(MediaEngine::Webrtc).await;
    }

    async fn later_gets_the_last_keyframe(engine: MediaEngine) {
        use webrtc::media_stream::track_local::TrackLocal;

        let (s, _) = relay_server(engine, "127.0.0.1", 1).await;
        let start = next_after(test_now(), Wed, 9, 0);
        let id = s.video_appointment(start, "anna@example.it").await;
        s.clock.set(start);
        let code = s.state.store.appointment(id).await.unwrap().code;
        let ws = format!("{}/ws/stanza/{code}", s.base.replace("http://", "ws://"));
        let epoch = Instant::now();
        let tokens = [s.room_token(id, false), s.room_token(id, true)];
        let join_as = |operator: bool| {
            join(
                &ws,
                &tokens[usize::from(operator)],
                "Prova",
                Arc::new(Counters::default()),
                epoch,
            )
        };
        let citizen = join_as(false).await.unwrap();

        // VP8 (RFC 7741): S set, a 15-bit picture id, then the payload header (P = 0: key).
        let vp8 = |start: bool, key: bool, picture: u8, fill: u8| {
            let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x80, picture];
            p.push(if key { 0x10 } else { 0x11 });
            p.extend_from_slice(&[fill; 600]);
            bytes::Bytes::from(p)
        };
        let send = |seq: u16, ts: u32, marker: bool, payload: bytes::Bytes| {
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker,
                    payload_type: citizen.pts[1],
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc: citizen.ssrcs[1],
                    ..Default::default()
                },
                payload,
            };
            citizen.tracks[1].write_rtp(pkt)
        };
        // A keyframe of three packets, then two one-packet frames, with nobody to take them.
        let key: Vec<_> = (0..3u8).map(|i| vp8(i == 0, true, 1, 0xA0 + i)).collect();
        for (i, payload) in key.iter().enumerate() {
            send(65_000 + i as u16, 90_000, i == 2, payload.clone())
                .await
                .unwrap();
        }
        send(65_003, 93_000, true, vp8(true, false, 2, 0xB0))
            .await
            .unwrap();
        send(65_004, 96_000, true, vp8(true, false, 3, 0xB1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Nobody could take a keyframe yet, so none was asked for: a browser acts on one request
        // in 300 ms and drops the rest, and a request made now could cost the operator's.
        assert_eq!(
            keyframe_requests(&s).await,
            0,
            "a keyframe asked for nobody"
        );

        let operator = join_as(true).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while operator.video_in.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "no keyframe for the operator");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = operator.video_in.lock().unwrap().clone();
        assert_eq!(got.len(), 3, "only the keyframe");
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.payload, key[i], "packet {i} is the keyframe's");
            assert_eq!(p.header.marker, i == 2);
            assert_eq!(p.header.timestamp, got[0].header.timestamp);
            assert_eq!(
                p.header.sequence_number,
                got[0].header.sequence_number.wrapping_add(i as u16)
            );
        }

        // The next frame follows with one number left out, one frame's time later.
        send(65_005, 99_000, true, vp8(true, false, 4, 0xB2))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while operator.video_in.lock().unwrap().len() < 4 {
            assert!(Instant::now() < deadline, "no live frame for the operator");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let next = operator.video_in.lock().unwrap()[3].clone();
        assert_eq!(next.payload, vp8(true, false, 4, 0xB2));
        assert_eq!(
            next.header.sequence_number,
            got[2].header.sequence_number.wrapping_add(2)
        );
        assert_eq!(
            next.header.timestamp.wrapping_sub(got[2].header.timestamp),
            3001
        );

        // The operator's connection asked the citizen for a fresh keyframe, once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while keyframe_requests(&s).await == 0 {
            assert!(
                Instant::now() < deadline,
                "no keyframe asked for the operator"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(keyframe_requests(&s).await, 1, "one keyframe asked for");

        citizen.leave().await.unwrap();
        operator.leave().await.unwrap();
    }

    /// The keyframe requests the relay has sent to senders (its metrics).
    async fn keyframe_requests(s: &Server) -> u64 {
        let m = s.admin_get("/metrics").await.body;
        m.lines()
            .find_map(|l| l.strip_prefix("sportello_relay_keyframe_requests_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no keyframe requests in the metrics:\n{m}"))
    }

    /// A server whose relay runs on `engine` with `threads` reactors, on `ip`; on the rtc engine
    /// worker i listens on the port returned + i (UDP, and ICE-TCP on the same numbers), on the
    /// webrtc engine each connection has a port of its own.
    async fn relay_server(engine: MediaEngine, ip: &str, threads: usize) -> (Server, u16) {
        let port = free_ports(threads as u16);
        let media_udp = match engine {
            MediaEngine::Rtc => format!("{ip}:{port}"),
            MediaEngine::Webrtc => format!("{ip}:0"),
        };
        let s = Server::start_with(
            Db::Sqlite,
            Options {
                media: Some((media_udp, threads)),
                media_engine: Some(engine),
                media_tcp: (engine == MediaEngine::Rtc).then(|| format!("{ip}:{port}")),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        (s, port)
    }

    async fn two_rooms_on_two_reactors(engine: MediaEngine, ip: &str) {
        let (s, port) = relay_server(engine, ip, 2).await;
        // Two video appointments at the same time (two operators' calendars: the demo service
        // takes one call at a time, so the second is the next slot on the same morning).
        let start = next_after(test_now(), Wed, 9, 0);
        let rooms = [
            s.video_appointment(start, "anna@example.it").await,
            s.video_appointment(start + chrono::Duration::minutes(30), "bruno@example.it")
                .await,
        ];
        // Both rooms open: the second lets its citizen in 5 minutes before its start.
        s.clock.set(start + chrono::Duration::minutes(28));
        assert_eq!(s.state.relay.reactor_rooms(), vec![0, 0]);

        let epoch = Instant::now();
        let mut people = Vec::new();
        let mut counters = Vec::new();
        for id in rooms {
            let code = s.state.store.appointment(id).await.unwrap().code;
            let ws = format!("{}/ws/stanza/{code}", s.base.replace("http://", "ws://"));
            let room = Arc::new(Counters::default());
            for operator in [false, true] {
                let p = join(
                    &ws,
                    &s.room_token(id, operator),
                    "Prova",
                    room.clone(),
                    epoch,
                )
                .await
                .unwrap();
                people.push(Arc::new(p));
            }
            counters.push(room);
        }
        // One room on each reactor.
        assert_eq!(s.state.relay.reactor_rooms(), vec![1, 1]);
        let metrics = s.admin_get("/metrics").await.body;
        for reactor in ["0", "1"] {
            let line = format!("sportello_relay_reactor_rooms{{reactor=\"{reactor}\"}} 1");
            assert!(metrics.lines().any(|l| l == line), "{metrics}");
        }

        // Three seconds of audio and video from everyone.
        let until = Arc::new(Mutex::new(Instant::now() + Duration::from_secs(3)));
        let senders: Vec<_> = people
            .iter()
            .zip([0, 0, 1, 1])
            .map(|(p, room)| {
                tokio::spawn(send_media(
                    p.clone(),
                    counters[room].clone(),
                    epoch,
                    500,
                    until.clone(),
                ))
            })
            .collect();
        if engine == MediaEngine::Rtc {
            // The junk goes where the workers listen.
            for p in [port, port + 1] {
                assert!(
                    std::net::UdpSocket::bind(("127.0.0.1", p)).is_err(),
                    "worker port {p}"
                );
            }
        }
        let junk = (engine == MediaEngine::Rtc).then(|| {
            (
                tokio::spawn(spray_junk([port, port + 1], until.clone())),
                tokio::spawn(junk_streams([port, port + 1], until.clone())),
            )
        });
        for sender in senders {
            sender.await.unwrap();
        }
        if let Some((datagrams, streams)) = junk {
            let sprayed = datagrams.await.unwrap();
            assert!(sprayed > 100, "{sprayed} junk datagrams sent");
            let opened = streams.await.unwrap();
            assert!(opened > 10, "{opened} junk ICE-TCP streams opened");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (i, c) in counters.iter().enumerate() {
            let sent = c.sent.load(std::sync::atomic::Ordering::Relaxed);
            let received = c.received.load(std::sync::atomic::Ordering::Relaxed);
            // Both sides sent for 3 s, and what each received came through the relay.
            assert!(sent > 100, "room {i}: {sent} sent");
            assert!(
                received * 10 >= sent * 9,
                "room {i}: {received} of {sent} packets arrived"
            );
        }
        // The rtc engine counts how long each datagram it read spent in it: every media packet
        // (and the junk) at least once; the webrtc engine does not measure it.
        let metrics = s.admin_get("/metrics").await.body;
        let transit = tests::process::histogram(&metrics, "sportello_relay_transit_seconds");
        let counted = transit.last().map_or(0, |b| b.1);
        let sent: u64 = counters
            .iter()
            .map(|c| c.sent.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        match engine {
            MediaEngine::Rtc => assert!(counted >= sent, "{counted} of {sent}: {metrics}"),
            MediaEngine::Webrtc => assert_eq!(counted, 0, "{metrics}"),
        }

        // Everyone leaves: the rooms are forgotten and give their places back.
        for p in people {
            Arc::into_inner(p).unwrap().leave().await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.state.relay.reactor_rooms() != vec![0, 0] {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                s.state.relay.reactor_rooms()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hostile ICE-TCP streams to the workers' TCP ports at `ports`, until `until`: junk frames,
    /// a STUN request naming an ICE username nobody was given, a frame that announces 65,535
    /// bytes and stops, and streams that say nothing (some kept open to the end). How many were
    /// opened.
    async fn junk_streams(ports: [u16; 2], until: Arc<Mutex<Instant>>) -> usize {
        use tokio::io::AsyncWriteExt;
        let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7u8; 12]);
        stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
        stun.extend_from_slice(b"nobody:x");
        let mut framed_stun = (stun.len() as u16).to_be_bytes().to_vec();
        framed_stun.extend_from_slice(&stun);
        let writes: [&[u8]; 4] = [
            &[0, 5, 1, 2, 3, 4, 5, 0, 0],
            &framed_stun,
            &[0xff, 0xff, 1, 2],
            &[],
        ];
        let mut kept = Vec::new();
        let mut opened = 0;
        let mut n = 0;
        while Instant::now() < *until.lock().unwrap() {
            for p in ports {
                let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", p)).await else {
                    continue;
                };
                opened += 1;
                n += 1;
                let _ = s.write_all(writes[n % writes.len()]).await;
                if n % 3 == 0 {
                    kept.push(s);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        opened
    }

    /// Hostile datagrams from an address no participant has, at `ports`, until `until`: random
    /// bytes of every size up to 64 KiB (more than the relay's read buffer), empty ones, a STUN
    /// binding request naming an ICE username nobody was given, and an RTP-looking packet. How
    /// many were sent.
    async fn spray_junk(ports: [u16; 2], until: Arc<Mutex<Instant>>) -> usize {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7u8; 12]);
        stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
        stun.extend_from_slice(b"nobody:x");
        let rtp = [
            0x80, 0x60, 0x00, 0x01, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
        ];
        let mut sent = 0;
        let mut n: usize = 1;
        while Instant::now() < *until.lock().unwrap() {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let size = [0, 1, 20, 1_200, 2_048, 2_049, 65_000][n % 7];
            let random: Vec<u8> = (0..size).map(|i| (n >> (i % 56)) as u8).collect();
            for datagram in [&random[..], &stun[..], &rtp[..]] {
                for p in ports {
                    if socket.send_to(datagram, ("127.0.0.1", p)).await.is_ok() {
                        sent += 1;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    }
}
