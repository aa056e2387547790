"""Models: which exist, where their files are, which runtime runs each, and the one loaded model.

``catalog`` is the single source of truth for model ids and sources; ``ids`` checks ids once, before they
become paths; ``files`` fetches, converts and removes cached files; ``gguf`` converts a GGUF for MLX;
``runtime_choice`` picks MLX, llama.cpp or a server and says why; ``user_models`` checks and reads back the
models a user registers (folders, GGUF files, servers); ``manager`` ties them together.
"""
