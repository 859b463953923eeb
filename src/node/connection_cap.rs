//! A cap on client connections. Every connection costs a file descriptor;
//! when a process runs out of them, libzmq's listener fails `accept` with
//! EMFILE and tries again at once, forever: its I/O thread, which serves the
//! peers too, spun at 100% CPU with no client served. So the client listener
//! counts connections (from the socket's monitor events) and keeps them
//! below the open-file limit: a connection accepted beyond the cap is shut
//! down at once (its descriptor is freed when libzmq sees it close), while
//! the clients already connected and the peers are served as before.
//!
//! If `accept` fails anyway (a burst of connections outran the refusals,
//! or descriptors were used up elsewhere), libzmq retries until a
//! descriptor frees, which the refusals see to; the listener only logs it.
//! It does not stop listening: unbinding would end every connection the
//! listener accepted, the good clients' too. Decisions only; the listener
//! does the I/O.

/// Descriptors kept for everything but client connections: peer sockets,
/// ZeroMQ's own, log segments and snapshots, standard streams.
pub fn reserved_descriptors(node_count: usize) -> u64 {
    64 + 4 * node_count as u64
}

/// What to do with a connection just accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Keep,
    /// Shut it down: it is past the cap.
    Refuse,
}

/// Client connections open, counted from the monitor's events.
#[derive(Debug)]
pub struct ConnectionCap {
    limit: usize,
    open: usize,
}

impl ConnectionCap {
    pub fn new(limit: usize) -> ConnectionCap {
        assert!(limit > 0, "a cap of 0 would refuse every client");
        ConnectionCap { limit, open: 0 }
    }

    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// A connection was accepted; it counts until it is disconnected,
    /// refused or not.
    pub fn on_accepted(&mut self) -> Admission {
        self.open += 1;
        if self.open > self.limit {
            return Admission::Refuse;
        }
        Admission::Keep
    }

    pub fn on_disconnected(&mut self) {
        // Saturating: a connection accepted before the monitor started
        // was never counted.
        self.open = self.open.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_past_the_cap_are_refused_until_some_close() {
        let mut cap = ConnectionCap::new(10);
        for _ in 0..10 {
            assert_eq!(cap.on_accepted(), Admission::Keep);
        }
        assert_eq!(cap.on_accepted(), Admission::Refuse);
        assert_eq!(cap.on_accepted(), Admission::Refuse);
        for _ in 0..3 {
            cap.on_disconnected();
        }
        assert_eq!(cap.open_connections(), 9);
        assert_eq!(cap.on_accepted(), Admission::Keep, "room again");
    }

    #[test]
    fn disconnections_never_count_below_zero() {
        let mut cap = ConnectionCap::new(1);
        cap.on_disconnected();
        assert_eq!(cap.open_connections(), 0);
        assert_eq!(cap.on_accepted(), Admission::Keep);
        assert_eq!(cap.on_accepted(), Admission::Refuse);
    }
}
