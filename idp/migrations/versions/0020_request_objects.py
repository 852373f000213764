"""request objects and signed userinfo

Clients that send their authorization requests as signed request objects (RFC 9101): the
request_uris they publish them at, whether they must, and with which algorithm; and clients that take /userinfo
as a signed JWT (OIDC Core §5.3.2).

Revision ID: 0020_request_objects
Revises: 0019_client_metadata_documents
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_request_objects"
down_revision = "0019_client_metadata_documents"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("request_uris", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("require_signed_request_object", sa.Boolean(),
                                   nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("request_object_signing_alg", sa.String(length=10),
                                   nullable=True))
        batch.add_column(sa.Column("userinfo_signed_response_alg", sa.String(length=10),
                                   nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("userinfo_signed_response_alg")
        batch.drop_column("request_object_signing_alg")
        batch.drop_column("require_signed_request_object")
        batch.drop_column("request_uris")
