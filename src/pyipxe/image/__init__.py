"""Images: the registry, spooled image bytes, format detection, downloading (reference §7)."""
