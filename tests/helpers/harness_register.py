"""``--import tests.helpers.harness_register``: register the harness test plug-in (idempotent)."""

from tests.helpers.harness_plugin import register

register()
