//! A small pool of reader connections used from blocking threads.

use std::sync::{Arc, Mutex};

use crate::backend::{Backend, Reader};
use crate::error::{Error, Result};

const MAX_IDLE: usize = 16;

pub struct ReaderPool {
    backend: Arc<dyn Backend>,
    idle: Mutex<Vec<Box<dyn Reader>>>,
}

impl ReaderPool {
    pub fn new(backend: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            backend,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Result<Box<dyn Reader>> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(reader) => Ok(reader),
            None => self.backend.reader(),
        }
    }

    fn give_back(&self, reader: Box<dyn Reader>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(reader);
        }
    }

    /// Runs `read` inside one snapshot on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Reader) -> Result<T> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut reader = pool.take()?;
            let result = reader.begin().and_then(|()| read(reader.as_mut()));
            let ended = reader.end();
            // A connection that failed at the storage level is not reused.
            let healthy =
                ended.is_ok() && result.as_ref().err().is_none_or(Error::is_request_error);
            if healthy {
                pool.give_back(reader);
            }
            result
        })
        .await
        .map_err(|e| Error::Storage(format!("reader task failed: {e}")))?
    }
}

impl Drop for ReaderPool {
    fn drop(&mut self) {
        // Closing a connection may block (the sync PostgreSQL client runs
        // its own runtime), so never do it on an async worker thread.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("k3r-datastore-close".into())
                .spawn(move || drop(idle));
        }
    }
}
