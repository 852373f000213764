"""registration management

The registration access token of a self-registered client (RFC 7592), kept as a keyed hash.

Revision ID: 0018_registration_management
Revises: 0017_dpop
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_registration_management"
down_revision = "0017_dpop"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("registration_token_hash", sa.String(length=64),
                                   nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_token_hash")
