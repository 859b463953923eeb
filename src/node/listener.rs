//! What the two listener threads share: each binds its own sockets inside its
//! own thread (ZMQ sockets never cross threads), reports whether binding
//! worked, and then serves until the process ends.

use crossbeam_channel::bounded;
use log::error;

pub trait Listener: Send + 'static {
    /// The sockets `bind` creates and `serve` uses, in the listener's thread.
    type Sockets;

    fn name(&self) -> &'static str;
    /// Nice levels this listener's thread runs below the control plane.
    fn niceness(&self) -> i32 {
        0
    }
    fn bind(&self, context: &zmq::Context) -> Result<Self::Sockets, String>;
    fn serve(&self, sockets: &Self::Sockets) -> Result<(), zmq::Error>;
}

/// Start `listener` on its own thread; return once its sockets are bound, or
/// with the reason they could not be (a port in use, say).
pub fn start_listener<L: Listener>(listener: L, context: zmq::Context) -> Result<(), String> {
    let (started_sender, started) = bounded(1);
    let name = listener.name();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            super::thread_priority::lower_current_thread(listener.niceness());
            serve_listener(listener, context, started_sender)
        })
        .map_err(|failure| format!("cannot start the {name} thread: {failure}"))?;
    started.recv().unwrap_or_else(|_| Err(format!("the {name} thread died while starting")))
}

fn serve_listener<L: Listener>(
    listener: L,
    context: zmq::Context,
    started_sender: crossbeam_channel::Sender<Result<(), String>>,
) {
    match listener.bind(&context) {
        Ok(sockets) => {
            let _ = started_sender.send(Ok(()));
            if let Err(failure) = listener.serve(&sockets) {
                error!("{} stopped: {failure}", listener.name());
            }
        }
        Err(failure) => {
            let _ = started_sender.send(Err(failure));
        }
    }
}
