//! The `spate` processor binary: the engine's command line over the built-in pipelines.

fn main() -> std::process::ExitCode {
    spate::cli::main(spate_actors::registry())
}
