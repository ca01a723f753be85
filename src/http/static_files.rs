//! The optional static web root (`--web-root`), e.g. the demo page.

use std::path::Path;

use tower_http::services::ServeDir;

/// Serves the files under `root`, `index.html` for directories.
pub fn static_files(root: &Path) -> ServeDir {
    ServeDir::new(root).append_index_html_on_directories(true)
}
