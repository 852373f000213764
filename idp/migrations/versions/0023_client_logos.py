"""client logos

A client's logo_uri and the image fetched from it, as a data: URL, shown on the consent page.

Revision ID: 0023_client_logos
Revises: 0022_assertion_signing_alg
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_client_logos"
down_revision = "0022_assertion_signing_alg"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("logo_uri", sa.Text(), nullable=True))
        batch.add_column(sa.Column("logo", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("logo")
        batch.drop_column("logo_uri")
