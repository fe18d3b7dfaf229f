//! `arflow`: one binary, many roles (docs/design.md §1). A thin main: parse the command line, then hand
//! over to [`arflow::serve`] (the services) or [`arflow::cli`] (operator and client commands).
use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = arflow::cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(arflow::cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
