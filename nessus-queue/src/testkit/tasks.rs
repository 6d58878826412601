//! Where a batch of submitted tasks stands, for tests that wait for them.

use crate::{Error, Queue, Result, TaskStatus};

/// How many of `ids` are in a terminal state. A task the queue no longer knows is
/// [`Error::NotFound`]: a test waiting for it must fail, not wait out its limit.
pub async fn terminal_count(queue: &Queue, ids: &[String]) -> Result<usize> {
    let mut terminal = 0;
    for id in ids {
        let view = queue.get(id).await?.ok_or_else(|| Error::NotFound {
            task_id: id.clone(),
        })?;
        terminal += usize::from(view.task.status.is_terminal());
    }
    Ok(terminal)
}

/// The tasks of `ids` that did not complete, each as `id: status, error code, error
/// message` (empty when all completed).
pub async fn not_completed(queue: &Queue, ids: &[String]) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for id in ids {
        let view = queue.get(id).await?.ok_or_else(|| Error::NotFound {
            task_id: id.clone(),
        })?;
        let t = view.task;
        if t.status != TaskStatus::Completed {
            failed.push(format!(
                "{id}: {}, {:?}, {:?}",
                t.status, t.error_code, t.error_message
            ));
        }
    }
    Ok(failed)
}
