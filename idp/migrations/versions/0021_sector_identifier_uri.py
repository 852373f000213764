"""sector identifier uri

A pairwise client's sector_identifier_uri (OIDC Core §8.1): the URL listing its redirect
URIs, whose host is its sector.

Revision ID: 0021_sector_identifier_uri
Revises: 0020_request_objects
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_sector_identifier_uri"
down_revision = "0020_request_objects"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("sector_identifier_uri", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("sector_identifier_uri")
