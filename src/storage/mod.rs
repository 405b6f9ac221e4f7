//! All data I/O: object_store locations, atomic puts, Parquet and Arrow IPC through the store.
//!
//! `url` parses locations, `cloud` builds cloud stores from the environment and a pipeline's
//! [`StorageSettings`] (passed to every [`Store::open`], never held process-wide), `store` is
//! [`Store`] itself, `temp` the temporary files that spill to local disk.

mod cloud;
mod parquet_io;
mod reader;
mod row_groups;
mod store;
mod temp;
mod url;

pub(crate) use parquet_io::parquet_error;
pub use parquet_io::{
    encode_ipc, encode_parquet, read_parquet, read_parquet_columns, write_parquet,
};
pub use row_groups::RowGroupWriter;

pub use self::url::{SCHEMES, StoreUrl};
pub use cloud::StorageSettings;
pub use store::{MULTIPART_ABOVE, Store};
pub use temp::{temp_file, temp_file_error};
