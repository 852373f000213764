"""pairwise subjects

How a client knows its users (OIDC Core §8): by their public identifier, or by a pairwise one
of the client's sector.

Revision ID: 0015_pairwise_subjects
Revises: 0014_self_registered_clients
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_pairwise_subjects"
down_revision = "0014_self_registered_clients"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("subject_type", sa.String(length=10), nullable=False,
                                   server_default="public"))
        batch.add_column(sa.Column("sector_identifier", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("sector_identifier")
        batch.drop_column("subject_type")
