"""The web search page and JSON API."""

from faceprint.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
