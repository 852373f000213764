"""back-channel logout

OpenID Connect Back-Channel Logout 1.0: a client may register the URI at which it is told that
a sign-in session ended; each session has a public identifier, `sid`, kept across a
re-authentication in the same browser, which goes into the ID tokens issued in it; each code
remembers it, so that the clients to tell can be found when the session ends. Sessions and
codes from before this revision have none, and their end is told to nobody.

Revision ID: 0007_backchannel_logout
Revises: 0006_session_devices
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_backchannel_logout"
down_revision = "0006_session_devices"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("clients", sa.Column("backchannel_logout_uri", sa.Text(), nullable=True))
    op.add_column("login_sessions", sa.Column("oidc_sid", sa.String(64), nullable=True))
    op.add_column("authorization_codes", sa.Column("sid", sa.String(64), nullable=True))
    op.create_index("ix_authorization_codes_sid", "authorization_codes", ["sid"])


def downgrade():
    op.drop_index("ix_authorization_codes_sid", table_name="authorization_codes")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("sid")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("oidc_sid")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("backchannel_logout_uri")
