"""assertion signing alg

The one algorithm a private_key_jwt client signs its assertions with, where it named one
(token_endpoint_auth_signing_alg).

Revision ID: 0022_assertion_signing_alg
Revises: 0021_sector_identifier_uri
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_assertion_signing_alg"
down_revision = "0021_sector_identifier_uri"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("token_endpoint_auth_signing_alg", sa.String(length=10),
                                   nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("token_endpoint_auth_signing_alg")
