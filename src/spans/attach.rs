//! Making a span current without tying its owner to the thread.
//!
//! OpenTelemetry's `ContextGuard` is not `Send`: it pops the context stack of the thread that
//! pushed it. A [`Span`](super::Span) that held one would make any `async fn` that keeps a span
//! in a local non-`Send`, even when the span was moved into [`Span::instrument`](super::Span::instrument)
//! before the first `.await` (the compiler still counts the moved-out local as held). So the
//! guard stays in a per-thread table, and the span holds only an [`Attachment`] token, which is
//! `Send`.
//!
//! A span is meant to end on the thread that started it. When one ends elsewhere (it was held
//! across an `.await` and the task moved), its token is left in a process-wide list; the
//! starting thread pops that guard the next time it starts or ends a span, and the misuse is
//! described once on standard error.

use crate::diagnostics::report_once;
use crate::sync::lock;
use opentelemetry::{Context, ContextGuard};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// A span's place on the context stack of the thread that attached it. Dropping it detaches.
#[derive(Debug)]
pub(super) struct Attachment {
    token: u64,
}

/// The guards attached on this thread, with their tokens, oldest first; this thread's index
/// (0 until first use) and the count of attachments made on it, for the tokens.
struct Attached {
    guards: Vec<(u64, ContextGuard)>,
    thread: u32,
    count: u32,
}

impl Drop for Attached {
    fn drop(&mut self) {
        // The thread is exiting: its context stack may already be gone, and popping it would
        // panic inside a thread-local destructor. The guards hold only a stack position.
        for (token, guard) in self.guards.drain(..) {
            std::mem::forget(guard);
            if ORPHANS_PENDING.load(Ordering::Relaxed) {
                lock(&ORPHANS).retain(|t| *t != token);
            }
        }
    }
}

thread_local! {
    static ATTACHED: RefCell<Attached> = const {
        RefCell::new(Attached { guards: Vec::new(), thread: 0, count: 0 })
    };
}

static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);
/// Tokens of spans that ended on another thread than the one they were attached on.
static ORPHANS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static ORPHANS_PENDING: AtomicBool = AtomicBool::new(false);

/// Pops this thread's contexts of spans that ended elsewhere; call before reading the
/// current context to parent a new span.
#[inline]
pub(super) fn settle() {
    if ORPHANS_PENDING.load(Ordering::Relaxed) {
        reap_orphans();
    }
}

/// Makes `cx` current on this thread until the returned attachment is dropped.
pub(super) fn attach(cx: Context) -> Attachment {
    let mut guard = Some(cx.attach());
    // Token 0: the thread is exiting and its table is gone; the context is not kept current.
    let token = ATTACHED
        .try_with(|a| {
            let mut a = a.borrow_mut();
            if a.thread == 0 {
                a.thread = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            }
            a.count = a.count.wrapping_add(1);
            let token = (u64::from(a.thread) << 32) | u64::from(a.count);
            if let Some(guard) = guard.take() {
                a.guards.push((token, guard));
            }
            token
        })
        .unwrap_or(0);
    drop(guard);
    Attachment { token }
}

/// Takes this thread's guard for `token` out of the table, if it is attached here.
fn take(token: u64) -> Option<ContextGuard> {
    ATTACHED
        .try_with(|a| {
            let mut a = a.borrow_mut();
            let at = a.guards.iter().rposition(|(t, _)| *t == token)?;
            Some(a.guards.remove(at).1)
        })
        .ok()
        .flatten()
}

/// Pops this thread's guards whose spans ended on other threads.
#[cold]
fn reap_orphans() {
    let mine: Vec<ContextGuard> = {
        let mut orphans = lock(&ORPHANS);
        let mut mine = Vec::new();
        orphans.retain(|token| match take(*token) {
            Some(guard) => {
                mine.push(guard);
                false
            }
            None => true,
        });
        if orphans.is_empty() {
            ORPHANS_PENDING.store(false, Ordering::Relaxed);
        }
        mine
    };
    // Dropped outside the lock: popping a context may end spans and run their processors.
    drop(mine);
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.token == 0 {
            return;
        }
        match take(self.token) {
            Some(guard) => drop(guard),
            None => {
                lock(&ORPHANS).push(self.token);
                ORPHANS_PENDING.store(true, Ordering::Relaxed);
                report_once("span-moved-thread", &|| {
                    "a span ended on another thread than the one it started on: it was kept \
                     across an .await; wrap the future with Span::instrument (or \
                     SpanBuilder::instrument) so the span is current only while it is polled"
                        .to_string()
                });
            }
        }
        settle();
    }
}
