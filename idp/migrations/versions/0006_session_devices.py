"""session devices

Where each sign-in session came from (the client's address and its browser's User-Agent), so
that the account page can list a user's sessions in words they recognise, and they can end the
ones they do not. Sessions from before this revision show neither.

Revision ID: 0006_session_devices
Revises: 0005_resource_indicators
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_session_devices"
down_revision = "0005_resource_indicators"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("login_sessions", sa.Column("ip", sa.String(45), nullable=True))
    op.add_column("login_sessions", sa.Column("user_agent", sa.String(200), nullable=True))


def downgrade():
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("ip")
