{{ rejected_rows('master', 'products', 'stg_master__products__validated') }}
