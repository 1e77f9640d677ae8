"""Shared by every test: Ray's environment is set before any test module imports Ray."""

from blocknas.runners.ray_session import ray_environment

ray_environment()  # token auth and loopback-only, the same in every process the tests start
