//! Waiting for the process to be asked to stop (Ctrl-C, or SIGTERM on Unix), so that `main` can
//! return and the [`TelemetryGuard`](crate::TelemetryGuard) can flush what is still buffered.
//!
//! Without a handler, SIGTERM (what `docker stop` and Kubernetes send) ends the process at once:
//! no destructor runs, and the spans, metrics and logs still waiting in the batch processors are
//! lost. The handlers are installed once per process, on a small thread of unitel's own, so
//! [`shutdown_signal`] works from any executor (and [`shutdown_requested`] from plain threads);
//! every caller sees the same first signal.

use crate::diagnostics::report_once;
use std::sync::OnceLock;
use tokio::sync::watch;

/// What the listener thread publishes: `None` until the first signal, then its name.
type Received = Option<&'static str>;

/// The one listener of the process, started by the first call: `None` when its handlers could
/// not be installed (said once on standard error).
fn listener() -> Option<watch::Receiver<Received>> {
    static LISTENER: OnceLock<Option<watch::Receiver<Received>>> = OnceLock::new();
    LISTENER.get_or_init(start).clone()
}

fn start() -> Option<watch::Receiver<Received>> {
    let (tx, rx) = watch::channel(None);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("unitel-signal".into())
        .spawn(move || listen(tx, ready_tx));
    let installed = match spawned {
        Ok(_) => ready_rx
            .recv()
            .unwrap_or_else(|_| Err("the listener thread ended".into())),
        Err(err) => Err(format!("no thread for it: {err}")),
    };
    match installed {
        Ok(()) => Some(rx),
        Err(why) => {
            report_once("signal.handler", &|| {
                format!(
                    "cannot listen for Ctrl-C/SIGTERM ({why}); shutdown_signal() will never \
                     resolve and the signals keep their default action"
                )
            });
            None
        }
    }
}

/// Runs on the listener thread: installs the handlers, says whether that worked, then publishes
/// the first signal. A second signal ends the process at once, as it would without a handler.
fn listen(tx: watch::Sender<Received>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(format!("no runtime for it: {err}")));
            return;
        }
    };
    runtime.block_on(async move {
        let (got, mut received) = tokio::sync::mpsc::unbounded_channel();
        if let Err(err) = install(&got) {
            let _ = ready.send(Err(err.to_string()));
            return;
        }
        let _ = ready.send(Ok(()));
        let Some(first) = received.recv().await else {
            return;
        };
        tx.send_replace(Some(first.name));
        if let Some(second) = received.recv().await {
            eprintln!(
                "unitel: second {}: exiting without waiting for the shutdown",
                second.name
            );
            std::process::exit(second.exit_code);
        }
    });
}

/// A signal unitel handles: its name, and the conventional exit status of a process it ends
/// (128 + its number).
#[derive(Debug, Clone, Copy)]
struct Handled {
    name: &'static str,
    exit_code: i32,
}

/// Installs the handlers (Ctrl-C, and SIGTERM on Unix); each forwards what it receives to
/// `got`, from a task on the listener's runtime.
fn install(got: &tokio::sync::mpsc::UnboundedSender<Handled>) -> std::io::Result<()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{signal, SignalKind};
        let (interrupt, terminate) = (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        );
        [
            (
                interrupt,
                Handled {
                    name: "SIGINT",
                    exit_code: 128 + 2,
                },
            ),
            (
                terminate,
                Handled {
                    name: "SIGTERM",
                    exit_code: 128 + 15,
                },
            ),
        ]
    };
    #[cfg(windows)]
    let streams = [(
        tokio::signal::windows::ctrl_c()?,
        Handled {
            name: "Ctrl-C",
            exit_code: 128 + 2,
        },
    )];
    for (mut stream, handled) in streams {
        let got = got.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let _ = got.send(handled);
            }
        });
    }
    Ok(())
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT), or SIGTERM on Unix, which is
/// what `docker stop`, Kubernetes and systemd send. Await it, let `main` return, and the
/// [`TelemetryGuard`](crate::TelemetryGuard) flushes what is still buffered, so a stopping
/// container keeps its last spans.
///
/// The handlers are installed by the first call (of this function or of
/// [`shutdown_requested`]), when it is made rather than when the future is first awaited, on a
/// thread of unitel's own: this works under any executor, with or
/// without tokio. Every call, before or after the signal, sees the same first signal, so a
/// server and a worker loop can each wait for it. Once handled, a **second** Ctrl-C or SIGTERM
/// ends the process at once (exit status 130 or 143), as it would have without a handler. If
/// the handlers cannot be installed, that is said once on standard error and the future never
/// resolves (the signals then keep their default action).
///
/// ```no_run
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// let guard = unitel::configure_telemetry(unitel::TelemetryConfig::from_env())?;
/// let app = unitel::instrument_axum(axum::Router::new());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(unitel::shutdown_signal())
///     .await?;
/// // In-flight requests have finished; flush their spans before the process exits.
/// guard.shutdown_async().await?;
/// # Ok(())
/// # }
/// ```
///
/// In a worker loop, next to the queue:
///
/// ```no_run
/// # async fn doc(mut jobs: tokio::sync::mpsc::Receiver<String>) {
/// let stop = unitel::shutdown_signal();
/// tokio::pin!(stop);
/// loop {
///     tokio::select! {
///         _ = &mut stop => break,
///         Some(job) = jobs.recv() => { /* run it */ let _ = job; }
///     }
/// }
/// # }
/// ```
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    // Installed now, not at the first poll: a signal that comes before the future is awaited
    // (during the rest of start-up) is not missed.
    let listener = listener();
    async move {
        match listener {
            Some(mut rx) => {
                // The sender lives as long as the listener thread, which never ends on its own.
                let _ = rx.wait_for(Option::is_some).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Whether Ctrl-C or SIGTERM has been received, for loops that are not async. The first call
/// installs the handlers, as [`shutdown_signal`] does: call it once at start-up, before the
/// loop, so that a signal arriving early is not missed.
///
/// ```no_run
/// # fn next_job() -> Option<u32> { None }
/// # fn run(_: u32) {}
/// let _guard = unitel::configure_telemetry(unitel::TelemetryConfig::from_env())?;
/// unitel::shutdown_requested(); // installs the handlers
/// while !unitel::shutdown_requested() {
///     if let Some(job) = next_job() {
///         run(job);
///     }
/// }
/// // The guard flushes here, as `main` returns.
/// # Ok::<(), unitel::Error>(())
/// ```
pub fn shutdown_requested() -> bool {
    listener().is_some_and(|rx| rx.borrow().is_some())
}
