"""pushed authorization requests

Requests a client pushes to /par (RFC 9126), named by the browser by their request_uri; and
the clients that must push theirs (`require_par`).

Revision ID: 0012_pushed_requests
Revises: 0011_client_jwks_uri
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_pushed_requests"
down_revision = "0011_client_jwks_uri"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pushed_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"],
                                name=op.f("fk_pushed_requests_client_id_clients"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushed_requests")),
        sa.UniqueConstraint("handle_hash", name=op.f("uq_pushed_requests_handle_hash")),
    )
    op.create_index(op.f("ix_pushed_requests_client_id"), "pushed_requests", ["client_id"])
    op.create_index(op.f("ix_pushed_requests_expires_at"), "pushed_requests", ["expires_at"])
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_par", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_par")
    op.drop_index(op.f("ix_pushed_requests_expires_at"), table_name="pushed_requests")
    op.drop_index(op.f("ix_pushed_requests_client_id"), table_name="pushed_requests")
    op.drop_table("pushed_requests")
