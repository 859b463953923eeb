//! One request to a node's client port on a REQ socket of its own.

use serde_json::Value;

/// How long a node has to answer before the call fails.
const REPLY_TIMEOUT_MS: i32 = 1000;

pub fn call(context: &zmq::Context, endpoint: &str, request: &Value) -> Result<Value, String> {
    let socket = context.socket(zmq::REQ).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(REPLY_TIMEOUT_MS).map_err(|e| e.to_string())?;
    socket.connect(endpoint).map_err(|e| e.to_string())?;
    socket.send(request.to_string().as_bytes(), 0).map_err(|e| e.to_string())?;
    let reply = socket.recv_bytes(0).map_err(|e| format!("{endpoint}: {e}"))?;
    serde_json::from_slice(&reply).map_err(|e| e.to_string())
}
