//! What each subcommand does.

use std::io::BufRead;
use std::net::TcpListener;

use uuid::Uuid;

use crate::auth::tokens::random_secret;
use crate::cli::{
    ClientCommand, Command, CreateClientArgs, CreateUserArgs, SeedArgs, ServeArgs, UserCommand,
};
use crate::config::{Secret, Settings};
use crate::db;
use crate::domain::{Email, Role};
use crate::models::{audit, organisation, user};

/// A command's failure, printed as one line.
pub type CommandError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a parsed command line.
pub fn run(command: Option<Command>) -> Result<(), CommandError> {
    match command.unwrap_or_else(|| Command::Serve(ServeArgs::from_env())) {
        Command::Serve(args) => serve(args),
        Command::Migrate(args) => {
            db::ensure_database(&args.db.database_url)?;
            let applied = db::migrate(&args.db.database_url)?;
            println!(
                "applied {applied} migration(s) to {}",
                db::redact_url(&args.db.database_url)
            );
            Ok(())
        }
        Command::Seed(args) => seed(&args),
        Command::Openapi => {
            println!("{}", crate::openapi::document());
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => create_user(&args),
        Command::Client(ClientCommand::Create(args)) => create_client(&args),
    }
}

fn serve(mut args: ServeArgs) -> Result<(), CommandError> {
    // An empty variable (as compose passes an unset one) means "not set".
    args.auth.jwt_secret = args.auth.jwt_secret.filter(|s| !s.expose().is_empty());
    if args.auth.jwt_secret.is_none() && args.demo {
        args.auth.jwt_secret = Some(Secret::new(random_secret()));
        tracing::warn!("demo mode: LSHUB_JWT_SECRET is not set, signing tokens with a random key (tokens die with the process)");
    }
    let settings = Settings {
        db: args.db,
        auth: args.auth,
        http: args.http,
    };
    // Refuse a missing key before touching the database.
    let state = crate::app::AppState::new(&settings)?;
    db::ensure_database(&settings.db.database_url)?;
    let applied = db::migrate(&settings.db.database_url)?;
    tracing::info!(applied, database = %db::redact_url(&settings.db.database_url), "database ready");
    if args.demo {
        load_demo(&settings)?;
    }
    let listener = TcpListener::bind(&settings.http.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.http.bind))?;
    tracing::info!(address = %listener.local_addr()?, "lshub listening");
    actix_web::rt::System::new().block_on(async move {
        let server = crate::app::server(listener, state, &settings.http)?;
        server.await
    })?;
    Ok(())
}

fn load_demo(settings: &Settings) -> Result<(), CommandError> {
    let mut conn = db::connect(&settings.db.database_url)?;
    if crate::seed::registry_is_empty(&mut conn)? {
        let brochure = crate::seed::brochure::load(&mut conn, &crate::http::resources::Pipeline)?;
        crate::seed::brochure::load_strategy(
            &mut conn,
            &crate::http::resources::Pipeline,
            &brochure.ids,
        )?;
        let synthetic = crate::seed::synthetic::load(&mut conn, 300, &mut |_, _| {})?;
        tracing::info!(
            brochure = brochure.created,
            companies = synthetic.companies,
            irccs = synthetic.irccs,
            universities = synthetic.universities,
            partners = synthetic.partners,
            "demo: loaded the brochure dataset and synthetic organisations (tagged `synthetic`)"
        );
    }
    let accounts = crate::seed::create_demo_accounts(&mut conn)?;
    if accounts.is_empty() {
        println!(
            "demo accounts already exist (their passwords were printed when they were created)"
        );
    } else {
        println!("demo accounts (shown once):");
        for a in accounts {
            println!("  {:<8} {:<32} {}", a.role.as_str(), a.email, a.password);
        }
    }
    Ok(())
}

fn seed(args: &SeedArgs) -> Result<(), CommandError> {
    db::ensure_database(&args.db.database_url)?;
    db::migrate(&args.db.database_url)?;
    let mut conn = db::connect(&args.db.database_url)?;
    let Some(n) = args.synthetic else {
        let loaded = crate::seed::brochure::load(&mut conn, &crate::http::resources::Pipeline)?;
        let strategy = crate::seed::brochure::load_strategy(
            &mut conn,
            &crate::http::resources::Pipeline,
            &loaded.ids,
        )?;
        println!(
            "brochure dataset: {} organisations created, {} already present; {} goals, {} activities, \
             {} goal-activity links, {} goal partners created",
            loaded.created, loaded.existing, strategy.goals, strategy.activities, strategy.links, strategy.partners
        );
        return Ok(());
    };
    let started = std::time::Instant::now();
    let loaded = crate::seed::synthetic::load(&mut conn, n, &mut progress_reporter())?;
    println!(
        "seeded {} companies, {} IRCCS, {} universities, {} partners (synthetic) in {:.1} s",
        loaded.companies,
        loaded.irccs,
        loaded.universities,
        loaded.partners,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A progress bar on a terminal; plain lines (every 10%) when output is redirected.
fn progress_reporter() -> impl FnMut(usize, usize) {
    use std::io::IsTerminal;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} {eta}")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut last_decile = 0;
    move |done, total| match &bar {
        Some(bar) => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if done == total {
                bar.finish_and_clear();
            }
        }
        None => {
            let decile = done * 10 / total.max(1);
            if decile > last_decile {
                last_decile = decile;
                eprintln!("seed: {done}/{total} rows");
            }
        }
    }
}

fn create_client(args: &CreateClientArgs) -> Result<(), CommandError> {
    let name = args.name.trim();
    if name.chars().count() < 2 || args.name.chars().count() > 200 {
        return Err("the name is 2 to 200 characters".into());
    }
    match (args.role, args.organisation) {
        (Role::Partner, None) => return Err("a partner client needs --organisation ID".into()),
        (role, Some(_)) if role != Role::Partner => {
            return Err("only partner clients act for an organisation".into())
        }
        _ => {}
    }
    let secret = crate::auth::tokens::random_secret();
    let hash = crate::auth::password::hash_password(&secret).map_err(|e| e.to_string())?;
    db::ensure_database(&args.db.database_url)?;
    db::migrate(&args.db.database_url)?;
    let mut conn = db::connect(&args.db.database_url)?;
    if let Some(org) = args.organisation {
        if !organisation::exists(&mut conn, org)? {
            return Err(format!("no organisation with id {org}").into());
        }
    }
    let id = Uuid::now_v7();
    let now = crate::db::now();
    diesel::Connection::transaction(&mut conn, |conn| {
        crate::models::client::insert(
            conn,
            &crate::models::client::NewClient {
                id,
                name,
                role: args.role.as_str(),
                organisation_id: args.organisation,
                secret_hash: &hash,
                created_at: now,
                updated_at: now,
            },
        )?;
        audit::record(
            conn,
            &audit::Actor::system(),
            crate::domain::AuditAction::Create,
            "api_client",
            audit::Event {
                entity_id: id,
                related: Vec::new(),
                version: None,
                changes:             serde_json::json!({"before": null, "after": {"name": name, "role": args.role.as_str(), "organisation_id": args.organisation}}),
            }
        )
    })
    .map_err(|e| crate::error::ApiError::from(e).to_string())?;
    println!(
        "{}",
        serde_json::json!({"client_id": id, "client_secret": secret})
    );
    Ok(())
}

fn create_user(args: &CreateUserArgs) -> Result<(), CommandError> {
    let email = Email::parse(&args.email).map_err(|e| format!("invalid e-mail: {}", e.message))?;
    match (args.role, args.organisation) {
        (Role::Partner, None) => return Err("a partner needs --organisation ID".into()),
        (role, Some(_)) if role != Role::Partner => {
            return Err("only partners act for an organisation".into())
        }
        _ => {}
    }
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        return Err("the password must be at least 12 characters".into());
    }
    let hash = crate::auth::password::hash_password(password).map_err(|e| e.to_string())?;
    db::ensure_database(&args.db.database_url)?;
    db::migrate(&args.db.database_url)?;
    let mut conn = db::connect(&args.db.database_url)?;
    if let Some(org) = args.organisation {
        if !organisation::exists(&mut conn, org)? {
            return Err(format!("no organisation with id {org}").into());
        }
    }
    let id = Uuid::now_v7();
    let now = crate::db::now();
    diesel::Connection::transaction(&mut conn, |conn| {
        user::insert(
            conn,
            &user::NewUser {
                id,
                email: email.as_str(),
                password_hash: Some(&hash),
                role: args.role.as_str(),
                organisation_id: args.organisation,
                disabled_at: None,
                created_at: now,
                updated_at: now,
            },
        )?;
        audit::record(
            conn,
            &audit::Actor::system(),
            crate::domain::AuditAction::Create,
            "user",
            audit::Event {
                entity_id: id,
                related: Vec::new(),
                version: None,
                changes:             serde_json::json!({"before": null, "after": {"email": email.as_str(), "role": args.role.as_str(), "organisation_id": args.organisation}}),
            }
        )
    })
    .map_err(|e| match crate::error::ApiError::from(e) {
        crate::error::ApiError::Conflict { detail, .. } => detail,
        other => other.to_string(),
    })?;
    println!(
        "{}",
        serde_json::json!({"id": id, "email": email.as_str(), "role": args.role.as_str()})
    );
    Ok(())
}
