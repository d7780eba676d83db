//! Keeps a forwarded stream continuous. The receiver sees one outgoing stream per kind for the
//! whole call; when the sender reconnects, its new stream starts at random sequence numbers and
//! timestamps, which a receiver would take for a huge loss or a jump in time. The rewriter
//! shifts the new source so that it carries on from where the old one stopped.

/// Whether sequence number `a` comes after `b`, modulo 2^16.
pub fn seq_after(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

fn ts_after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

#[derive(Debug, Clone)]
pub struct Rewriter {
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    /// Timestamp units between the old source's last packet and the new one's first (one
    /// frame: 3000 at 90 kHz for 30 fps video, 960 at 48 kHz for 20 ms of Opus).
    gap: u32,
}

impl Rewriter {
    pub fn new(gap: u32) -> Self {
        Rewriter {
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: 0,
            last_ts: 0,
            gap,
        }
    }

    /// The outgoing sequence number and timestamp of a packet from source `ssrc`.
    pub fn rewrite(&mut self, ssrc: u32, seq: u16, ts: u32) -> (u16, u32) {
        match self.source {
            Some(s) if s == ssrc => {}
            Some(_) => {
                self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_offset = self.last_ts.wrapping_add(self.gap).wrapping_sub(ts);
                self.source = Some(ssrc);
                let out = (
                    seq.wrapping_add(self.seq_offset),
                    ts.wrapping_add(self.ts_offset),
                );
                self.last_seq = out.0;
                self.last_ts = out.1;
                return out;
            }
            None => {
                self.source = Some(ssrc);
                self.last_seq = seq;
                self.last_ts = ts;
                return (seq, ts);
            }
        }
        let out = (
            seq.wrapping_add(self.seq_offset),
            ts.wrapping_add(self.ts_offset),
        );
        // Reordered (older) packets pass through shifted but do not move the high-water mark.
        if seq_after(out.0, self.last_seq) {
            self.last_seq = out.0;
        }
        if ts_after(out.1, self.last_ts) {
            self.last_ts = out.1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_passes_unchanged() {
        let mut r = Rewriter::new(3000);
        assert_eq!(r.rewrite(1, 100, 5000), (100, 5000));
        assert_eq!(r.rewrite(1, 101, 8000), (101, 8000));
        assert_eq!(
            r.rewrite(1, 99, 2000),
            (99, 2000),
            "a late packet keeps its place"
        );
    }

    #[test]
    fn a_new_source_carries_on_where_the_old_one_stopped() {
        let mut r = Rewriter::new(3000);
        r.rewrite(1, 65534, 4_294_960_000);
        r.rewrite(1, 65535, 4_294_963_000);
        // The sender reconnected: new SSRC, random numbers.
        assert_eq!(r.rewrite(2, 1234, 777), (0, 4_294_966_000));
        assert_eq!(r.rewrite(2, 1235, 3777), (1, 1704), "timestamps wrap too");
        assert_eq!(r.rewrite(2, 1236, 6777), (2, 4704));
    }

    #[test]
    fn ordering_wraps() {
        assert!(seq_after(0, 65535));
        assert!(!seq_after(65535, 0));
        assert!(seq_after(10, 5));
    }
}
