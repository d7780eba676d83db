//! The RTP/RTCP interceptors of every relay connection, and their timing.
//!
//! The set is the crate's default one — NACK generator and responder, receiver and sender
//! reports, transport-wide congestion feedback for the browsers' uplink — plus a tap on the NACK
//! responder that hands receivers' keyframe requests, NACKs and loss reports to the relay. The `webrtc`
//! engine gives `registry` to each connection; the `rtc` engine drives the same interceptors
//! itself (`Driven`, in `direct::media`) and gives `rtc` only a `Mirror`.
//!
//! What differs is *when* their timers fire. Each of them wakes on its own clock (NACK checks
//! and congestion feedback every 100 ms, reports every second, counted from when each stream
//! started), so a room of two connections woke the relay thread ~40 times a second for timers
//! alone, each a full sleep and wake-up of the thread. Here every timer lands on one shared
//! 100 ms tick: the same feedback and report rates, one wake-up per tick for all connections of
//! the thread.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, Interceptor, NackGeneratorBuilder, NackGeneratorInterceptor, NackResponderBuilder,
    NackResponderInterceptor, Packet, ReceiverReportBuilder, ReceiverReportInterceptor, Registry,
    SenderReportBuilder, SenderReportInterceptor, Slot, StreamInfo, TaggedPacket,
    TwccReceiverBuilder, TwccReceiverInterceptor,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;

type Error = rtc::shared::error::Error;

/// The shared tick every interceptor timer is aligned to.
pub const TICK: Duration = Duration::from_millis(100);

/// The interceptors' own intervals. A timer handled at a tick asks for `now + interval`, which
/// the alignment rounds up to the next tick: so the effective periods are one tick for NACK
/// checks and congestion feedback, ten ticks (1 s) for reports.
const FAST_INTERVAL: Duration = Duration::from_millis(10);
const REPORT_INTERVAL: Duration = Duration::from_millis(910);
const MAX_NACKS_PER_PACKET: u16 = 10;
/// Packets each outgoing stream keeps for resending on a NACK (a power of two). 256 video
/// packets are 1.5–2 s at 1.5 Mbit/s, several round trips even on a poor mobile link; a NACK
/// for anything older comes too late for the frame it belongs to. The crate's default, 1024,
/// kept ~1.3 MB per video stream alive: most of a room's memory.
const SEND_HISTORY: u16 = 256;

/// The first tick at or after `deadline`, ticks counted from `epoch`.
pub fn on_tick(deadline: Instant, epoch: Instant, tick: Duration) -> Instant {
    let Some(since) = deadline.checked_duration_since(epoch) else {
        return deadline;
    };
    let tick_ns = tick.as_nanos().max(1);
    let ticks = since.as_nanos().div_ceil(tick_ns);
    epoch + Duration::from_nanos((ticks * tick_ns) as u64)
}

/// Where ticks are counted from: the first time anyone asked.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// What a wrapping stage passes unchanged to the stage it wraps (`self.$inner`): the stage's
/// message types (`types`) and any of its methods named.
macro_rules! pass_to {
    ($inner:tt: $($what:ident),+) => { $(pass_to!(@ $inner $what);)+ };
    (@ $i:tt types) => {
        type Rout = TaggedPacket;
        type Wout = TaggedPacket;
        type Eout = ();
        type Error = Error;
        type Time = Instant;
    };
    (@ $i:tt handle_read) => { pass_to!(@ $i handle_read(msg: TaggedPacket) -> Result<(), Error>); };
    (@ $i:tt poll_read) => { pass_to!(@ $i poll_read() -> Option<TaggedPacket>); };
    (@ $i:tt handle_write) => { pass_to!(@ $i handle_write(msg: TaggedPacket) -> Result<(), Error>); };
    (@ $i:tt poll_write) => { pass_to!(@ $i poll_write() -> Option<TaggedPacket>); };
    (@ $i:tt handle_event) => { pass_to!(@ $i handle_event(evt: ()) -> Result<(), Error>); };
    (@ $i:tt poll_event) => { pass_to!(@ $i poll_event() -> Option<()>); };
    (@ $i:tt handle_timeout) => { pass_to!(@ $i handle_timeout(now: Instant) -> Result<(), Error>); };
    (@ $i:tt poll_timeout) => { pass_to!(@ $i poll_timeout() -> Option<Instant>); };
    (@ $i:tt close) => { pass_to!(@ $i close() -> Result<(), Error>); };
    (@ $i:tt bind_local_stream) => { pass_to!(@ $i bind_local_stream(info: &StreamInfo) -> ()); };
    (@ $i:tt unbind_local_stream) => { pass_to!(@ $i unbind_local_stream(info: &StreamInfo) -> ()); };
    (@ $i:tt bind_remote_stream) => { pass_to!(@ $i bind_remote_stream(info: &StreamInfo) -> ()); };
    (@ $i:tt unbind_remote_stream) => { pass_to!(@ $i unbind_remote_stream(info: &StreamInfo) -> ()); };
    (@ $i:tt $method:ident($($arg:ident: $ty:ty)?) -> $out:ty) => {
        fn $method(&mut self $(, $arg: $ty)?) -> $out {
            self.$i.$method($($arg)?)
        }
    };
}

/// An interceptor whose wake-ups are moved to the next shared tick.
pub struct OnTick<I>(pub I);

impl<I> Protocol<TaggedPacket, TaggedPacket, ()> for OnTick<I>
where
    I: Interceptor,
{
    pass_to!(0: types, handle_read, poll_read, handle_write, poll_write, handle_event, poll_event,
        close);

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        // Another part of the connection may wake the chain between ticks: not for this one.
        match self.poll_timeout() {
            Some(due) if due <= now => self.0.handle_timeout(now),
            _ => Ok(()),
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.0
            .poll_timeout()
            .map(|deadline| on_tick(deadline, epoch(), TICK))
    }
}

impl<I> Interceptor for OnTick<I>
where
    I: Interceptor,
{
    pass_to!(0: bind_local_stream, unbind_local_stream, bind_remote_stream, unbind_remote_stream);
}

/// A stream `rtc` bound or unbound in its chain (`Mirror`): whether it is one of the relay's own
/// (local), and its description.
#[derive(Debug, Clone)]
pub struct Bind {
    pub bound: bool,
    pub local: bool,
    pub info: StreamInfo,
}

/// Where `Mirror` leaves what `rtc` bound, for the relay's own chain to bind the same.
pub type Binds = std::sync::Arc<std::sync::Mutex<Vec<Bind>>>;

/// `rtc`'s whole chain when the relay drives its own (`direct::media`): passes every message on
/// untouched and records every stream `rtc` binds and unbinds.
pub struct Mirror {
    inner: rtc::interceptor::NoopInterceptor,
    binds: Binds,
}

impl Mirror {
    /// A mirror, and where it leaves the streams bound.
    pub fn new() -> (Mirror, Binds) {
        let binds = Binds::default();
        let inner = rtc::interceptor::NoopInterceptor::new();
        (
            Mirror {
                inner,
                binds: binds.clone(),
            },
            binds,
        )
    }

    fn record(&mut self, bound: bool, local: bool, info: &StreamInfo) {
        if let Ok(mut binds) = self.binds.lock() {
            binds.push(Bind {
                bound,
                local,
                info: info.clone(),
            });
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Mirror {
    pass_to!(inner: types, handle_read, poll_read, handle_write, poll_write, handle_event,
        poll_event, handle_timeout, poll_timeout, close);
}

impl Interceptor for Mirror {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.record(true, true, info);
        self.inner.bind_local_stream(info)
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.record(false, true, info);
        self.inner.unbind_local_stream(info)
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.record(true, false, info);
        self.inner.bind_remote_stream(info)
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.record(false, false, info);
        self.inner.unbind_remote_stream(info)
    }
}

/// The NACK generator, told when a missing packet arrived again as a retransmission.
///
/// Retransmissions come on the stream's RTX SSRC (RFC 4588), which the generator does not
/// know; it went on asking for packets it already had (with 3 % loss a browser resent some
/// 400 packets in 10 s where ~20 were lost). Each RTX packet is also shown to it as the
/// original — the primary SSRC and the sequence number carried in the RTX payload.
pub struct RtxAware<I> {
    inner: I,
    /// RTX SSRC → primary SSRC.
    rtx: std::collections::HashMap<u32, u32>,
    /// For each message given to `inner`, whether it was such a copy (not to be passed on).
    copies: VecDeque<bool>,
}

impl<I> RtxAware<I> {
    pub fn new(inner: I) -> Self {
        RtxAware {
            inner,
            rtx: Default::default(),
            copies: VecDeque::new(),
        }
    }
}

/// The original of an RTX packet: its stream's SSRC and the sequence number in its payload.
pub fn rtx_original(rtx: &rtc::rtp::Packet, primary_ssrc: u32) -> Option<rtc::rtp::Packet> {
    let osn = rtx.payload.get(..2)?;
    let mut original = rtx.clone();
    original.header.ssrc = primary_ssrc;
    original.header.sequence_number = u16::from_be_bytes([osn[0], osn[1]]);
    original.payload = rtx.payload.slice(2..);
    Some(original)
}

impl<I> Protocol<TaggedPacket, TaggedPacket, ()> for RtxAware<I>
where
    I: Interceptor,
{
    pass_to!(inner: types, handle_write, poll_write, handle_event, poll_event, handle_timeout,
        poll_timeout, close);

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        let copy = match &msg.message.packet {
            Packet::Rtp(p) => self
                .rtx
                .get(&p.header.ssrc)
                .and_then(|primary| rtx_original(p, *primary))
                .map(|original| TaggedPacket {
                    now: msg.now,
                    transport: msg.transport,
                    message: rtc::interceptor::AttributedPacket::new(Packet::Rtp(original)),
                }),
            _ => None,
        };
        if let Some(copy) = copy {
            self.copies.push_back(true);
            self.inner.handle_read(copy)?;
        }
        self.copies.push_back(false);
        self.inner.handle_read(msg)
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        loop {
            let msg = self.inner.poll_read()?;
            if !self.copies.pop_front().unwrap_or(false) {
                return Some(msg);
            }
        }
    }
}

impl<I> Interceptor for RtxAware<I>
where
    I: Interceptor,
{
    pass_to!(inner: bind_local_stream, unbind_local_stream);

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.rtx.insert(rtx, info.ssrc);
        }
        self.inner.bind_remote_stream(info)
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.rtx.remove(&rtx);
        }
        self.inner.unbind_remote_stream(info)
    }
}

/// Marks keyframe requests, NACKs and loss reports (report blocks) from receivers for the
/// application, and hands every message on to the interceptor it wraps. A wrapper rather than a stage of its own: each stage
/// of the chain moves every packet in and out of a queue of its own, both ways, which cost
/// ~3 % of the relay's CPU at full load for a stage that only looks at RTCP.
pub struct FeedbackTap<I>(pub I);

impl<I> Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackTap<I>
where
    I: Interceptor,
{
    pass_to!(0: types, poll_read, handle_write, poll_write, handle_event, poll_event,
        handle_timeout, poll_timeout, close);

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted = packets.iter().any(|p| {
                let a = p.as_any();
                a.is::<PictureLossIndication>()
                    || a.is::<FullIntraRequest>()
                    || a.is::<TransportLayerNack>()
            }) || !crate::stats::reported_lost(packets).is_empty();
            if wanted {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.0.handle_read(msg)
    }
}

impl<I> Interceptor for FeedbackTap<I>
where
    I: Interceptor,
{
    pass_to!(0: bind_local_stream, unbind_local_stream, bind_remote_stream, unbind_remote_stream);
}

/// The interceptors of one connection, with what they need negotiated registered on `media`
/// (its codecs first: feedback is added to the codecs already there).
pub fn registry(media: &mut MediaEngine) -> Result<Registry, Error> {
    negotiate(media)?;
    Ok(set())
}

/// What the interceptors need negotiated with the browser, registered on `media`: NACK and
/// keyframe requests for video, the header extensions, transport-wide congestion feedback.
pub fn negotiate(media: &mut MediaEngine) -> Result<(), Error> {
    for (typ, parameter) in [("nack", ""), ("nack", "pli")] {
        media.register_feedback(
            RTCPFeedback {
                typ: typ.into(),
                parameter: parameter.into(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(media)?;
    // Transport-wide congestion feedback, so each browser can size its uplink to the relay.
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".into(),
                parameter: String::new(),
            },
            kind,
        );
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
}

/// The interceptors of one connection, as a registry to build them from.
pub fn set() -> Registry {
    Registry::new()
        .with(
            Slot::NackResponder,
            // The responder passes every message read on, marked or not.
            FeedbackTap(nack_responder()),
        )
        .with(Slot::NackGenerator, nack_generator())
        .with(Slot::TwccReceiver, twcc_receiver())
        .with(Slot::ReceiverReport, receiver_report())
        .with(Slot::SenderReport, sender_report())
}

/// The same interceptors as `set`, for a relay that drives them itself (`direct::media`): each
/// called in turn, with no chain between them. A chain (`Registry::build`) takes every packet
/// through every stage both ways, each stage queueing it by value, and allocates a queue for
/// each packet it walks; here an incoming packet goes through the three stages of the browser's
/// streams (NACK generator, congestion feedback, receiver reports) and an outgoing one through
/// the two of the relay's (sender reports, NACK responder), and nothing is allocated on the way.
pub struct Driven {
    nack_generator: OnTick<RtxAware<NackGeneratorInterceptor>>,
    twcc_receiver: OnTick<TwccReceiverInterceptor>,
    receiver_report: OnTick<ReceiverReportInterceptor>,
    sender_report: OnTick<SenderReportInterceptor>,
    nack_responder: NackResponderInterceptor,
}

impl Default for Driven {
    fn default() -> Self {
        Driven {
            nack_generator: nack_generator(),
            twcc_receiver: twcc_receiver(),
            receiver_report: receiver_report(),
            sender_report: sender_report(),
            nack_responder: nack_responder(),
        }
    }
}

impl Driven {
    /// An RTP packet from the browser: what comes out of the stages (the packet itself), to
    /// `out`.
    pub fn read_rtp(&mut self, msg: TaggedPacket, mut out: impl FnMut(TaggedPacket)) {
        let _ = self.nack_generator.handle_read(msg);
        while let Some(a) = self.nack_generator.poll_read() {
            let _ = self.twcc_receiver.handle_read(a);
            while let Some(b) = self.twcc_receiver.poll_read() {
                let _ = self.receiver_report.handle_read(b);
                while let Some(c) = self.receiver_report.poll_read() {
                    out(c);
                }
            }
        }
    }

    /// RTCP from the browser: its NACKs to the responder, its sender reports to the receiver
    /// reports. Nothing comes out.
    pub fn read_rtcp(&mut self, packets: Vec<Box<dyn rtc::rtcp::Packet>>, now: Instant) {
        let tagged = |packets| TaggedPacket {
            now,
            transport: Default::default(),
            message: rtc::interceptor::AttributedPacket::new(Packet::Rtcp(packets)),
        };
        let _ = self.nack_responder.handle_read(tagged(packets.clone()));
        let _ = self.receiver_report.handle_read(tagged(packets));
        while self.nack_responder.poll_read().is_some() {}
        while self.receiver_report.poll_read().is_some() {}
    }

    /// A packet for the browser.
    pub fn write(&mut self, msg: TaggedPacket) {
        let _ = self.sender_report.handle_write(msg);
        while let Some(m) = self.sender_report.poll_write() {
            let _ = self.nack_responder.handle_write(m);
        }
    }

    /// The next packet for the browser: what was written, retransmissions, and the stages'
    /// own RTCP (reports, NACKs, congestion feedback).
    pub fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.nack_responder
            .poll_write()
            .or_else(|| self.sender_report.poll_write())
            .or_else(|| self.nack_generator.poll_write())
            .or_else(|| self.twcc_receiver.poll_write())
            .or_else(|| self.receiver_report.poll_write())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.nack_generator.handle_timeout(now);
        let _ = self.twcc_receiver.handle_timeout(now);
        let _ = self.receiver_report.handle_timeout(now);
        let _ = self.sender_report.handle_timeout(now);
        let _ = self.nack_responder.handle_timeout(now);
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.nack_generator.poll_timeout(),
            self.twcc_receiver.poll_timeout(),
            self.receiver_report.poll_timeout(),
            self.sender_report.poll_timeout(),
            self.nack_responder.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// One of the relay's own streams, bound or unbound.
    pub fn local_stream(&mut self, info: &StreamInfo, bound: bool) {
        if bound {
            self.sender_report.bind_local_stream(info);
            self.nack_responder.bind_local_stream(info);
        } else {
            self.sender_report.unbind_local_stream(info);
            self.nack_responder.unbind_local_stream(info);
        }
    }

    /// One of the browser's streams, bound or unbound.
    pub fn remote_stream(&mut self, info: &StreamInfo, bound: bool) {
        if bound {
            self.nack_generator.bind_remote_stream(info);
            self.twcc_receiver.bind_remote_stream(info);
            self.receiver_report.bind_remote_stream(info);
        } else {
            self.nack_generator.unbind_remote_stream(info);
            self.twcc_receiver.unbind_remote_stream(info);
            self.receiver_report.unbind_remote_stream(info);
        }
    }
}

fn nack_responder() -> NackResponderInterceptor {
    NackResponderBuilder::new().with_size(SEND_HISTORY).build()
}

fn nack_generator() -> OnTick<RtxAware<NackGeneratorInterceptor>> {
    OnTick(RtxAware::new(
        NackGeneratorBuilder::new()
            .with_interval(FAST_INTERVAL)
            // As libwebrtc: a packet still missing after ten requests is given up.
            .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
            .build(),
    ))
}

fn twcc_receiver() -> OnTick<TwccReceiverInterceptor> {
    OnTick(
        TwccReceiverBuilder::new()
            .with_interval(FAST_INTERVAL)
            .build(),
    )
}

fn receiver_report() -> OnTick<ReceiverReportInterceptor> {
    OnTick(
        ReceiverReportBuilder::new()
            .with_interval(REPORT_INTERVAL)
            .build(),
    )
}

fn sender_report() -> OnTick<SenderReportInterceptor> {
    OnTick(
        SenderReportBuilder::new()
            .with_interval(REPORT_INTERVAL)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rtx_packet_stands_for_the_original_it_carries() {
        let mut rtx = rtc::rtp::Packet::default();
        rtx.header.ssrc = 2002;
        rtx.header.sequence_number = 7;
        rtx.header.payload_type = 97;
        rtx.payload = vec![0x12, 0x34, 0xAA, 0xBB].into();
        let original = rtx_original(&rtx, 1001).unwrap();
        assert_eq!(original.header.ssrc, 1001);
        assert_eq!(original.header.sequence_number, 0x1234);
        assert_eq!(&original.payload[..], &[0xAA, 0xBB]);
        rtx.payload = vec![0x12].into();
        assert!(rtx_original(&rtx, 1001).is_none());
    }

    #[test]
    fn the_tap_marks_keyframe_requests_nacks_and_loss_reports_and_passes_everything_on() {
        let mut tap = FeedbackTap(NackResponderBuilder::new().with_size(SEND_HISTORY).build());
        let message = |packet| TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: rtc::interceptor::AttributedPacket::new(packet),
        };
        let receiver_report = |blocks| -> Vec<Box<dyn rtc::rtcp::Packet>> {
            vec![Box::new(rtc::rtcp::receiver_report::ReceiverReport {
                reports: vec![Default::default(); blocks],
                ..Default::default()
            })]
        };
        let nack: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 2,
            nacks: vec![],
        })];
        let sent = [
            (Packet::Rtp(rtc::rtp::Packet::default()), false),
            (Packet::Rtcp(crate::connection::pli(2)), true),
            (Packet::Rtcp(receiver_report(0)), false),
            (Packet::Rtcp(receiver_report(1)), true),
            (Packet::Rtcp(nack), true),
        ];
        let wanted: Vec<bool> = sent.iter().map(|(_, w)| *w).collect();
        for (packet, _) in sent {
            tap.handle_read(message(packet)).unwrap();
        }
        let marked: Vec<bool> = std::iter::from_fn(|| tap.poll_read())
            .map(|m| m.message.has(&Attribute::DeliverToApplication))
            .collect();
        assert_eq!(
            marked, wanted,
            "every message read comes out, in order, marked or not"
        );
    }

    #[test]
    fn deadlines_move_to_the_next_tick() {
        let epoch = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_tick(epoch + ms(1), epoch, TICK), epoch + ms(100));
        assert_eq!(on_tick(epoch + ms(100), epoch, TICK), epoch + ms(100));
        assert_eq!(on_tick(epoch + ms(101), epoch, TICK), epoch + ms(200));
        // Before the epoch: left alone.
        let early = epoch.checked_sub(ms(5)).unwrap();
        assert_eq!(on_tick(early, epoch, TICK), early);
    }

    #[test]
    fn timers_handled_within_a_tick_keep_the_default_periods() {
        let epoch = Instant::now();
        let ms = Duration::from_millis;
        // Handled a little after a tick, the next deadline is the following tick (100 ms) for
        // the fast timers and ten ticks later (1 s) for reports.
        for late in [0, 1, 30, 85] {
            let now = epoch + ms(500 + late);
            assert_eq!(on_tick(now + FAST_INTERVAL, epoch, TICK), epoch + ms(600));
            assert_eq!(
                on_tick(now + REPORT_INTERVAL, epoch, TICK),
                epoch + ms(1500)
            );
        }
    }
}
