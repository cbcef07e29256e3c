{{ rejected_rows('procurement', 'receipts', 'stg_procurement__receipts__validated') }}
