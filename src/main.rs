/// mimalloc instead of glibc's malloc: a cached manifest's request makes a few
/// dozen small allocations, and glibc's malloc and free were a sixth of its
/// instructions (callgrind: 44k -> 38k instructions per request). Built with
/// `no_thp`: where transparent huge pages are always on, its arenas otherwise
/// fill 2 MiB at a time (`dpx serve` 47 MB resident after 64 busy
/// connections instead of about 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dpx::main()
}
