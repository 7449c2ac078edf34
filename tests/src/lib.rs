//! # postern-e2e: the harness for end-to-end scenarios
//!
//! Every scenario runs the real parts on loopback: a real PostgreSQL (one cluster per
//! test run, started by `scripts/test.sh`, one fresh database per test), real back
//! ends (Radicale, Xandikos: one process per test, on a free port), and the real
//! `postern-gateway` and `postern-connector` binaries as child processes, killed when
//! the test ends. Nothing here fakes a component; it only starts, waits and looks.
//!
//! Waiting is always for a condition ([`wait_until`]) with a deadline, never a bare
//! sleep standing in for synchronisation.
//!
//! Beside them, [`inproc`] runs the gateway's own code in the test process (the link
//! session answering message by message, the DAV router answering requests in
//! memory) over the same real PostgreSQL: behaviour that needs no back end or client
//! is proved there in milliseconds (`tests/inproc_*.rs`).

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use postern_gateway::store::Store;
use uuid::Uuid;

/// The directory with the built binaries (`target/debug`), next to the test binary.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("POSTERN_BIN_DIR") {
        return PathBuf::from(d);
    }
    // Test binaries live in target/<profile>/deps, other binaries in target/<profile>.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("binary dir");
    if dir.ends_with("deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a built binary; fails clearly if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `cond` until it returns `Ok(Some(v))` or the deadline passes; the last error
/// is part of the failure message.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match cond().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until something accepts TCP connections on `port`.
pub async fn wait_port(port: u16, timeout: Duration) -> Result<()> {
    wait_until(&format!("port {port}"), timeout, || async move {
        Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ()))
    })
    .await
}

/// The peak resident memory (VmHWM) of a running process, in KiB.
pub fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs a peer's command (`args`, with `env`) to its end: its wall time and the peak
/// memory (KiB) of what it started, as measured by a small Python wrapper.
pub fn run_measured(args: &[&str], env: &[(&str, &Path)]) -> Result<(Duration, u64)> {
    let wrapper = "import resource, subprocess, sys, time\n\
        t = time.monotonic()\n\
        r = subprocess.run(sys.argv[1:])\n\
        el = time.monotonic() - t\n\
        print(el, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(r.returncode)\n";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(wrapper).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let mut parts = line.split_whitespace();
    let secs: f64 = parts.next().unwrap_or("0").parse()?;
    let kib: u64 = parts.next().unwrap_or("0").parse()?;
    Ok((Duration::from_secs_f64(secs), kib))
}

/// A child process killed (SIGKILL) when dropped, with its output in a log file.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd`, logging to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = cmd
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        Ok(Proc {
            child: Some(child),
            log,
        })
    }

    /// Kills the process at once (SIGKILL, like `kill -9`) and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Its log so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A /proc/PID/status figure in KiB (`"VmRSS:"`, `"VmHWM:"`): a process's memory, for
/// benchmarks and bounds.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A per-test scratch directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory.
    pub fn new(name: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("postern-e2e-{name}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
    /// A path inside it.
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("POSTERN_KEEP_TEST_FILES").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh database in the test cluster (`POSTERN_TEST_DATABASE_URL`).
pub async fn fresh_database() -> Result<String> {
    let admin = std::env::var("POSTERN_TEST_DATABASE_URL").map_err(|_| {
        anyhow!("POSTERN_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL")
    })?;
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let name = format!("t_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Ok(format!("{base}/{name}"))
}

/// Runs `postern-gateway admin ARGS` and returns what it printed and how it exited.
pub fn admin_output(db: &str, args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(bin("postern-gateway"))
        .env("POSTERN_DATABASE_URL", db)
        .arg("admin")
        .args(args)
        .output()?)
}

/// Runs `postern-gateway admin ARGS` and returns its stdout; fails when it fails.
pub fn admin(db: &str, args: &[&str]) -> Result<String> {
    let out = admin_output(db, args)?;
    if !out.status.success() {
        bail!(
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The last line of a command's output (where secrets are printed).
pub fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or("").trim().to_string()
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    pub proc: Proc,
    /// gRPC URL for connectors.
    pub grpc_url: String,
    /// HTTP port.
    pub http_port: u16,
    /// IMAP port (plain; loopback logins allowed).
    pub imap_port: u16,
    /// SMTP submission port (plain; loopback logins allowed).
    pub submission_port: u16,
}

impl Gateway {
    /// The gateway's process id.
    pub fn proc_pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// Starts `postern-gateway serve` on free ports and waits until it is ready. A
    /// port found free can be taken by another test's process before the gateway
    /// binds it: then it starts again on other ports.
    pub async fn start(db: &str, dir: &Scratch, extra: &[&str]) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_on(db, dir, extra, free_port(), free_port()).await {
                Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// Starts a gateway on given ports (to restart one where connectors expect it).
    pub async fn start_on(
        db: &str,
        dir: &Scratch,
        extra: &[&str],
        grpc: u16,
        http: u16,
    ) -> Result<Self> {
        let (imap, submission) = (free_port(), free_port());
        let mut cmd = Command::new(bin("postern-gateway"));
        cmd.env("POSTERN_DATABASE_URL", db)
            .env("POSTERN_LOG", "info,postern_gateway=debug")
            .arg("serve")
            .arg("--grpc-listen")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{http}"))
            .args(
                // A test may bind IMAP elsewhere itself.
                (!extra.contains(&"--imap-listen"))
                    .then(|| ["--imap-listen".to_string(), format!("127.0.0.1:{imap}")])
                    .into_iter()
                    .flatten(),
            )
            .arg("--submission-listen")
            .arg(format!("127.0.0.1:{submission}"))
            .args(extra);
        let n = std::fs::read_dir(&dir.0).map(|d| d.count()).unwrap_or(0);
        let proc = Proc::spawn(cmd, dir.path(&format!("gateway-{grpc}-{n}.log")))?;
        let mut gw = Gateway {
            proc,
            grpc_url: format!("http://127.0.0.1:{grpc}"),
            http_port: http,
            imap_port: extra
                .iter()
                .position(|a| *a == "--imap-listen")
                .and_then(|i| extra.get(i + 1))
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(imap),
            submission_port: submission,
        };
        // With --tls-cert the HTTP port speaks HTTPS; readiness is probed without
        // checking the (test) certificate.
        let scheme = if extra.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://127.0.0.1:{http}/readyz");
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()?;
        let res = wait_until("gateway ready", Duration::from_secs(30), || {
            let (url, client) = (url.clone(), client.clone());
            async move {
                Ok(client
                    .get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ()))
            }
        })
        .await;
        if let Err(e) = res {
            let log = gw.proc.output();
            gw.proc.kill9();
            bail!("{e}\n--- gateway log ---\n{log}");
        }
        Ok(gw)
    }
}

/// A running connector.
#[derive(Debug)]
pub struct Connector {
    /// The process.
    pub proc: Proc,
    /// Its config file.
    pub config: PathBuf,
}

impl Connector {
    /// Writes `config` to a file and starts `postern-connector run`.
    pub fn start(dir: &Scratch, name: &str, config: &str) -> Result<Self> {
        let path = dir.path(&format!("{name}.toml"));
        std::fs::write(&path, config)?;
        Self::start_file(dir, name, &path)
    }

    /// Starts a connector on an existing config file.
    pub fn start_file(dir: &Scratch, name: &str, path: &Path) -> Result<Self> {
        Self::start_file_with(dir, name, path, &[])
    }

    /// [`Connector::start`] with more command-line arguments (`--otlp-endpoint`).
    pub fn start_with(dir: &Scratch, name: &str, config: &str, extra: &[&str]) -> Result<Self> {
        let path = dir.path(&format!("{name}.toml"));
        std::fs::write(&path, config)?;
        Self::start_file_with(dir, name, &path, extra)
    }

    fn start_file_with(dir: &Scratch, name: &str, path: &Path, extra: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(bin("postern-connector"));
        cmd.env("POSTERN_LOG", "info,postern_connector=debug")
            .arg("run")
            .arg("--config")
            .arg(path)
            .args(extra);
        let n = std::fs::read_dir(&dir.0).map(|d| d.count()).unwrap_or(0);
        let proc = Proc::spawn(cmd, dir.path(&format!("connector-{name}-{n}.log")))?;
        Ok(Connector {
            proc,
            config: path.to_path_buf(),
        })
    }
}

/// One DAV source for a connector config.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Source name.
    pub name: String,
    /// caldav | carddav.
    pub kind: String,
    /// Back-end URL.
    pub url: String,
    /// Back-end username ("" for none).
    pub username: String,
    /// Back-end password.
    pub password: String,
    /// Gateway user.
    pub user: String,
    /// Mode.
    pub mode: String,
    /// Conflict policy.
    pub conflict: String,
    /// Round interval.
    pub interval: String,
}

impl SourceSpec {
    /// A two-way, backend-wins source for gateway user `alice`, logging in to the back
    /// end as `alice` / `alicepw` (the test Radicale's account).
    pub fn alice(name: &str, kind: &str, url: &str, interval: &str) -> Self {
        SourceSpec {
            name: name.into(),
            kind: kind.into(),
            url: url.into(),
            username: "alice".into(),
            password: "alicepw".into(),
            user: "alice".into(),
            mode: "two-way".into(),
            conflict: "backend-wins".into(),
            interval: interval.into(),
        }
    }
}

/// A connector config with `token` and `sources`.
pub fn connector_config(gateway: &str, token: &str, sources: &[SourceSpec]) -> String {
    let mut s = format!("gateway = \"{gateway}\"\ntoken = \"{token}\"\n");
    for src in sources {
        s.push_str(&format!(
            "\n[[source]]\nname = \"{}\"\nkind = \"{}\"\nurl = \"{}\"\nuser = \"{}\"\nmode = \"{}\"\nconflict = \"{}\"\ninterval = \"{}\"\n",
            src.name, src.kind, src.url, src.user, src.mode, src.conflict, src.interval
        ));
        if !src.username.is_empty() {
            s.push_str(&format!(
                "username = \"{}\"\npassword = \"{}\"\n",
                src.username, src.password
            ));
        }
    }
    s
}

/// Everything a typical scenario needs: a database with tenant `acme`, user `alice`
/// and connector `hq`, and a running gateway.
#[derive(Debug)]
pub struct Deployment {
    /// Scratch directory (logs, configs).
    pub dir: Scratch,
    /// Database URL.
    pub db: String,
    /// A store on the same database, for gateway-side edits and assertions.
    pub store: Store,
    /// The tenant's id.
    pub tenant: Uuid,
    /// The connector's token.
    pub token: String,
    /// The running gateway.
    pub gateway: Gateway,
}

impl Deployment {
    /// Sets up the database and starts a gateway.
    pub async fn start(name: &str, gateway_args: &[&str]) -> Result<Self> {
        let dir = Scratch::new(name);
        let db = fresh_database().await?;
        admin(&db, &["tenant", "add", "acme"])?;
        admin(&db, &["user", "add", "--tenant", "acme", "alice"])?;
        let token = last_line(&admin(
            &db,
            &["connector", "enroll", "--tenant", "acme", "hq"],
        )?);
        let gateway = Gateway::start(&db, &dir, gateway_args).await?;
        let store = Store::connect(&db, 4)?;
        let tenant = store.tenant_id("acme").await?;
        Ok(Deployment {
            dir,
            db,
            store,
            tenant,
            token,
            gateway,
        })
    }

    /// The collection bound to back-end `href`, once the connector reported it.
    pub async fn collection(&self, href: &str) -> Result<Uuid> {
        wait_until(
            &format!("collection {href} on the gateway"),
            Duration::from_secs(30),
            || async {
                let all = self.store.list_collections(Some(self.tenant)).await?;
                Ok(all
                    .into_iter()
                    .find(|c| c.backend_href == href)
                    .map(|c| c.id))
            },
        )
        .await
    }

    /// The live items of a collection, by UID.
    pub async fn items_by_uid(
        &self,
        coll: Uuid,
    ) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        Ok(self
            .store
            .list_items(self.tenant, coll)
            .await?
            .into_iter()
            .map(|i| (i.uid, i.content))
            .collect())
    }

    /// Runs an SQL query on the test database (for assertions only).
    pub async fn query(&self, sql: &str) -> Result<Vec<tokio_postgres::Row>> {
        Ok(self.store.client().await?.query(sql, &[]).await?)
    }
}

pub mod backends;
pub mod dav;
pub mod endpoint;
pub mod imaplib;
pub mod inproc;
pub mod link;
pub mod mail;
pub mod mailbench;
pub mod oracle;
pub mod otlp;
pub mod pki;
pub mod proxy;
pub mod rewriter;
