"""resource indicators

The resources (RFC 8707) an authorization request asked for, kept with its code and then with
its token family: tokens from them are for those audiences, and a token request may narrow
them, never widen them. Empty: none asked, the client's registered audiences apply.

Revision ID: 0005_resource_indicators
Revises: 0004_mfa
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_resource_indicators"
down_revision = "0004_mfa"
branch_labels = None
depends_on = None

TABLES = ("authorization_codes", "token_families")


def upgrade():
    for table in TABLES:
        op.add_column(table, sa.Column("resources", sa.JSON(), nullable=False,
                                       server_default=sa.text("'[]'")))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("resources")
