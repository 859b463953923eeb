//! The client request parser on arbitrary bytes: never panics, and every
//! rejection names a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match raftmq::protocol::parse_request(data, 1 << 20) {
        Ok(request) => {
            // Whatever parses must encode into a log entry that decodes back.
            if let raftmq::protocol::Operation::Queue(command) = request.operation {
                let entry = raftmq::queue::SessionCommand { session: request.session, command };
                assert_eq!(raftmq::queue::SessionCommand::decode(&entry.encode()).as_ref(), Ok(&entry));
            }
        }
        Err(error) => assert!(!error.detail.is_empty()),
    }
});
