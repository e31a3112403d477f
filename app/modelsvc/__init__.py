"""The model service as a separate process: an HTTP server around any ModelService (server.py, imports torch
through the backend it wraps) and a torch-free client the web server uses in its place (client.py)."""
