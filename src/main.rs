fn main() -> std::process::ExitCode {
    bound_large_allocations();
    firn::cli::main()
}

/// Part buffers (1 MiB and up) come from mmap and go back to the OS when freed.
/// Without this, glibc raises its mmap threshold after the first large free and
/// serves later parts from per-thread heaps that keep the memory: peak RSS then
/// grows with the number of threads, not with the part budget (invariant 8 in the crate docs).
fn bound_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
