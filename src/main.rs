fn main() -> std::process::ExitCode {
    tfenv::main()
}
