{{ rejected_rows('master', 'product_suppliers', 'stg_master__product_suppliers__validated') }}
