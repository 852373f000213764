"""device authorizations

Requests of devices that sign users in through another device (RFC 8628).

Revision ID: 0013_device_authorizations
Revises: 0012_pushed_requests
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_device_authorizations"
down_revision = "0012_pushed_requests"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "device_authorizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("authorization_code_id", sa.Integer(), nullable=True),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"],
                                name=op.f("fk_device_authorizations_client_id_clients"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["authorization_code_id"], ["authorization_codes.id"],
            name=op.f("fk_device_authorizations_authorization_code_id_authorization_codes"),
            ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_authorizations")),
        sa.UniqueConstraint("device_code_hash",
                            name=op.f("uq_device_authorizations_device_code_hash")),
        sa.UniqueConstraint("user_code_hash", name=op.f("uq_device_authorizations_user_code_hash")),
    )
    op.create_index(op.f("ix_device_authorizations_client_id"), "device_authorizations",
                    ["client_id"])
    op.create_index(op.f("ix_device_authorizations_expires_at"), "device_authorizations",
                    ["expires_at"])


def downgrade():
    op.drop_index(op.f("ix_device_authorizations_expires_at"), table_name="device_authorizations")
    op.drop_index(op.f("ix_device_authorizations_client_id"), table_name="device_authorizations")
    op.drop_table("device_authorizations")
