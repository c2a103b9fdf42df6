"""The equipment tests' machines, for the bad-input tests that need one."""

from tests.equipment.conftest import eq, machine  # noqa: F401 - fixtures shared with tests/equipment
