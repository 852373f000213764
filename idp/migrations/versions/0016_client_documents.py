"""client documents

The pages of a client's privacy policy and terms of service (RFC 7591 §2), linked from the
consent page.

Revision ID: 0016_client_documents
Revises: 0015_pairwise_subjects
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_client_documents"
down_revision = "0015_pairwise_subjects"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("policy_uri", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tos_uri", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("tos_uri")
        batch.drop_column("policy_uri")
