//! The relay's reactors: threads, each running a single-threaded tokio runtime, that run the
//! connections' drivers (ICE, DTLS, SRTP, interceptors) and the tasks that forward their media.
//!
//! Both connections of a room run on the same reactor, so a packet goes from one side to the
//! other without changing thread (no cross-thread wake-up, no cache lines moving between
//! cores); rooms are spread over the reactors, each new room on the one with the fewest rooms.
//! (The `webrtc` crate's own pool hands connections out round robin, which put a room's two
//! sides on different threads whenever it had more than one.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;

/// The reactor threads, started with the relay and ended when it and its rooms are gone.
pub struct Reactors {
    slots: Vec<Slot>,
}

struct Slot {
    handle: Handle,
    /// Dropped with the slot: the thread then ends, and its runtime with it.
    _stop: tokio::sync::oneshot::Sender<()>,
    /// Rooms placed here and not yet forgotten.
    rooms: AtomicUsize,
}

/// A room's place on one reactor, given back when the room is forgotten (dropped).
pub struct Seat {
    reactors: Arc<Reactors>,
    index: usize,
}

impl Reactors {
    /// Starts `n` reactor threads (`sfu-reactor-0`, …); `None` for 0, or if a thread cannot
    /// be started (then the connections run on tokio's own workers).
    pub fn start(n: usize) -> Option<Arc<Reactors>> {
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::sync_channel(0);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let started = std::thread::Builder::new()
                .name(format!("sfu-reactor-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(rt) => {
                            let _ = tx.send(Some(rt.handle().clone()));
                            // Parked here until the relay is gone: the runtime runs what is
                            // spawned on it meanwhile.
                            let _ = rt.block_on(stopped);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "a media reactor could not start");
                            let _ = tx.send(None);
                        }
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "a media reactor thread could not start");
                return None;
            }
            slots.push(Slot {
                handle: rx.recv().ok().flatten()?,
                _stop: stop,
                rooms: AtomicUsize::new(0),
            });
        }
        (!slots.is_empty()).then(|| Arc::new(Reactors { slots }))
    }

    /// A seat for a new room: on the reactor with the fewest rooms.
    pub fn seat(self: &Arc<Self>) -> Seat {
        let index = (0..self.slots.len())
            .min_by_key(|&i| self.slots[i].rooms.load(Ordering::Relaxed))
            .unwrap_or(0);
        self.slots[index].rooms.fetch_add(1, Ordering::Relaxed);
        Seat {
            reactors: self.clone(),
            index,
        }
    }

    /// Rooms on each reactor, in order.
    pub fn rooms(&self) -> Vec<usize> {
        self.slots
            .iter()
            .map(|s| s.rooms.load(Ordering::Relaxed))
            .collect()
    }
}

impl Seat {
    /// The runtime of the room's reactor.
    pub fn handle(&self) -> Handle {
        self.reactors.slots[self.index].handle.clone()
    }

    /// Which reactor, from 0.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.reactors.slots[self.index]
            .rooms
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rooms_go_to_the_emptiest_reactor_and_leave_their_seat_behind() {
        let r = Reactors::start(2).unwrap();
        let a = r.seat();
        let b = r.seat();
        assert_ne!(a.index(), b.index());
        assert_eq!(r.rooms(), vec![1, 1]);
        let c = r.seat();
        drop(a);
        drop(b);
        // One room left, so the next goes to the other reactor.
        let d = r.seat();
        assert_ne!(c.index(), d.index());
        assert_eq!(r.rooms(), vec![1, 1]);
        // What runs on a seat runs on its reactor's thread.
        let name = c
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_string) })
            .await
            .unwrap();
        assert_eq!(name, Some(format!("sfu-reactor-{}", c.index())));
        assert!(Reactors::start(0).is_none());

        // Gone with the relay and its rooms: the threads end.
        let handle = c.handle();
        drop((r, c, d));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while handle.spawn(async {}).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "a reactor still runs");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
