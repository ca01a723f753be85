//! The `authd` binary: parses the command line, sets up telemetry, and runs
//! the server or the operator's command.

use std::process::ExitCode;

use authd::admin;
use authd::app::{self, Application};
use authd::config::{Cli, Command, KeysCommand};
use clap::Parser;

/// mimalloc instead of glibc's malloc: every request allocates a few dozen
/// small blocks on whichever runtime thread it lands, and mimalloc's
/// thread-local heaps cost a no-op call about a fifth less CPU (BENCHMARKS.md,
/// "The server stack"). Password hashes map their blocks from the OS
/// themselves (`hashing::Argon2Engine`), so the allocator never holds that memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match authd::telemetry::init(cli.log_format) {
        Ok(telemetry) => telemetry,
        Err(error) => return failure(&error),
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => app::migrate(&cli.settings).await,
        Command::Keys(KeysCommand::Rotate) => admin::rotate_keys(&cli.settings).await,
        Command::Keys(KeysCommand::List) => admin::list_keys(&cli.settings).await,
        Command::Keys(KeysCommand::Reseal) => admin::reseal(&cli.settings).await,
        Command::Users(command) => admin::users(&cli.settings, command).await,
    };
    // After the server has stopped, so the last requests' spans go too.
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure(&error),
    }
}

/// One line an operator can act on, no backtrace.
fn failure(error: &anyhow::Error) -> ExitCode {
    eprintln!("authd: {error:#}");
    ExitCode::FAILURE
}

async fn serve(settings: authd::config::Settings) -> anyhow::Result<()> {
    let drain = settings.shutdown_drain;
    let application = Application::build(settings).await?;
    application
        .run_until_stopped(app::shutdown_signal(drain))
        .await
}
