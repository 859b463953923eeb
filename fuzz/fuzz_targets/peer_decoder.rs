//! The peer message decoder on arbitrary bytes: never panics, and what it
//! accepts encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftmq::node::peer_codec;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, message)) = peer_codec::decode(data) {
        let mut encoded = Vec::new();
        peer_codec::encode(header, &message, &mut encoded);
        assert_eq!(encoded, data);
    }
});
