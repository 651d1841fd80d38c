//! Writing the disk image file: partition table at both ends, each
//! partition's content at its offset, everything else zero.
//!
//! The file is created next to its destination under a temporary name,
//! filled, synced and renamed over the destination, so a reader never sees
//! a half-written image and a failed build leaves none behind. It is sparse:
//! all-zero stretches of content are skipped rather than written, so an
//! empty root slot or a mostly empty filesystem costs no disk space.
use super::gpt;
use super::{DiskError, Placed, TableKind};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Content is written in chunks of this size; all-zero chunks are skipped.
const CHUNK: usize = 64 * 1024;

/// Write the disk image `placed` to `path`, with `contents` (partition name,
/// bytes) at the start of each named partition. Partitions without content
/// and the rest of each partition read as zeros. Content larger than its
/// partition, content for a partition not in the table, and content given
/// twice are errors. Replaces `path` atomically (mode 0644 before umask).
pub fn write_disk(
    path: &Path,
    placed: &Placed,
    contents: &[(&str, &[u8])],
) -> Result<(), DiskError> {
    if placed.table != TableKind::Gpt {
        return Err(DiskError::Unsupported("MBR"));
    }
    let mut writes = Vec::with_capacity(contents.len());
    for (i, (name, bytes)) in contents.iter().enumerate() {
        let part = placed
            .partition(name)
            .ok_or_else(|| DiskError::UnknownPartition(name.to_string()))?;
        if contents.iter().take(i).any(|(n, _)| n == name) {
            return Err(DiskError::DuplicateContent(name.to_string()));
        }
        let len = bytes.len() as u64;
        if len > part.size {
            return Err(DiskError::ContentTooLarge {
                partition: name.to_string(),
                len,
                size: part.size,
            });
        }
        writes.push((*name, part.offset, *bytes));
    }
    let tables = gpt::encode(placed)?;

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk".into());
    let err = |what: String| {
        let path = path.to_path_buf();
        move |source| DiskError::Write { path, what, source }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(err(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    let f = tmp.as_file_mut();
    f.set_len(placed.disk_size).map_err(err(format!(
        "setting the size to {} bytes",
        placed.disk_size
    )))?;
    write_at(f, 0, &tables.head).map_err(err("writing the primary GPT".into()))?;
    let tail_at = placed.disk_size - tables.tail.len() as u64;
    write_at(f, tail_at, &tables.tail)
        .map_err(err(format!("writing the backup GPT at offset {tail_at}")))?;
    for (name, offset, bytes) in writes {
        write_sparse(f, offset, bytes).map_err(err(format!(
            "writing partition {name:?} at offset {offset}"
        )))?;
    }
    f.sync_all().map_err(err("syncing".into()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(err("renaming the temporary file into place".into()))?;
    Ok(())
}

fn write_at(f: &mut File, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)
}

/// Write `bytes` at `offset`, skipping all-zero chunks (the file is new and
/// already reads as zeros there).
fn write_sparse(f: &mut File, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    let mut at = offset;
    for chunk in bytes.chunks(CHUNK) {
        if chunk.iter().any(|&b| b != 0) {
            write_at(f, at, chunk)?;
        }
        at += chunk.len() as u64;
    }
    Ok(())
}
