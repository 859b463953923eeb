// raftmq's copy of zmq-sys 0.12.0's build script. The published one builds
// libzmq without CURVE (`with_libsodium(None)`); raftmq authenticates and
// encrypts peer traffic with CURVE, so this one links libzmq against the
// libsodium that `libsodium-sys-stable` compiles from its bundled source
// (its build script exports DEP_SODIUM_INCLUDE and DEP_SODIUM_LIB).
use std::env;

pub fn configure() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");
    let include = env::var("DEP_SODIUM_INCLUDE").expect("libsodium-sys-stable exports its include directory");
    let lib = env::var("DEP_SODIUM_LIB").expect("libsodium-sys-stable exports its library directory");
    // libzmq 4.3.4's sources draw compiler warnings (unused parameters, a
    // known false -Warray-bounds in its CURVE code) that cc would replay as
    // cargo warnings on every build of every crate depending on this one.
    let flags = env::var("CXXFLAGS").unwrap_or_default();
    env::set_var("CXXFLAGS", format!("{flags} -w"));
    zeromq_src::Build::new()
        .with_libsodium(Some(zeromq_src::LibLocation::new(lib, include)))
        .build();
}

fn main() {
    configure()
}
