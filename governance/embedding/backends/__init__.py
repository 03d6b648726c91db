"""One module per embedding backend: hashing, MiniLM (numpy, ONNX), EfficientNet, offline, media, Gemini."""
