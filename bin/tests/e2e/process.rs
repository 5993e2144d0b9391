//! The real `gatehouse` binary as a child process, for tests that must stop
//! it the way an operator's bad day does (`kill -9`) or read its log. It
//! serves the database, Redis prefix, exchange and keys of a [`TestApp`]'s
//! configuration (stop that app's in-process server first).
//!
//! [`TestApp`]: crate::harness::TestApp

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use gatehouse::config::Config;
use tonic::transport::Channel;

/// A running `gatehouse serve` and a channel to it. Killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub channel: Channel,
    log: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts the binary on `config`'s stores, with `env` on top (later
    /// entries win), and waits for it to log its address.
    pub async fn start(config: &Config, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("GATEHOUSE_LOG_FORMAT", "json")
            .env("GATEHOUSE_GRPC_ADDR", "127.0.0.1:0")
            .env("GATEHOUSE_DATA_DIR", &config.data_dir)
            .env("GATEHOUSE_REDIS_KEY_PREFIX", &config.redis_key_prefix)
            .env("GATEHOUSE_AMQP_EXCHANGE", &config.amqp_exchange)
            .env("GATEHOUSE_OUTBOX_POLL_INTERVAL", "50ms");
        for (name, value) in [
            ("DATABASE_URL", config.database_url.clone()),
            ("REDIS_URL", config.redis_url.clone()),
            ("AMQP_URL", config.amqp_url.clone()),
            ("GATEHOUSE_SIGNING_KEY_FILE", config.signing_key_file.as_ref().map(|p| p.display().to_string())),
            ("GATEHOUSE_SECRET_KEY_FILE", config.secret_key_file.as_ref().map(|p| p.display().to_string())),
        ] {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the gatehouse binary starts");

        // Read the log on a thread; learn the port from the "serving" line.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("gatehouse serving gRPC")
                    && let Some(addr) = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v["fields"]["addr"].as_str().map(str::to_owned))
                {
                    let _ = addr_tx.send(addr);
                }
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
            panic!("the server did not log its address; stderr:\n{stderr}");
        };
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        Self { child, channel, log: Some(log) }
    }

    /// `kill -9`: no graceful stop, no lease released, nothing flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a graceful stop), then everything the process logged.
    pub fn terminate(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let mut log = self.log.take().map(|reader| reader.join().unwrap_or_default()).unwrap_or_default();
        let mut stderr = String::new();
        let _ = self.child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
        log.push_str(&stderr);
        log
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
