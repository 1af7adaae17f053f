"""The model pack (models/): manifest, hashes, loading (`pack`), and the Python reference
face pipeline over the same NCNN models (`reference`)."""
