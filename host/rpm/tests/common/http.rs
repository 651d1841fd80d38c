//! A real nginx for the HTTP source tests, run by the test as the current
//! user on 127.0.0.1 with a free port, every path it writes (pid, logs,
//! temp dirs) under its own directory, in the foreground with no master
//! process; stopped (killed and reaped) by `stop` or on drop.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx's path, or `None` when it is not installed (scripts/setup.sh
/// installs it).
pub fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub struct Nginx {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    scheme: &'static str,
}

/// A server certificate and its key (PEM files) for `listen … ssl`.
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// Serves `root` at `/`; `locations` is extra `location` blocks for
    /// the server. `dir` holds the config, logs and temp dirs.
    pub fn start(dir: &Path, root: &Path, locations: &str) -> Nginx {
        Nginx::start_with(dir, root, locations, None)
    }

    /// [`Nginx::start`] over HTTPS with `tls`.
    pub fn start_tls(dir: &Path, root: &Path, tls: &Tls<'_>) -> Nginx {
        Nginx::start_with(dir, root, "", Some(tls))
    }

    fn start_with(dir: &Path, root: &Path, locations: &str, tls: Option<&Tls<'_>>) -> Nginx {
        let bin = nginx_binary().expect("nginx is missing: run scripts/setup.sh");
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.display();
        // A port picked free can be taken before nginx binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let listen = match tls {
                None => format!("listen 127.0.0.1:{port};"),
                Some(t) => format!(
                    "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                    t.cert.display(),
                    t.key.display()
                ),
            };
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\n\
                 pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log {d}/access.log;\n\
                 client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
                 scgi_temp_path {d}/scgi;\n  default_type application/octet-stream;\n\
                 server {{\n    {listen}\n    root {root};\n{locations}\n  }}\n}}\n",
                root = root.display()
            );
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut child = Command::new(&bin)
                .arg("-p")
                .arg(dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(st) = child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    if log.contains("Address already in use") {
                        break;
                    }
                    panic!("nginx exited ({st}): {log}");
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx {
                        child: Some(child),
                        port,
                        dir: dir.to_path_buf(),
                        scheme: if tls.is_some() { "https" } else { "http" },
                    };
                }
                assert!(Instant::now() < until, "nginx did not listen on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nginx found no free port");
    }

    /// `http(s)://127.0.0.1:PORT/<path>` (no trailing slash added).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}/{path}", self.scheme, self.port)
    }

    /// Kill and reap it; afterwards the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Requests nginx logged (`METHOD path status`), to show which were
    /// made.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
