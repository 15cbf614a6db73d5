"""``patchline demo``: a signed repository, a static host, and devices updating through it."""
