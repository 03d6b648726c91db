"""The HTTP adapter: FastAPI routes that parse input, open one transaction in the key's tenant
scope, call one domain function and format the result. It never imports the worker or Celery:
the composition root (`governance serve`, worker/cli/serve.py) hands it an enqueue function."""
