//! The command line: `serve` (default), `migrate`, `seed`, `openapi`, `user create`,
//! `client create`.

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::config::{AuthSettings, DbSettings, HttpSettings, LogFormat};
use crate::domain::Role;

/// lshub: the Lombardia Life Sciences Hub's stakeholder registry API.
#[derive(Debug, Parser)]
#[command(name = "lshub", version, about)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "LSHUB_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value, parsed once at start-up: boxing `serve`'s settings saves nothing"
)]
pub enum Command {
    /// Create the database if needed, apply migrations and serve the API.
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(DbArgs),
    /// Load the brochure dataset (idempotent), or with --synthetic N generated organisations.
    Seed(SeedArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API clients (OAuth2 client credentials).
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Load demo data into an empty registry, create demo accounts (printed once) and, without
    /// LSHUB_JWT_SECRET, use a random signing key.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub db: DbSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub http: HttpSettings,
}

/// Parses `serve`'s flags from the environment alone, for a bare `lshub`.
#[derive(Debug, Parser)]
struct ServeDefaults {
    #[command(flatten)]
    args: ServeArgs,
}

impl ServeArgs {
    /// `serve` with nothing on the command line: environment and defaults.
    pub fn from_env() -> Self {
        ServeDefaults::parse_from(["lshub"]).args
    }
}

/// Flags of commands that only need the database.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    #[command(flatten)]
    pub db: DbSettings,
}

/// `seed` flags.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Instead of the brochure dataset, generate N synthetic companies and, in proportion,
    /// IRCCS, universities and partners (deterministic for a given N; for an empty registry).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u32>,
    #[command(flatten)]
    pub db: DbSettings,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create(CreateUserArgs),
}

/// `user create` flags.
#[derive(Debug, Clone, Args)]
pub struct CreateUserArgs {
    /// The user's e-mail, used as the login name.
    pub email: String,
    /// viewer, partner, editor or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// The organisation a partner acts for (required for partners, refused for others).
    #[arg(long)]
    pub organisation: Option<Uuid>,
    /// Read the password from standard input (one line), so it never shows in `ps`.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub db: DbSettings,
}

/// `client` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create an API client; prints `{"client_id": ..., "client_secret": ...}` as one JSON
    /// line, the only time the secret is shown.
    Create(CreateClientArgs),
}

/// `client create` flags.
#[derive(Debug, Clone, Args)]
pub struct CreateClientArgs {
    /// What the client is, e.g. the partner system it serves (2 to 200 characters).
    pub name: String,
    /// viewer, partner, editor or admin: the client gets exactly this role's rights.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// The organisation a partner client acts for (required for partners, refused for others).
    #[arg(long)]
    pub organisation: Option<Uuid>,
    #[command(flatten)]
    pub db: DbSettings,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap checks its declarations only when a command line is parsed: this parses none, so
    /// every subcommand's flags and variables are checked here (two settings groups naming one
    /// argument alike would otherwise stop `serve` at start-up).
    #[test]
    fn every_command_line_declaration_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
