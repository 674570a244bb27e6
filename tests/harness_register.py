"""``--import tests.harness_register``: register the harness test plug-in (idempotent)."""

from tests.harness_plugin import register

register()
