// raftmq's copy of zmq-sys 0.12.0's build script. The published one builds
// libzmq without CURVE (`with_libsodium(None)`); raftmq authenticates and
// encrypts peer traffic with CURVE, so this one links libzmq against the
// libsodium that `libsodium-sys-stable` compiles from its bundled source
// (its build script exports DEP_SODIUM_INCLUDE and DEP_SODIUM_LIB).
use std::env;

pub fn configure() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");
    // libsodium-sys-stable exports both when it builds libsodium (the
    // default); with SODIUM_LIB_DIR (a libsodium installed elsewhere) it
    // exports neither, so take that directory and its sibling include/.
    let lib = env::var("DEP_SODIUM_LIB")
        .or_else(|_| env::var("SODIUM_LIB_DIR"))
        .expect("libsodium's library directory: libsodium-sys-stable exports it, or set SODIUM_LIB_DIR");
    let include = env::var("DEP_SODIUM_INCLUDE")
        .or_else(|_| env::var("SODIUM_INCLUDE_DIR"))
        .unwrap_or_else(|_| format!("{lib}/../include"));
    println!("cargo:rerun-if-env-changed=SODIUM_INCLUDE_DIR");
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
