"""client keys

The public keys (a JWKS) of a client that authenticates with `private_key_jwt` (RFC 7523) rather
than a secret.

Revision ID: 0009_client_keys
Revises: 0008_mailed_links
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_client_keys"
down_revision = "0008_mailed_links"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("clients", sa.Column("jwks", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks")
