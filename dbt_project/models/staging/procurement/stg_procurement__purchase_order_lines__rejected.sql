{{ rejected_rows('procurement', 'purchase_order_lines', 'stg_procurement__purchase_order_lines__validated') }}
