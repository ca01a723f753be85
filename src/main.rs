use std::process::ExitCode;

use authd::config::{Cli, Command, KeysCommand};
use authd::startup::{self, Application};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    authd::telemetry::init(cli.log_format);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => startup::migrate(&cli.settings).await,
        Command::Keys(KeysCommand::Rotate) => startup::rotate_keys(&cli.settings).await,
        Command::Keys(KeysCommand::List) => startup::list_keys(&cli.settings).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an operator can act on, no backtrace.
            eprintln!("authd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: authd::config::Settings) -> anyhow::Result<()> {
    let drain = settings.shutdown_drain;
    let application = Application::build(settings).await?;
    application
        .run_until_stopped(startup::shutdown_signal(drain))
        .await
}
