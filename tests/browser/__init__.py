"""Helpers for end-to-end tests: the service under uvicorn in a thread, headless Chromium via Playwright."""
