//! The client protocol: one JSON object per request frame, one per reply.
//! See docs/protocol.md.

mod reply;
mod request;

pub use reply::{ErrorCode, ReplyBody, StatusReport};
pub use request::{parse_request, ClientRequest, Operation, RequestError};
