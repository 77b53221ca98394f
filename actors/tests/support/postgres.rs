//! A real PostgreSQL server for tests, on a free loopback port with its data in a temporary
//! directory (copied from the template `scripts/test` prepares: user `tansu`, trust
//! authentication), stopped when dropped and restartable on the same port; plus the helpers the
//! test servers share (where `scripts/test` put a tool, free ports, waiting for a listener).

// Each test binary uses a different part of this support module.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where scripts/test put a tool (`var`), or its place under target/tools.
pub fn tool(var: &str, under_tools: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools")
        .join(under_tools);
    assert!(
        path.exists(),
        "{} is missing: run the tests with scripts/test, which installs the test servers",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`, or `child` exits (false).
pub fn listening(child: &mut Child, port: u16, what: &str, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("{what} exited with {status}: {log}");
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen within 30 s");
}

/// Calls `launch` with free ports until it starts (true), at most five times; `what` names
/// the server in the panic when none did.
pub fn on_a_free_port(what: &str, mut launch: impl FnMut(u16) -> bool) {
    for _ in 0..5 {
        if launch(free_port()) {
            return;
        }
    }
    panic!("{what} did not start on any of five free ports");
}

/// A log file opened for a child's stdout and stderr.
pub fn log_file(path: &Path) -> (Stdio, Stdio) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    (Stdio::from(log.try_clone().unwrap()), Stdio::from(log))
}

/// PostgreSQL refuses to run as root: then its processes run as `nobody` (or SPATE_PG_USER).
fn pg_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    (String::from_utf8_lossy(&uid).trim() == "0")
        .then(|| std::env::var("SPATE_PG_USER").unwrap_or_else(|_| "nobody".into()))
}

/// A running PostgreSQL server.
pub struct Postgres {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// A copy of the template data directory, served on a free loopback port.
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let template = tool("SPATE_PG_TEMPLATE", "tansu-pg-template");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(dir.path().join("pg"))
            .status();
        assert!(
            copied.unwrap().success(),
            "cannot copy {}",
            template.display()
        );
        if let Some(user) = pg_user() {
            let owned = Command::new("chown")
                .args(["-R", &user])
                .arg(dir.path())
                .status();
            assert!(owned.unwrap().success(), "cannot give {user} the data");
        }
        let mut server = Postgres {
            child: None,
            port: 0,
            dir,
        };
        on_a_free_port("postgres", |port| {
            server.port = port;
            server.launch()
        });
        server
    }

    /// Starts the server on its port; false when it exits at once (the port was taken).
    fn launch(&mut self) -> bool {
        let postgres = tool("SPATE_PG_BIN", "postgres/bin").join("postgres");
        let data = self.dir.path().join("pg");
        let mut command = match pg_user() {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user, "--"]).arg(&postgres);
                c
            }
            None => Command::new(&postgres),
        };
        command.arg("-D").arg(&data).arg("-k").arg(&data);
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        command.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
        command.args(["-c", "full_page_writes=off"]);
        let log = self.dir.path().join("postgres.log");
        let (out, err) = log_file(&log);
        let mut child = command.stdout(out).stderr(err).spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run the tests with scripts/test",
                postgres.display()
            )
        });
        let up = listening(&mut child, self.port, "postgres", &log);
        if up {
            self.child = Some(child);
        }
        up
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as user `tansu`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://tansu@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The connection string of database `db` as user `tansu` through the server's Unix
    /// socket (which `require_tls` leaves open to plain connections).
    pub fn socket_url(&self, db: &str) -> String {
        let socket_dir = self.dir.path().join("pg");
        format!(
            "host={} port={} user=tansu dbname={db}",
            socket_dir.display(),
            self.port
        )
    }

    /// Serves only TLS connections from now on: `cert` and `key` (PEM) become the server's
    /// certificate and key, `pg_hba.conf` accepts `hostssl` only, and the server restarts.
    pub fn require_tls(&mut self, cert: &Path, key: &Path) {
        let data = self.dir.path().join("pg");
        std::fs::copy(cert, data.join("server.crt")).unwrap();
        std::fs::copy(key, data.join("server.key")).unwrap();
        let conf = "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
        let mut config = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        config.push_str(conf);
        std::fs::write(data.join("postgresql.conf"), config).unwrap();
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        if let Some(user) = pg_user() {
            let owned = Command::new("chown")
                .args(["-R", &user])
                .arg(&data)
                .status();
            assert!(owned.unwrap().success(), "cannot give {user} the key");
        }
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(data.join("server.key"), private).unwrap();
        self.restart();
    }

    /// Stops the server at once (SIGQUIT to its postmaster, whose pid it wrote in its data
    /// directory: the child may be `runuser`, which does not pass a SIGKILL on).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid_file = self.dir.path().join("pg/postmaster.pid");
        let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
        if let Some(pid) = pid.lines().next().filter(|p| !p.is_empty()) {
            let _ = Command::new("kill").args(["-QUIT", pid]).status();
        } else {
            let _ = child.kill();
        }
        let _ = child.wait();
        // The postmaster is gone once its pid file is.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.dir.path().join("pg/postmaster.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again, on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(self.dir.path().join("pg/postmaster.pid"));
        assert!(
            self.launch(),
            "postgres did not start again on {}",
            self.port
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
