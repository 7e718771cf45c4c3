//! Private PostgreSQL clusters (`pg_createcluster`, each on a port of its own) for the tests
//! that stop, freeze or replicate a server: the rest of the suite keeps its own. A cluster
//! outlives the run and is reused by the next one, unless the test makes it anew.

use std::time::Duration;

const VERSION: &str = "15";

/// One private cluster, by name.
pub struct Cluster {
    pub name: &'static str,
    /// The maintenance database's URL.
    pub admin: String,
    pub port: String,
    pub data_dir: String,
}

/// A program run to its end; panics unless it succeeded. Synchronous: these are quick, and
/// the servers under test run on their own threads' runtimes only while a test awaits.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pg_lsclusters` line of `name`: (port, status, data directory), if it exists.
fn listed(name: &str) -> Option<(String, String, String)> {
    let out = std::process::Command::new("pg_lsclusters")
        .args(["--no-header", VERSION, name])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    (out.status.success() && fields.len() >= 6).then(|| {
        (
            fields[2].to_owned(),
            fields[3].to_owned(),
            fields[5].to_owned(),
        )
    })
}

/// A free port below Linux's ephemeral range (32768 up), where one of the suite's own client
/// sockets could take it while the cluster restarts, and none that another cluster owns
/// (a stopped one leaves its port unbound).
fn free_port() -> u16 {
    let owned = std::process::Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let owned: Vec<u16> = owned
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok())
        .collect();
    (25432..25532)
        .filter(|port| !owned.contains(port))
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 25432..25532")
}

impl Cluster {
    /// The cluster `name`, made if it does not exist (trust auth, no fsync: tests only), and
    /// running: thawed and started if a run that died mid-test left it frozen or stopped.
    pub fn reused(name: &'static str) -> Self {
        if listed(name).is_none() {
            Self::create(name);
        }
        let cluster = Self::known(name);
        cluster.signal_all("CONT");
        cluster.ensure_online();
        cluster
    }

    /// A fresh streaming replica of `primary`, named `name` (any earlier one is dropped):
    /// `pg_basebackup -R` into a new cluster's data directory, then started.
    pub fn standby_of(primary: &Cluster, name: &'static str) -> Self {
        if listed(name).is_some() {
            sh("pg_dropcluster", &["--stop", VERSION, name]);
        }
        Self::create(name);
        let cluster = Self::known(name);
        // pg_basebackup wants an empty directory, owned by the server's user.
        for entry in std::fs::read_dir(&cluster.data_dir).expect("the data directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("emptied");
            } else {
                std::fs::remove_file(&path).expect("emptied");
            }
        }
        sh(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port,
                "-U",
                "postgres",
                "-D",
                &cluster.data_dir,
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        cluster.ctl("start", &[]);
        cluster
    }

    fn create(name: &'static str) {
        let port = free_port().to_string();
        sh(
            "pg_createcluster",
            &[
                VERSION,
                name,
                "-p",
                &port,
                "-o",
                "fsync=off",
                "-o",
                "synchronous_commit=off",
                "--",
                "--auth=trust",
                "--no-sync",
            ],
        );
    }

    fn known(name: &'static str) -> Self {
        let (port, _, data_dir) = listed(name).expect("the cluster exists");
        Self {
            name,
            admin: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            data_dir,
        }
    }

    /// Whether `pg_lsclusters` says it runs.
    pub fn online(&self) -> bool {
        listed(self.name).is_some_and(|(_, status, _)| status.starts_with("online"))
    }

    /// Started, unless it runs.
    pub fn ensure_online(&self) {
        if !self.online() {
            self.ctl("start", &[]);
        }
    }

    /// `pg_ctlcluster <action>` until the cluster is in the state the action leads to: a
    /// loaded machine may make `pg_ctl` give up waiting although the server gets there.
    pub fn ctl(&self, action: &str, extra: &[&str]) {
        let want_online = action != "stop";
        for attempt in 1..=3 {
            let mut args = vec!["--skip-systemctl-redirect", VERSION, self.name, action];
            args.extend_from_slice(extra);
            let out = std::process::Command::new("pg_ctlcluster")
                .args(&args)
                .output()
                .expect("pg_ctlcluster");
            if out.status.success() || self.online() == want_online {
                if !out.status.success() {
                    eprintln!("pg_ctlcluster {action} failed, but the cluster got there");
                }
                return;
            }
            eprintln!(
                "pg_ctlcluster {} {action} (attempt {attempt}): {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!(
            "pg_ctlcluster {} {action} did not get the cluster there in 3 attempts",
            self.name
        );
    }

    /// Dropped, stopped first.
    pub fn drop_cluster(&self) {
        sh("pg_dropcluster", &["--stop", VERSION, self.name]);
    }

    /// The postmaster's pid and its children's (every backend and auxiliary process).
    fn processes(&self) -> Vec<String> {
        let Ok(pid_file) = std::fs::read_to_string(format!("{}/postmaster.pid", self.data_dir))
        else {
            return Vec::new();
        };
        let postmaster = pid_file
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut pids = vec![postmaster.clone()];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces, so read after its closing paren.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        pids
    }

    /// Sends `signal` to the cluster's every process. A backend may end between the listing
    /// and the signal (a pooled connection closing): that one needs no signal, and is no
    /// failure.
    pub fn signal_all(&self, signal: &str) {
        for pid in self.processes() {
            let out = std::process::Command::new("kill")
                .args([format!("-{signal}"), pid.clone()])
                .output()
                .unwrap_or_else(|e| panic!("kill: {e}"));
            let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
            assert!(
                out.status.success() || gone,
                "kill -{signal} {pid}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
