//! The bootstrap every fake provider shares: an actix-web server on its own OS thread
//! with its own actix `System`, bound to `127.0.0.1:0`, so it serves `#[actix_rt::test]`
//! tests and plain `#[test]`s that run the daemon as a child process alike. Dropping
//! the [`FakeServer`] stops it and joins its thread.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use actix_web::dev::{Extensions, ServerHandle};
use actix_web::{web, App, HttpServer};

/// Called for every new connection (e.g. to remember its socket).
pub type OnConnect = fn(&dyn Any, &mut Extensions);

/// A running fake server.
pub struct FakeServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a one-worker server named `name` whose app `configure` sets up, and waits
    /// until it listens.
    pub fn start<F>(name: &str, configure: F, on_connect: Option<OnConnect>) -> FakeServer
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let mut server =
                        HttpServer::new(move || App::new().configure(configure.clone()))
                            .workers(1)
                            .disable_signals()
                            .shutdown_timeout(0);
                    if let Some(on_connect) = on_connect {
                        server = server.on_connect(on_connect);
                    }
                    match server.bind(("127.0.0.1", 0)) {
                        Ok(server) => {
                            let addr = server.addrs()[0];
                            let running = server.run();
                            let _ = tx.send(Ok((addr, running.handle())));
                            let _ = running.await;
                        }
                        Err(error) => {
                            let _ = tx.send(Err(error));
                        }
                    }
                });
            })
            .unwrap_or_else(|e| panic!("spawn the {name} thread: {e}"));
        let (addr, handle) = rx
            .recv()
            .unwrap_or_else(|_| panic!("{name} ended before listening"))
            .unwrap_or_else(|e| panic!("bind {name}: {e}"));
        FakeServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; the returned future only
        // reports completion, which joining the thread waits for instead.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
