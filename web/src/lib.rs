//! pmem-web: the browser visualizer (filled by the web issue).
