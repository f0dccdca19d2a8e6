//! The storage engine: Kafka's log layout and its moving parts, reached by the API
//! handlers only through `LogManager` and `Partition`.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod dir_lock;
pub mod leader_epoch_cache;
mod index_file;
pub mod log;
pub mod log_cleaner;
pub mod log_manager;
mod offset_index;
pub mod partition;
pub mod producer_state;
pub mod recompress;
pub mod resource_budget;
pub mod segment;
mod segment_recovery;
mod time_index;

pub use log::{FileSlice, ReadError};
pub use log_cleaner::LogCleaner;
pub use log_manager::{LogManager, Topic, TopicError};
pub use partition::Partition;
