"""domain model

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 01:18:25.692772
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FOLD = """
CREATE FUNCTION cg_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$
"""

APPEND_ONLY = [
    """CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger_transaction is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER ledger_no_update_delete BEFORE UPDATE OR DELETE ON ledger_transaction
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
    # TRUNCATE fires no row trigger, so it gets its own statement-level one.
    """CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger_transaction
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""",
]

# Indexes autogenerate cannot compare (expressions, DESC): (name, table, expressions, using).
EXPRESSION_INDEXES = [
    ("ix_account_name_fold", "account", ["cg_fold(name)"], None),
    ("ix_account_name_trgm", "account", ["cg_fold(name) gin_trgm_ops"], "gin"),
    ("ix_customer_first_name_fold", "customer", ["cg_fold(first_name) text_pattern_ops"], None),
    ("ix_customer_last_name_fold", "customer", ["cg_fold(last_name) text_pattern_ops"], None),
    ("ix_customer_company_fold", "customer", ["cg_fold(company_name) text_pattern_ops"], None),
    ("ix_customer_first_name_trgm", "customer", ["cg_fold(first_name) gin_trgm_ops"], "gin"),
    ("ix_customer_last_name_trgm", "customer", ["cg_fold(last_name) gin_trgm_ops"], "gin"),
    ("ix_customer_company_trgm", "customer", ["cg_fold(company_name) gin_trgm_ops"], "gin"),
    ("ix_address_city_fold", "address", ["cg_fold(city)"], None),
    ("ix_orders_customer_placed", "orders", ["customer_id", "placed_at DESC", "id DESC"], None),
    ("ix_ledger_customer_id", "ledger_transaction", ["customer_id", "id DESC"], None),
    (
        "ix_ledger_customer_currency",
        "ledger_transaction",
        ["customer_id", "currency", "id DESC"],
        None,
    ),
    ("ix_timeline_customer_id", "timeline_event", ["customer_id", "id DESC"], None),
]

SEQUENCES = ["customer_number_seq", "account_number_seq", "order_number_seq"]

ENUMS = [
    "role", "customer_kind", "customer_status", "tax_status", "address_kind", "order_status",
    "order_source", "ledger_kind", "custom_field_type",
]


def upgrade() -> None:
    for ext in ("citext", "pg_trgm", "unaccent"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {ext} WITH SCHEMA public")
    op.execute(FOLD)
    for seq in SEQUENCES:
        op.execute(f"CREATE SEQUENCE {seq}")
    op.create_table('account',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.Text(), server_default=sa.text("'A-' || lpad(nextval('account_number_seq')::text, 6, '0')"), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('billing_contact_name', sa.Text(), nullable=True),
    sa.Column('billing_email', postgresql.CITEXT(), nullable=True),
    sa.Column('billing_phone', sa.Text(), nullable=True),
    sa.Column('billing_line1', sa.Text(), nullable=True),
    sa.Column('billing_line2', sa.Text(), nullable=True),
    sa.Column('billing_city', sa.Text(), nullable=True),
    sa.Column('billing_region', sa.Text(), nullable=True),
    sa.Column('billing_postal_code', sa.Text(), nullable=True),
    sa.Column('billing_country', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("billing_country ~ '^[A-Z]{2}$'", name=op.f('ck_account_billing_country_iso')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('number', name=op.f('uq_account_number'))
    )
    op.create_table('app_user',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('email', postgresql.CITEXT(), nullable=False),
    sa.Column('role', sa.Enum('ADMIN', 'SALES_REP', 'CUSTOMER', name='role'), nullable=False),
    sa.Column('first_name', sa.Text(), nullable=True),
    sa.Column('last_name', sa.Text(), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('email', name=op.f('uq_app_user_email'))
    )
    op.create_index('ix_app_user_role', 'app_user', ['role'], unique=False)
    op.create_table('custom_field_definition',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('type', sa.Enum('TEXT', 'NUMBER', 'BOOLEAN', 'DATE', 'SELECT', name='custom_field_type'), nullable=False),
    sa.Column('options', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('required', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('archived', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(type = 'SELECT') = (options IS NOT NULL)", name=op.f('ck_custom_field_definition_select_has_options')),
    sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,62}$'", name=op.f('ck_custom_field_definition_key_format')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_field_definition')),
    sa.UniqueConstraint('key', name=op.f('uq_custom_field_definition_key'))
    )
    op.create_table('sales_channel',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_channel')),
    sa.UniqueConstraint('code', name=op.f('uq_sales_channel_code'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_api_token_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    op.create_index(op.f('ix_api_token_user_id'), 'api_token', ['user_id'], unique=False)
    op.create_table('customer',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.Text(), server_default=sa.text("'C-' || lpad(nextval('customer_number_seq')::text, 6, '0')"), nullable=False),
    sa.Column('kind', sa.Enum('INDIVIDUAL', 'BUSINESS', name='customer_kind'), server_default='INDIVIDUAL', nullable=False),
    sa.Column('first_name', sa.Text(), nullable=True),
    sa.Column('last_name', sa.Text(), nullable=True),
    sa.Column('company_name', sa.Text(), nullable=True),
    sa.Column('email', postgresql.CITEXT(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('phone_digits', sa.Text(), sa.Computed("regexp_replace(phone, '[^0-9]', '', 'g')", persisted=True), nullable=True),
    sa.Column('reference_id', sa.Text(), nullable=True),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('sales_rep_id', sa.BigInteger(), nullable=True),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Enum('ACTIVE', 'ARCHIVED', 'MERGED', name='customer_status'), server_default='ACTIVE', nullable=False),
    sa.Column('merged_into_id', sa.BigInteger(), nullable=True),
    sa.Column('tax_status', sa.Enum('TAXABLE', 'EXEMPT', 'PARTIALLY_EXEMPT', name='tax_status'), server_default='TAXABLE', nullable=False),
    sa.Column('tax_code', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('sort_name', sa.Text(), sa.Computed("cg_fold(coalesce(nullif(btrim(coalesce(last_name, '') || ' ' || coalesce(first_name, '')), ''), company_name, number))", persisted=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(status = 'MERGED') = (merged_into_id IS NOT NULL)", name=op.f('ck_customer_merged_has_target')),
    sa.CheckConstraint("phone ~ '^\\+[1-9][0-9]{6,14}$'", name=op.f('ck_customer_phone_e164')),
    sa.CheckConstraint('first_name IS NOT NULL OR last_name IS NOT NULL OR company_name IS NOT NULL OR email IS NOT NULL', name=op.f('ck_customer_identifiable')),
    sa.CheckConstraint('merged_into_id <> id', name=op.f('ck_customer_not_merged_into_self')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_customer_account_id_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['merged_into_id'], ['customer.id'], name=op.f('fk_customer_merged_into_id_customer')),
    sa.ForeignKeyConstraint(['sales_rep_id'], ['app_user.id'], name=op.f('fk_customer_sales_rep_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_customer_user_id_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer')),
    sa.UniqueConstraint('number', name=op.f('uq_customer_number')),
    sa.UniqueConstraint('user_id', name=op.f('uq_customer_user_id'))
    )
    op.create_index('ix_customer_account_id', 'customer', ['account_id'], unique=False)
    op.create_index('ix_customer_created_at', 'customer', ['created_at', 'id'], unique=False)
    op.create_index('ix_customer_merged_into_id', 'customer', ['merged_into_id'], unique=False)
    op.create_index('ix_customer_phone_digits', 'customer', ['phone_digits'], unique=False)
    op.create_index('ix_customer_reference_id', 'customer', ['reference_id'], unique=False)
    op.create_index('ix_customer_sales_rep_id', 'customer', ['sales_rep_id', 'id'], unique=False)
    op.create_index('ix_customer_sort_name', 'customer', ['sort_name', 'id'], unique=False)
    op.create_index('ix_customer_updated_at', 'customer', ['updated_at', 'id'], unique=False)
    op.create_index('uq_customer_email_live', 'customer', ['email'], unique=True, postgresql_where=sa.text("status <> 'MERGED'"))
    op.create_table('payment_method',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('processor', sa.Text(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('brand', sa.Text(), nullable=True),
    sa.Column('last4', sa.Text(), nullable=True),
    sa.Column('exp_month', sa.SmallInteger(), nullable=True),
    sa.Column('exp_year', sa.SmallInteger(), nullable=True),
    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("last4 ~ '^[0-9]{4}$'", name=op.f('ck_payment_method_last4_digits')),
    sa.CheckConstraint("token !~ '^[0-9 -]{13,}$'", name=op.f('ck_payment_method_token_not_pan')),
    sa.CheckConstraint('exp_month BETWEEN 1 AND 12', name=op.f('ck_payment_method_exp_month_range')),
    sa.CheckConstraint('exp_year BETWEEN 2000 AND 2200', name=op.f('ck_payment_method_exp_year_range')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_method_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_method'))
    )
    op.create_index(op.f('ix_payment_method_account_id'), 'payment_method', ['account_id'], unique=False)
    op.create_table('address',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Enum('SHIPPING', 'BILLING', name='address_kind'), nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('company', sa.Text(), nullable=True),
    sa.Column('line1', sa.Text(), nullable=False),
    sa.Column('line2', sa.Text(), nullable=True),
    sa.Column('city', sa.Text(), nullable=True),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('postal_code', sa.Text(), nullable=True),
    sa.Column('postal_code_norm', sa.Text(), sa.Computed("upper(regexp_replace(postal_code, '\\s', '', 'g'))", persisted=True), nullable=True),
    sa.Column('country', sa.Text(), nullable=False),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name=op.f('ck_address_country_iso')),
    sa.CheckConstraint("region ~ '^[A-Z0-9]{1,3}$'", name=op.f('ck_address_region_iso')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_address_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address'))
    )
    op.create_index('ix_address_country_region', 'address', ['country', 'region'], unique=False)
    op.create_index('ix_address_customer_id', 'address', ['customer_id', 'id'], unique=False)
    op.create_index('ix_address_postal_code_norm', 'address', ['postal_code_norm'], unique=False)
    op.create_index('uq_address_default_per_kind', 'address', ['customer_id', 'kind'], unique=True, postgresql_where=sa.text('is_default'))
    op.create_table('custom_field_value',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('definition_id', sa.BigInteger(), nullable=False),
    sa.Column('text_value', sa.Text(), nullable=True),
    sa.Column('number_value', sa.Numeric(), nullable=True),
    sa.Column('boolean_value', sa.Boolean(), nullable=True),
    sa.Column('date_value', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('num_nonnulls(text_value, number_value, boolean_value, date_value) = 1', name=op.f('ck_custom_field_value_one_value')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_custom_field_value_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['definition_id'], ['custom_field_definition.id'], name=op.f('fk_custom_field_value_definition_id_custom_field_definition'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'definition_id', name=op.f('pk_custom_field_value'))
    )
    op.create_index('ix_cfv_boolean', 'custom_field_value', ['definition_id', 'boolean_value'], unique=False)
    op.create_index('ix_cfv_date', 'custom_field_value', ['definition_id', 'date_value'], unique=False)
    op.create_index('ix_cfv_number', 'custom_field_value', ['definition_id', 'number_value'], unique=False)
    op.create_index('ix_cfv_text', 'custom_field_value', ['definition_id', 'text_value'], unique=False)
    op.create_table('customer_sales_channel',
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('sales_channel_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_sales_channel_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sales_channel_id'], ['sales_channel.id'], name=op.f('fk_customer_sales_channel_sales_channel_id_sales_channel'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('customer_id', 'sales_channel_id', name=op.f('pk_customer_sales_channel'))
    )
    op.create_index(op.f('ix_customer_sales_channel_sales_channel_id'), 'customer_sales_channel', ['sales_channel_id'], unique=False)
    op.create_table('orders',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.Text(), server_default=sa.text("'O-' || lpad(nextval('order_number_seq')::text, 6, '0')"), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('PLACED', 'PAID', 'FULFILLED', 'CANCELLED', 'REFUNDED', name='order_status'), server_default='PLACED', nullable=False),
    sa.Column('source', sa.Enum('CHECKOUT', 'ADMIN', name='order_source'), nullable=False),
    sa.Column('sales_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('tax_total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('shipping_total', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('amount_paid', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('amount_refunded', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('shipping_address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_orders_currency_iso')),
    sa.CheckConstraint('amount_refunded <= amount_paid', name=op.f('ck_orders_refund_within_paid')),
    sa.CheckConstraint('subtotal >= 0 AND tax_total >= 0 AND shipping_total >= 0', name=op.f('ck_orders_nonneg')),
    sa.CheckConstraint('total = subtotal + tax_total + shipping_total', name=op.f('ck_orders_total_adds_up')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_orders_customer_id_customer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['sales_channel_id'], ['sales_channel.id'], name=op.f('fk_orders_sales_channel_id_sales_channel'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('number', name=op.f('uq_orders_number'))
    )
    op.create_index('ix_orders_placed_at', 'orders', ['placed_at', 'id'], unique=False)
    op.create_index('ix_orders_sales_channel_id', 'orders', ['sales_channel_id'], unique=False)
    op.create_table('tax_exemption_certificate',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Text(), nullable=False),
    sa.Column('country', sa.Text(), nullable=False),
    sa.Column('region', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name=op.f('ck_tax_exemption_certificate_country_iso')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_tax_exemption_certificate_valid_range')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_tax_exemption_certificate_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_exemption_certificate'))
    )
    op.create_index('ix_tax_cert_customer_id', 'tax_exemption_certificate', ['customer_id', 'id'], unique=False)
    op.create_table('timeline_event',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_timeline_event_actor_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_timeline_event_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline_event'))
    )
    op.create_table('ledger_transaction',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Enum('CHARGE', 'PAYMENT', 'REFUND', 'CREDIT', 'ADJUSTMENT', 'TRANSFER_IN', 'TRANSFER_OUT', name='ledger_kind'), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('balance_after', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('transfer_group', sa.Uuid(), nullable=True),
    sa.Column('idempotency_key', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('memo', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(kind IN ('TRANSFER_IN', 'TRANSFER_OUT')) = (transfer_group IS NOT NULL)", name=op.f('ck_ledger_transaction_transfer_has_group')),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_ledger_transaction_currency_iso')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_ledger_transaction_amount_nonzero')),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_ledger_transaction_actor_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_ledger_transaction_customer_id_customer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_ledger_transaction_order_id_orders'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction'))
    )
    op.create_index('ix_ledger_order_id', 'ledger_transaction', ['order_id'], unique=False)
    op.create_index('ix_ledger_transfer_group', 'ledger_transaction', ['transfer_group'], unique=False)
    op.create_table('order_line',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    sa.Column('line_total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.CheckConstraint('line_total = unit_price * quantity', name=op.f('ck_order_line_line_total_adds_up')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_line_quantity_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_order_line_customer_id_customer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_line_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_line'))
    )
    op.create_index('ix_order_line_customer_id', 'order_line', ['customer_id'], unique=False)
    op.create_index('ix_order_line_order_id', 'order_line', ['order_id', 'position'], unique=False)
    for name, table, exprs, using in EXPRESSION_INDEXES:
        kw = {"postgresql_using": using} if using else {}
        op.create_index(name, table, [sa.text(e) for e in exprs], **kw)
    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    for name, table, _exprs, _using in EXPRESSION_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index('ix_order_line_order_id', table_name='order_line')
    op.drop_index('ix_order_line_customer_id', table_name='order_line')
    op.drop_table('order_line')
    op.drop_index('ix_ledger_transfer_group', table_name='ledger_transaction')
    op.drop_index('ix_ledger_order_id', table_name='ledger_transaction')
    op.drop_table('ledger_transaction')
    op.drop_table('timeline_event')
    op.drop_index('ix_tax_cert_customer_id', table_name='tax_exemption_certificate')
    op.drop_table('tax_exemption_certificate')
    op.drop_index('ix_orders_sales_channel_id', table_name='orders')
    op.drop_index('ix_orders_placed_at', table_name='orders')
    op.drop_table('orders')
    op.drop_index(op.f('ix_customer_sales_channel_sales_channel_id'), table_name='customer_sales_channel')
    op.drop_table('customer_sales_channel')
    op.drop_index('ix_cfv_text', table_name='custom_field_value')
    op.drop_index('ix_cfv_number', table_name='custom_field_value')
    op.drop_index('ix_cfv_date', table_name='custom_field_value')
    op.drop_index('ix_cfv_boolean', table_name='custom_field_value')
    op.drop_table('custom_field_value')
    op.drop_index('uq_address_default_per_kind', table_name='address', postgresql_where=sa.text('is_default'))
    op.drop_index('ix_address_postal_code_norm', table_name='address')
    op.drop_index('ix_address_customer_id', table_name='address')
    op.drop_index('ix_address_country_region', table_name='address')
    op.drop_table('address')
    op.drop_index(op.f('ix_payment_method_account_id'), table_name='payment_method')
    op.drop_table('payment_method')
    op.drop_index('uq_customer_email_live', table_name='customer', postgresql_where=sa.text("status <> 'MERGED'"))
    op.drop_index('ix_customer_updated_at', table_name='customer')
    op.drop_index('ix_customer_sort_name', table_name='customer')
    op.drop_index('ix_customer_sales_rep_id', table_name='customer')
    op.drop_index('ix_customer_reference_id', table_name='customer')
    op.drop_index('ix_customer_phone_digits', table_name='customer')
    op.drop_index('ix_customer_merged_into_id', table_name='customer')
    op.drop_index('ix_customer_created_at', table_name='customer')
    op.drop_index('ix_customer_account_id', table_name='customer')
    op.drop_table('customer')
    op.drop_index(op.f('ix_api_token_user_id'), table_name='api_token')
    op.drop_table('api_token')
    op.drop_table('sales_channel')
    op.drop_table('custom_field_definition')
    op.drop_index('ix_app_user_role', table_name='app_user')
    op.drop_table('app_user')
    op.drop_table('account')
    op.execute("DROP FUNCTION ledger_append_only()")
    for enum in ENUMS:
        op.execute(f"DROP TYPE {enum}")
    op.execute("DROP FUNCTION cg_fold(text)")
    for seq in SEQUENCES:
        op.execute(f"DROP SEQUENCE {seq}")
