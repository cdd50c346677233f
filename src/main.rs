fn main() {
    std::process::exit(contimg::cli::main());
}
