"""The HTTP API (``atlas api``): FastAPI app over the content database, served by
uvicorn on a socket bound with SO_REUSEPORT so several replicas share a port."""
