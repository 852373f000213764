"""client jwks_uri

Where a `private_key_jwt` client publishes its public keys, fetched by the provider, instead of
keys registered inline (`jwks`).

Revision ID: 0011_client_jwks_uri
Revises: 0010_previous_client_secret
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_client_jwks_uri"
down_revision = "0010_previous_client_secret"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("clients", sa.Column("jwks_uri", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks_uri")
