//! SIGINT and SIGTERM, counted. The runner decides what a running child gets; with no
//! child running, the top level ends the run with exit 130.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// Shared count of interrupts received and of children running.
#[derive(Clone, Debug)]
pub struct Interrupts {
    count: Arc<watch::Sender<u32>>,
    children: Arc<AtomicUsize>,
}

impl Default for Interrupts {
    fn default() -> Self {
        Interrupts {
            count: Arc::new(watch::channel(0).0),
            children: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Interrupts {
    /// Starts listening for SIGINT and SIGTERM. Needs a tokio runtime.
    pub fn install() -> std::io::Result<Interrupts> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupts = Interrupts::default();
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let sender = interrupts.count.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = sigint.recv() => {}
                    Some(()) = sigterm.recv() => {}
                    else => break,
                }
                sender.send_modify(|n| *n += 1);
            }
        });
        Ok(interrupts)
    }

    /// Whether an interrupt arrived since tfenv started.
    pub fn received(&self) -> bool {
        *self.count.borrow() > 0
    }

    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.count.subscribe()
    }

    /// Records a running child until the guard is dropped.
    pub fn child_running(&self) -> ChildGuard {
        self.children.fetch_add(1, Ordering::SeqCst);
        ChildGuard(self.children.clone())
    }

    pub fn children_running(&self) -> usize {
        self.children.load(Ordering::SeqCst)
    }

    /// Resolves at the first interrupt that arrives while no child is running: then
    /// nobody else will act on it, and the run should end.
    pub async fn idle_interrupt(&self) {
        let mut rx = self.subscribe();
        loop {
            if *rx.borrow_and_update() > 0 && self.children_running() == 0 {
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    #[cfg(test)]
    pub fn raise(&self) {
        self.count.send_modify(|n| *n += 1);
    }
}

pub struct ChildGuard(Arc<AtomicUsize>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
