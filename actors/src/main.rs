//! The `spate` processor binary: the engine's command line over the built-in pipelines.

/// mimalloc instead of the system allocator: records are small allocations made on the
/// decoding threads and freed on the workers, and glibc's `malloc` and `free` took a fifth of
/// a Nexmark query's time; with mimalloc q0 uses 13% less CPU (four runs each). Without
/// transparent huge pages (`no_thp`): the kernel zeroing mimalloc's fresh 2 MiB pages was a
/// seventh of q2's time in a profile, and is gone from it with 4 KiB pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spate::cli::main(spate_actors::registry())
}
