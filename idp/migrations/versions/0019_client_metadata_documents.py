"""client metadata documents

Clients whose client_id is the https URL of their metadata document: client_id widens from 64
to 255 characters, in the clients table and in every table that names a client, and a client
keeps when its document must be fetched again.

On SQLite, widening a column rebuilds its table. Dropping the old clients table while foreign
keys are enforced would delete, by ON DELETE CASCADE, every code, token and consent naming
a client: env.py turns enforcement off for the migrations, and checks the keys after them.

Revision ID: 0019_client_metadata_documents
Revises: 0018_registration_management
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_client_metadata_documents"
down_revision = "0018_registration_management"
branch_labels = None
depends_on = None

NAMING_TABLES = ("authorization_codes", "consents", "device_authorizations", "pushed_requests",
                 "token_families")


def upgrade():
    for table in ("clients", *NAMING_TABLES):  # the referenced column first
        with op.batch_alter_table(table) as batch:
            batch.alter_column("client_id", type_=sa.String(length=255),
                               existing_type=sa.String(length=64), existing_nullable=False)
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("metadata_document_expires_at", sa.DateTime(), nullable=True))


def downgrade():
    # Clients known by a metadata document cannot be named in 64 characters: they go, with
    # their codes, tokens and consents (as when the prune removes an unused one).
    op.execute(sa.text("DELETE FROM clients WHERE metadata_document_expires_at IS NOT NULL"))
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("metadata_document_expires_at")
    for table in (*NAMING_TABLES, "clients"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("client_id", type_=sa.String(length=64),
                               existing_type=sa.String(length=255), existing_nullable=False)
