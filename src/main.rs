fn main() -> std::process::ExitCode {
    dpx::main()
}
