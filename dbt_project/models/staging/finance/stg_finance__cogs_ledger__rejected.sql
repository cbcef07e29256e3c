{{ rejected_rows('finance', 'cogs_ledger', 'stg_finance__cogs_ledger__validated') }}
