//! The metadata state machine for openraft: committed batches applied to the
//! `MetadataImage`, published to the node's readers through a watch channel.
//!
//! Snapshots are the image itself (JSON), written as `<index, 20 digits>-<term, 10
//! digits>.checkpoint` beside the log, as KRaft names its snapshots; a start loads the
//! newest one and replays the log after it. Older snapshots are removed once a newer one
//! is on disk.

use super::TypeConfig;
use crate::cluster::image::MetadataImage;
use crate::storage::checkpoint::write_atomically;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

type NodeId = u64;

#[derive(Serialize, Deserialize, Default, Clone)]
struct Stored {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    image: MetadataImage,
}

struct Inner {
    dir: PathBuf,
    state: Stored,
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
    published: watch::Sender<Arc<MetadataImage>>,
}

#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
}

fn snapshot_name(meta: &SnapshotMeta<NodeId, BasicNode>) -> String {
    let (index, term) = meta.last_log_id.map_or((0, 0), |l| (l.index, l.leader_id.term));
    format!("{index:020}-{term:010}.checkpoint")
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&io::Error::other(e.to_string())).into()
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

impl StateMachine {
    /// Loads the newest snapshot in `dir`, if any; the image starts from it.
    pub fn open(dir: &Path) -> io::Result<(Self, watch::Receiver<Arc<MetadataImage>>)> {
        let mut newest: Option<(String, SnapshotFile)> = None;
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().to_string();
            if !name.ends_with(".checkpoint") || newest.as_ref().is_some_and(|(n, _)| *n > name) {
                continue;
            }
            let bytes = std::fs::read(dir.join(&name))?;
            match serde_json::from_slice::<SnapshotFile>(&bytes) {
                Ok(f) => newest = Some((name, f)),
                Err(e) => tracing::warn!(file = name, error = %e, "ignoring an unreadable metadata snapshot"),
            }
        }
        let (state, snapshot) = match newest {
            Some((_, f)) => {
                let state: Stored = serde_json::from_slice(&f.data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                (state, Some((f.meta, f.data)))
            }
            None => (Stored::default(), None),
        };
        let (tx, rx) = watch::channel(Arc::new(state.image.clone()));
        let inner = Inner { dir: dir.to_owned(), state, snapshot, published: tx };
        Ok((StateMachine { inner: Arc::new(Mutex::new(inner)) }, rx))
    }
}

impl Inner {
    fn save_snapshot(&mut self, meta: SnapshotMeta<NodeId, BasicNode>, data: Vec<u8>) -> io::Result<()> {
        let name = snapshot_name(&meta);
        let file = SnapshotFile { meta: meta.clone(), data: data.clone() };
        write_atomically(&self.dir.join(&name), &serde_json::to_vec(&file).expect("snapshots serialise"))?;
        for e in std::fs::read_dir(&self.dir)? {
            let other = e?.file_name().to_string_lossy().to_string();
            if other.ends_with(".checkpoint") && other < name {
                let _ = std::fs::remove_file(self.dir.join(other));
            }
        }
        self.snapshot = Some((meta, data));
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut inner = self.inner.lock().unwrap();
        let data = serde_json::to_vec(&inner.state).map_err(sm_err)?;
        let last = inner.state.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: inner.state.membership.clone(),
            snapshot_id: format!("{}-{}", last.map_or(0, |l| l.index), crate::time::now_ms()),
        };
        inner.save_snapshot(meta.clone(), data.clone()).map_err(sm_err)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let inner = self.inner.lock().unwrap();
        Ok((inner.state.last_applied, inner.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.inner.lock().unwrap();
        let mut out = Vec::new();
        for e in entries {
            inner.state.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    if let Err(why) = inner.state.image.apply_batch(e.log_id.index, &batch.records) {
                        // Every node refuses the same batch the same way; the controller
                        // checks before it writes, so this is a bug to report.
                        tracing::error!(offset = e.log_id.index, error = why, "a metadata batch did not fit the image and was skipped");
                    }
                }
                EntryPayload::Membership(m) => inner.state.membership = StoredMembership::new(Some(e.log_id), m),
            }
            inner.state.image.offset = e.log_id.index;
            out.push(e.log_id.index);
        }
        let image = Arc::new(inner.state.image.clone());
        inner.published.send_replace(image);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta<NodeId, BasicNode>, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: Stored = serde_json::from_slice(&data).map_err(sm_err)?;
        let mut inner = self.inner.lock().unwrap();
        inner.save_snapshot(meta.clone(), data).map_err(sm_err)?;
        inner.state = state;
        let image = Arc::new(inner.state.image.clone());
        inner.published.send_replace(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(data.clone())) }))
    }
}
