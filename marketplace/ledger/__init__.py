"""The ledger: every money movement between members, as immutable entries.

Loading the package installs what a job's confirmation books (ledger/confirmation.py):
jobs never import the ledger, so the ledger hands that step in.
"""

from marketplace.ledger import confirmation as _confirmation  # noqa: F401 - installs it
