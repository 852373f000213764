"""token lifecycle

Token families, rotating refresh tokens, the access-token deny-list, and client audiences
(RFC 8707) and introspection rights.

The old `tokens` table (records of short-lived user access tokens) is replaced by
`access_tokens`, which belong to a family; its rows are not carried over, so user access
tokens issued before the upgrade stop being accepted by /userinfo — at most
ACCESS_TOKEN_TTL_SECONDS of them. Client secrets are now stored as HMAC-SHA-256 under
HASH_KEY: secrets issued before this release must be rotated (`idp clients rotate-secret`).

Revision ID: 77835fe87c06
Revises: d6c570560ae8
Create Date: 2026-11-25 14:23:48.286577

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '77835fe87c06'
down_revision = 'd6c570560ae8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('revoked_access_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_access_tokens'))
    )
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_access_tokens_expires_at'), ['expires_at'], unique=False)

    op.create_table('token_families',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('authorization_code_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['authorization_code_id'], ['authorization_codes.id'], name=op.f('fk_token_families_authorization_code_id_authorization_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_token_families_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_token_families_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_families'))
    )
    with op.batch_alter_table('token_families', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_families_authorization_code_id'), ['authorization_code_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_families_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_families_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_families_user_id'), ['user_id'], unique=False)

    op.create_table('access_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['token_families.id'], name=op.f('fk_access_tokens_family_id_token_families'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_tokens')),
    sa.UniqueConstraint('jti', name=op.f('uq_access_tokens_jti'))
    )
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_tokens_family_id'), ['family_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['family_id'], ['token_families.id'], name=op.f('fk_refresh_tokens_family_id_token_families'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_tokens_family_id'), ['family_id'], unique=False)

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_authorization_code_id'))
        batch_op.drop_index(batch_op.f('ix_tokens_client_id'))
        batch_op.drop_index(batch_op.f('ix_tokens_expires_at'))
        batch_op.drop_index(batch_op.f('ix_tokens_user_id'))

    op.drop_table('tokens')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audiences', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('introspect_any', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('tokens_revoked_at', sa.DateTime(), nullable=True))



def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('tokens_revoked_at')
        batch_op.drop_column('introspect_any')
        batch_op.drop_column('audiences')

    op.create_table('tokens',
    sa.Column('id', sa.INTEGER(), nullable=False),
    sa.Column('jti', sa.VARCHAR(length=64), nullable=False),
    sa.Column('client_id', sa.VARCHAR(length=64), nullable=False),
    sa.Column('user_id', sa.INTEGER(), nullable=True),
    sa.Column('authorization_code_id', sa.INTEGER(), nullable=True),
    sa.Column('scope', sa.TEXT(), nullable=False),
    sa.Column('issued_at', sa.DATETIME(), nullable=False),
    sa.Column('expires_at', sa.DATETIME(), nullable=False),
    sa.Column('revoked_at', sa.DATETIME(), nullable=True),
    sa.ForeignKeyConstraint(['authorization_code_id'], ['authorization_codes.id'], name=op.f('fk_tokens_authorization_code_id_authorization_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], name=op.f('fk_tokens_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('jti', name=op.f('uq_tokens_jti'))
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tokens_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tokens_authorization_code_id'), ['authorization_code_id'], unique=False)

    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_family_id'))
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_expires_at'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_tokens_family_id'))
        batch_op.drop_index(batch_op.f('ix_access_tokens_expires_at'))

    op.drop_table('access_tokens')
    with op.batch_alter_table('token_families', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_families_user_id'))
        batch_op.drop_index(batch_op.f('ix_token_families_expires_at'))
        batch_op.drop_index(batch_op.f('ix_token_families_client_id'))
        batch_op.drop_index(batch_op.f('ix_token_families_authorization_code_id'))

    op.drop_table('token_families')
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_access_tokens_expires_at'))

    op.drop_table('revoked_access_tokens')
