"""mailed links

The links mailed to users, to choose a new password or to confirm an e-mail address: only the
keyed hash of each token, its purpose, the address it went to, when it expires and when it was
used.

Revision ID: 0008_mailed_links
Revises: 0007_backchannel_logout
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_mailed_links"
down_revision = "0007_backchannel_logout"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mailed_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_mailed_links_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailed_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mailed_links_token_hash")),
    )
    op.create_index(op.f("ix_mailed_links_user_id"), "mailed_links", ["user_id"])
    op.create_index(op.f("ix_mailed_links_expires_at"), "mailed_links", ["expires_at"])


def downgrade():
    op.drop_index(op.f("ix_mailed_links_expires_at"), table_name="mailed_links")
    op.drop_index(op.f("ix_mailed_links_user_id"), table_name="mailed_links")
    op.drop_table("mailed_links")
