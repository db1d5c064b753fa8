// Owns telling whether two paths name the same file, for outputs that must not overwrite
// each other or an input.

use std::path::{Path, PathBuf};

/// Whether two paths name the same file (see [`resolved`]).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    a == b || resolved(a) == resolved(b)
}

/// `path` with its directory resolved (symbolic links, `..`), and itself when it exists.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    path.file_name().map_or(dir.clone(), |name| dir.join(name))
}
