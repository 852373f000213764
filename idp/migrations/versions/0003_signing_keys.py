"""signing keys

Signing keys move from PEM files in KEYS_DIR to the `signing_keys` table, private keys encrypted
under KEYS_PASSPHRASE, so that every worker and host shares them. The table starts empty: the
first start after the upgrade imports the files (the newest keeps signing, the others stay
published as retired) and publishes a next key. A partial unique index allows at most one
active and one next key. Downgrading drops the table; the files are never deleted.

Revision ID: 0003_signing_keys
Revises: 77835fe87c06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_signing_keys"
down_revision = "77835fe87c06"
branch_labels = None
depends_on = None

ONE_PER_STATE = sa.text("state != 'retired'")


def upgrade():
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("encrypted_private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('next', 'active', 'retired')",
                           name=op.f("ck_signing_keys_state")),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index("uq_signing_keys_active_next", ["state"], unique=True,
                              sqlite_where=ONE_PER_STATE, postgresql_where=ONE_PER_STATE)


def downgrade():
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_signing_keys_active_next", sqlite_where=ONE_PER_STATE,
                            postgresql_where=ONE_PER_STATE)
    op.drop_table("signing_keys")
