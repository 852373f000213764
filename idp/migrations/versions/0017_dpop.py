"""dpop

Sender-constrained tokens (RFC 9449): clients that must send DPoP proofs, authorization codes
bound to a DPoP key in advance, and token families whose refresh tokens are bound to one.

Revision ID: 0017_dpop
Revises: 0016_client_documents
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_dpop"
down_revision = "0016_client_documents"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_dpop", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    for table in ("authorization_codes", "token_families"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("dpop_jkt", sa.String(length=43), nullable=True))


def downgrade():
    for table in ("token_families", "authorization_codes"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("dpop_jkt")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_dpop")
