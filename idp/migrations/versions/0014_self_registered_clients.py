"""self-registered clients

Clients that registered themselves at /register (RFC 7591): the consent page warns that their
name is their own claim.

Revision ID: 0014_self_registered_clients
Revises: 0013_device_authorizations
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_self_registered_clients"
down_revision = "0013_device_authorizations"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("self_registered", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("self_registered")
