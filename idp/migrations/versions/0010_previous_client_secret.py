"""previous client secret

The secret a rotation replaced (`idp clients rotate-secret --keep-old-for`), accepted until its
expiry, so that a service can be given the new secret without a moment when neither works.

Revision ID: 0010_previous_client_secret
Revises: 0009_client_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_previous_client_secret"
down_revision = "0009_client_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("clients", sa.Column("previous_secret_hash", sa.String(length=64),
                                       nullable=True))
    op.add_column("clients", sa.Column("previous_secret_expires_at", sa.DateTime(),
                                       nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret_hash")
