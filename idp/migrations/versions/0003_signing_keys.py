"""signing keys

Placeholder in the chain for the signing-key states of issue 5 (filled in by that work).

Revision ID: 0003_signing_keys
Revises: 77835fe87c06
"""

revision = "0003_signing_keys"
down_revision = "77835fe87c06"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
