fn main() -> std::process::ExitCode {
    firn::cli::main()
}
