//! Keep the process's address space steady under load.
//!
//! Every change to the memory map (`brk`, `mmap`, `munmap`, `mremap`,
//! `mprotect`) takes the process's `mmap_lock` for writing and the lock of
//! the mapping it changes. A kernel thread that scans memory, such as
//! DAMON's `kdamond` (on by default in some virtual machines), holds the
//! latter for reading while it walks a page's mappings; when it is
//! preempted there, the thread that wants to grow the heap waits for it,
//! off the CPU, and every other thread that then needs the map waits
//! behind that one. Measured in a 60 s client flood (`perf` on the event
//! loop's switch-outs, `docs/benchmarks.md`): the event loop blocked 113
//! and 206 ms in `brk`, woken by `kdamond` releasing the lock, and the
//! followers heard nothing for as long.
//!
//! glibc's defaults change the map all the time under a flood: the heap
//! grows 128 KiB at a time, is trimmed again when 128 KiB are free at its
//! top, and every block above 128 KiB (an AppendEntries of a few thousand
//! entries) is a mapping of its own. So the node asks glibc to grow a heap
//! 16 MiB at a time, to give memory back once 32 MiB are free at its top,
//! and to keep blocks below 32 MiB in the heap. Both sizes stay well below
//! the 64 MiB of a thread's own glibc heap, which is only given back (or
//! deleted) when more than them is free, so memory a drain frees is still
//! given back. Pages not touched are not resident.

/// A heap grows by at least this much at a time; a trim keeps this much.
const HEAP_GROWTH_BYTES: i32 = 16 << 20;
/// Free memory at the top of a heap is given back above this much.
const HEAP_TRIM_BYTES: i32 = 32 << 20;
/// Blocks at least this large get a mapping of their own (glibc's largest
/// allowed value on 64-bit systems: larger ones are refused).
const OWN_MAPPING_BYTES: i32 = 32 << 20;

/// Set the allocator's growth, trim and mapping thresholds (see the module
/// docs). Call once, at the start of `main`, before threads start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_steady() {
    let settings = [
        (libc::M_TOP_PAD, HEAP_GROWTH_BYTES, "heap growth"),
        (libc::M_TRIM_THRESHOLD, HEAP_TRIM_BYTES, "trim threshold"),
        (libc::M_MMAP_THRESHOLD, OWN_MAPPING_BYTES, "mapping threshold"),
    ];
    for (parameter, value, name) in settings {
        // SAFETY: mallopt takes two integers and changes only glibc's
        // allocator parameters, which are safe to change at any time.
        if unsafe { libc::mallopt(parameter, value) } != 1 {
            log::warn!("the allocator refused its {name} of {value} bytes; the defaults stay");
        }
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_steady() {}
